"""``--skip-missing`` (``ReadRequest.skip_missing``, ``data.skip_missing``): every clip reader
leaves out the clips whose folders or frames are missing or damaged and lists them in
``table.skipped``; without it the error lists them and names the flag. LOSO prints and records
what was skipped, and refuses, with the reason, a release left with one subject.

Trees generated from the real sheets (tests/release_trees) skip with the reason when
../shared is absent; the CASME II and CK+ releases written here need nothing from it.
"""

from __future__ import annotations

import importlib
import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest
from typer.testing import CliRunner

from conftest import _sheet_rows, _touch_frames, shared_path
from fervid.cli import app
from fervid.datasets.check import check_release
from fervid.datasets.composite import Part, read_composite
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.datasets.sheets import AnnotationWarning
from fervid.samples import ClipProblem, DatasetFormatError

runner = CliRunner()

#: (release tree module, dataset): the trees of tests/release_trees read by a clip reader.
TREES = [("casme", "casme"), ("casme3", "casme3"), ("casme_sq", "casme_sq"), ("dfme", "dfme"),
         ("fourdme", "4dme"), ("mmew", "mmew"), ("mmme", "mmme"), ("smic_apex", "smic")]


def _read(spec, request):
    with warnings.catch_warnings():  # the sheets' own quirks are not what is tested here
        warnings.simplefilter("ignore", AnnotationWarning)
        return spec.read(request)


def _name(sample) -> str:
    return f"{sample.dataset}/{sample.subject}/{sample.clip}"


@pytest.mark.parametrize("module, dataset", TREES)
def test_every_reader_skips_clips_without_folders_or_frames(module, dataset, tmp_path):
    tree = importlib.import_module(f"release_trees.{module}").build(tmp_path)
    spec = dataset_spec(dataset)
    request = ReadRequest(Path(tree["root"]), tree["protocol"], tree.get("sheet"))
    full = _read(spec, request)
    long = [s for s in full if len(s.frames) >= 3]
    gone, damaged = long[len(long) // 3], long[2 * len(long) // 3]
    folder = gone.frames[0].parent
    if dataset == "smic":  # SMIC's clips are its folders: one removed is simply not there
        pass
    elif folder.is_symlink():  # DFME's tree links each clip to a shared folder
        folder.unlink()
    else:
        shutil.rmtree(folder)
    damaged.frames[len(damaged.frames) // 2].unlink()

    with pytest.raises(DatasetFormatError) as refused:
        _read(spec, request)
    message = str(refused.value)
    assert "\n" not in message and "--skip-missing" in message
    lost = {p.name for p in refused.value.clip_problems}
    assert _name(damaged) in lost and (dataset == "smic" or _name(gone) in lost)

    table = _read(spec, replace(request, skip_missing=True))
    skipped = [p.name for p in table.skipped]
    assert len(skipped) == len(set(skipped)) == len(lost)  # one entry per clip
    assert set(skipped) == lost
    assert len(table) + len(skipped) == len(full)
    assert not set(skipped) & {_name(s) for s in table}
    assert table.labelled().skipped == table.skipped


def _partial_tree(base: Path, sheet: Path, first_row: int, subjects: set[str], folder,
                  frame: str) -> Path:
    """Frames (zero bytes) of the sheet's clips of ``subjects`` only: a partial release."""
    root = base / "release"
    for subject, clip, _, onset, _, offset, *_ in _sheet_rows(sheet, first_row):
        if str(subject) in subjects:
            _touch_frames(root / folder(subject) / clip,
                          (frame.format(s=subject, n=n) for n in range(onset, offset + 1)),
                          base / "blank")
    return root


def test_a_partial_casme2_release_is_read_with_its_absent_clips_listed(tmp_path):
    sheet = shared_path("annotations", "casme2", "CASME2-coding-20140508.xlsx")
    root = _partial_tree(tmp_path, sheet, 2, {"01", "02"}, lambda s: f"sub{s}", "img{n}.jpg")
    spec = dataset_spec("casme2")
    request = ReadRequest(root, "5class", sheet)
    with pytest.raises(DatasetFormatError) as refused:
        _read(spec, request)
    n_missing = len(refused.value.problems)
    assert n_missing == 255 - 9 - 13  # sub01 has 9 clips, sub02 13
    assert str(refused.value).endswith(f"pass --skip-missing (data.skip_missing: true) to leave "
                                       f"out the {n_missing} clip(s) with missing or damaged "
                                       f"frames")
    table = _read(spec, replace(request, skip_missing=True))
    assert len(table) == 22 and len(table.skipped) == n_missing
    assert table.skipped[0] == "sub03/EP01_2: clip folder missing"
    assert table.skipped[0].name == "casme2/sub03/EP01_2"
    assert {s.subject for s in table} == {"sub01", "sub02"}

    report = check_release("casme2", root, sheet=sheet, protocol="5class", skip_missing=True)
    assert report.ok and report.samples == 22 and len(report.skipped) == n_missing
    assert not check_release("casme2", root, sheet=sheet, protocol="5class").ok


def test_a_composite_lists_what_each_part_skipped(tmp_path):
    casme2_sheet = shared_path("annotations", "casme2", "CASME2-coding-20140508.xlsx")
    samm_sheet = shared_path("annotations", "samm", "SAMM_Micro_FACS_Codes_v2.xlsx")
    casme2 = _partial_tree(tmp_path / "c", casme2_sheet, 2, {"01"}, lambda s: f"sub{s}",
                           "img{n}.jpg")
    samm = _partial_tree(tmp_path / "s", samm_sheet, 15, {"006", "007"}, str,
                         "{s}_{n:05d}.jpg")
    parts = [Part("casme2", casme2, casme2_sheet), Part("samm", samm, samm_sheet)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnnotationWarning)
        with pytest.raises(DatasetFormatError) as refused:
            read_composite(parts, "3class")
        table = read_composite(parts, "3class", skip_missing=True)
    clips = refused.value.clip_problems
    assert clips[0].startswith("casme2: ") and "--skip-missing" in str(refused.value)
    assert len(clips) == len(table.skipped) == 255 - 9 + 159 - 21  # SAMM 006: 11, 007: 10
    assert {p.dataset for p in table.skipped} == {"casme2", "samm"}
    assert {s.dataset for s in table} == {"casme2", "samm"}


# --- Written here: CK+ and CASME II releases with real (tiny) frames, no shared data.

def _image(path: Path, seed: int, size: int = 24) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)


def test_ckplus_skips_a_sequence_with_a_gap_and_one_without_frames(tmp_path):
    root = tmp_path / "CK+"
    for k, (subject, sequence) in enumerate([("S001", "001"), ("S001", "002"),
                                             ("S002", "001"), ("S003", "001")]):
        folder = root / "cohn-kanade-images" / subject / sequence
        for n in range(1, 6):
            _image(folder / f"{subject}_{sequence}_{n:08d}.png", k * 10 + n, 8)
        label = root / "Emotion" / subject / sequence / f"{subject}_{sequence}_00000005_emotion.txt"
        label.parent.mkdir(parents=True)
        label.write_text(f"   {k % 7 + 1}.0000000e+00\n")
    (root / "cohn-kanade-images/S001/002/S001_002_00000003.png").unlink()
    shutil.rmtree(root / "cohn-kanade-images/S003/001")
    spec = dataset_spec("ckplus")
    with pytest.raises(DatasetFormatError) as refused:
        spec.read(ReadRequest(root, "7class"))
    assert "leave out the 2 clip(s)" in str(refused.value)
    table = spec.read(ReadRequest(root, "7class", skip_missing=True))
    assert [s.clip for s in table] == ["S001_001", "S002_001"]
    assert sorted(p.name for p in table.skipped) == ["ckplus/S001/S001_002", "ckplus/S003/S003_001"]


CASME2_HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                 "Action Units", "Estimated Emotion"]
EMOTIONS = ("happiness", "disgust", "surprise", "repression", "others")


def write_casme2(base: Path, subjects: dict[str, int], present: set[str]) -> tuple[Path, Path]:
    """A CASME II release in the Cropped layout (``subNN/<clip>/reg_img{N}.jpg``, 24 px noise):
    ``subjects`` maps the sheet's subject text to its clip count; only the clips named in
    ``present`` (``'sub01/EP01_1'``) get frames. Returns ``(root, sheet)``."""
    book = openpyxl.Workbook()
    book.active.append(CASME2_HEADER)
    root = base / "Cropped"
    for s, (subject, count) in enumerate(subjects.items()):
        for i in range(count):
            clip, onset = f"EP0{i + 1}_{s + 1}", 10 * (i + 1)
            book.active.append([subject, clip, None, onset, onset + 3, onset + 7, None, "12",
                                EMOTIONS[(s + i) % len(EMOTIONS)]])
            if f"sub{subject}/{clip}" in present:
                for n in range(onset, onset + 8):
                    _image(root / f"sub{subject}" / clip / f"reg_img{n}.jpg", 100 * s + n)
    sheet = base / "CASME2-coding-20140508.xlsx"
    book.save(sheet)
    return root, sheet


def _apex_config(tmp_path: Path, sheet: Path) -> Path:
    config = {"name": "skip", "seed": 0, "model": {"name": "apex_resnet", "drop_rate": 0.0},
              "data": {"format": "apex", "size": 24, "dataset": "casme2", "protocol": "5class",
                       "sheet": str(sheet), "classes": ["happiness", "disgust", "repression",
                                                        "surprise", "others"]},
              "train": {"lr": 1e-3, "batch_size": 4, "epochs": 1},
              "run": {"engine": "sequential", "workers": 1, "precision": "32-true"}}
    path = tmp_path / "apex.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _loso(config: Path, root: Path, out: Path, *extra: str):
    return runner.invoke(app, ["loso", "--config", str(config), "--data-root", str(root),
                               "--out", str(out), "--cache-dir", str(out.parent / "cache"),
                               "--no-progress", *extra])


def test_loso_skips_records_and_reports_a_subject_left_without_clips(tmp_path):
    subjects = {"01": 3, "02": 3, "03": 2, "04": 2}
    present = {f"sub{s}/EP0{i + 1}_{k + 1}" for k, (s, n) in enumerate(subjects.items())
               for i in range(n)}
    present -= {"sub02/EP02_2", "sub04/EP01_4", "sub04/EP02_4"}  # sub04 loses every clip
    root, sheet = write_casme2(tmp_path, subjects, present)
    (root / "sub03/EP01_3/reg_img13.jpg").unlink()  # a damaged clip: a frame missing
    config = _apex_config(tmp_path, sheet)

    refused = _loso(config, root, tmp_path / "refused")
    assert refused.exit_code == 2
    error = [line for line in refused.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "4 problem(s)" in error[0]
    assert error[0].endswith("pass --skip-missing (data.skip_missing: true) to leave out the 4 "
                             "clip(s) with missing or damaged frames")

    result = _loso(config, root, tmp_path / "run", "--skip-missing")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert ("warning: skipped 4 clip(s) whose folders or frames are missing or damaged "
            "(data.skip_missing): casme2/sub02/EP02_2, casme2/sub03/EP01_3, casme2/sub04/EP01_4, "
            "casme2/sub04/EP02_4") in lines
    assert "warning: no fold for 1 subject(s) whose every clip was skipped: casme2/sub04" in lines
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_folds"] == 3
    assert run["skipped"] == {"count": 4, "subjects_without_clips": ["casme2/sub04"], "first": [
        "casme2/sub02/EP02_2", "casme2/sub03/EP01_3", "casme2/sub04/EP01_4",
        "casme2/sub04/EP02_4"]}
    config_saved = (tmp_path / "run" / "config.yaml").read_text()
    assert "skip_missing: true" in config_saved


def test_loso_on_one_subject_left_names_the_reason(tmp_path):
    root, sheet = write_casme2(tmp_path, {"01": 2, "02": 2},
                               {"sub01/EP01_1", "sub01/EP02_1"})
    result = _loso(_apex_config(tmp_path, sheet), root, tmp_path / "run", "--skip-missing")
    assert result.exit_code == 2
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert error == ["error: leave-one-subject-out needs at least two subjects with labelled "
                     "clips, and 1 remains (casme2/sub01) after skipping 2 clip(s) whose folders "
                     "or frames are missing: one subject cannot make a fold with training data"]
    assert not (tmp_path / "run").exists()


def test_release_problems_are_still_errors_and_no_clip_left_is_one(tmp_path):
    root, sheet = write_casme2(tmp_path, {"01": 2, "02": 2}, set())
    spec = dataset_spec("casme2")
    root.mkdir()
    request = ReadRequest(root, "5class", sheet, skip_missing=True)
    (root / "sub01" / "EP01_1").mkdir(parents=True)  # a folder, but no frame in any
    with pytest.raises(DatasetFormatError) as refused:
        spec.read(request)
    assert "no frames named img{N}.jpg" in str(refused.value)
    assert "--skip-missing" not in str(refused.value)
    (root / "sub01" / "EP01_1" / "reg_img1.jpg").touch()  # the layout, but not its frames
    with pytest.raises(DatasetFormatError, match=r"no clip left to read: all 4 clip\(s\)"):
        spec.read(request)


def test_a_clip_problem_pickles_with_its_clip():
    import pickle

    problem = ClipProblem("sub02/EP01_11f: clip folder missing", "casme2", "sub02", "EP01_11f")
    error = pickle.loads(pickle.dumps(DatasetFormatError("root", [problem, "a sheet row"])))
    assert error.clip_problems == [problem] and error.clip_problems[0].name == \
        "casme2/sub02/EP01_11f"
    assert problem.prefixed("casme2: ").clip == "EP01_11f"


def test_skip_missing_is_refused_for_prepared_inputs(tmp_path):
    from generated import make_precomputed

    flow = make_precomputed(tmp_path / "flow", n_subjects=3, per_subject=2)
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({"name": "t", "model": {"name": "ststnet"},
                                  "train": {"epochs": 1}}))
    result = _loso(config, flow, tmp_path / "run", "--skip-missing")
    assert result.exit_code == 2
    assert "data.skip_missing leaves out clips of a release read from its frames" in \
        result.output
