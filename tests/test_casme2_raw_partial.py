"""The nine real raw CASME II clips (../shared/data/casme2_raw): a release of one subject whose
sheet lists 255 clips, so 246 are absent. With ``--skip-missing`` ``prepare flow`` writes the
nine, ``prepare faces`` names the absent ones, and LOSO on the aligned faces ends with the
reason (one subject makes no fold with training data) or, with two generated subjects added,
runs to the end and records what it skipped. Each test skips with the reason when ../shared
is absent.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app

runner = CliRunner()
CLIPS = ("EP02_01f", "EP03_02", "EP04_02", "EP04_03", "EP04_04", "EP19_01", "EP19_03f",
         "EP19_05f", "EP19_06f")
ABSENT = 255 - len(CLIPS)
FIRST_ABSENT = "casme2/sub02/EP01_11f"


@pytest.fixture(scope="module")
def raw() -> tuple[Path, Path]:
    return (shared_path("casme2_raw", "CASME2_RAW_selected"),
            shared_path("casme2_raw", "CASME2-coding-20140508.xlsx"))


@pytest.fixture(scope="module")
def aligned(raw, tmp_path_factory) -> tuple[Path, str]:
    """``fervid prepare faces`` of the nine clips (497 frames: about 6 s at 48 px with the
    detector every 30 frames), and its output."""
    out = tmp_path_factory.mktemp("aligned") / "Aligned"
    result = runner.invoke(app, ["prepare", "faces", "--dataset", "casme2", "--data-root",
                                 str(raw[0]), "--out", str(out), "--size", "48",
                                 "--detect-every", "30", "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    return out, result.output


def _lines(output: str, start: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(start)]


def test_prepare_faces_names_the_clips_the_sheet_lists_and_the_folder_lacks(aligned, raw):
    out, output = aligned
    assert sorted(p.name for p in (out / "sub01").iterdir()) == sorted(CLIPS)
    (warning,) = [line for line in _lines(output, "warning:") if "not prepared" in line]
    assert warning.startswith(f"warning: {raw[1].name} lists {ABSENT} clip(s) that {raw[0]} "
                              f"lacks or holds with frames missing; they are not prepared: "
                              f"{FIRST_ABSENT}, ")
    assert warning.endswith(f" and {ABSENT - 10} more")


def test_prepare_flow_refuses_the_partial_release_and_names_the_flag(raw, tmp_path):
    result = runner.invoke(app, ["prepare", "flow", "--dataset", "casme2", "--data-root",
                                 str(raw[0]), "--sheet", str(raw[1]), "--out",
                                 str(tmp_path / "flow"), "--no-progress"])
    assert result.exit_code == 2
    (error,) = _lines(result.output, "error:")
    assert f"{ABSENT} problem(s): sub02/EP01_11f: clip folder missing" in error
    assert error.endswith(f"pass --skip-missing (data.skip_missing: true) to leave out the "
                          f"{ABSENT} clip(s) with missing or damaged frames")
    assert not (tmp_path / "flow" / "index.csv").exists()


def test_prepare_flow_with_skip_missing_writes_the_nine_clips(raw, tmp_path):
    out = tmp_path / "flow"
    result = runner.invoke(app, ["prepare", "flow", "--dataset", "casme2", "--data-root",
                                 str(raw[0]), "--sheet", str(raw[1]), "--protocol", "5class",
                                 "--skip-missing", "--workers", "2", "--out", str(out),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in _lines(result.output, "warning:") if "skipped" in line]
    assert warning.startswith(f"warning: skipped {ABSENT} clip(s) whose folders or frames are "
                              f"missing or damaged (--skip-missing): {FIRST_ABSENT}, ")
    index = pd.read_csv(out / "index.csv")
    assert sorted(index["clip"]) == sorted(CLIPS) and set(index["subject"]) == {"sub01"}
    # happiness 0, disgust 1, others 4 under 5class: 1, 2 and 6 of the nine
    assert sorted(index["label"]) == [0, 1, 1] + [4] * 6
    for name in index["file"]:
        image = cv2.imread(str(out / name))
        assert image.shape == (28, 28, 3) and image.std() > 0


def _loso(root: Path, sheet: Path, out: Path):
    """SMA-STN, one epoch at 32 px, on the aligned faces, skipping what is absent."""
    return runner.invoke(app, [
        "loso", "--config", "configs/smastn_casme2.yaml", "--data-root", str(root),
        "--skip-missing", "--out", str(out), "--cache-dir", str(out.parent / "cache"),
        "--set", f"data.sheet={sheet}", "--set", "train.epochs=1", "--set", "data.size=32",
        "--set", "data.train_views=0", "--set", "run.precision=32-true", "--no-progress"])


def test_loso_on_the_one_real_subject_ends_with_the_reason(aligned, raw, tmp_path):
    result = _loso(aligned[0], raw[1], tmp_path / "run")
    assert result.exit_code == 2, result.output
    assert _lines(result.output, "error:") == [
        f"error: leave-one-subject-out needs at least two subjects with labelled clips, and 1 "
        f"remains (casme2/sub01) after skipping {ABSENT} clip(s) whose folders or frames are "
        f"missing: one subject cannot make a fold with training data"]
    assert not (tmp_path / "run").exists()


#: Two generated subjects: (sheet subject, clip, emotion) with 12 frames each.
GENERATED = [("90", "EP90_01", "happiness"), ("90", "EP90_02", "others"),
             ("91", "EP91_01", "disgust"), ("91", "EP91_02", "others")]


def _with_generated_subjects(aligned: Path, sheet: Path, tmp: Path) -> tuple[Path, Path]:
    """The aligned release (hard links) plus two generated subjects of face-sized noise in the
    Cropped layout, and a copy of the sheet with their rows added."""
    root = tmp / "Aligned"
    shutil.copytree(aligned, root, copy_function=os.link)
    rng = np.random.default_rng(0)
    book = openpyxl.load_workbook(sheet)
    rows = book.active
    for subject, clip, emotion in GENERATED:
        folder = root / f"sub{subject}" / clip
        folder.mkdir(parents=True)
        base = rng.integers(40, 200, (48, 48, 3)).astype(np.int16)
        for n in range(1, 13):
            frame = np.clip(base + rng.integers(-6, 7, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"reg_img{n}.jpg"), frame)
        rows.append([subject, clip, None, 1, 6, 12, None, "12", emotion])
    copy = tmp / sheet.name
    book.save(copy)
    return root, copy


def test_loso_with_two_generated_subjects_runs_and_records_the_skipped(aligned, raw, tmp_path):
    root, sheet = _with_generated_subjects(aligned[0], raw[1], tmp_path)
    result = _loso(root, sheet, tmp_path / "run")
    assert result.exit_code == 0, result.output
    (warning,) = _lines(result.output, f"warning: skipped {ABSENT} clip(s)")
    assert FIRST_ABSENT in warning
    assert _lines(result.output, "warning: no fold for 25 subject(s) whose every clip was "
                                 "skipped: casme2/sub02, ")
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["n_folds"] == 3 and run["skipped"]["count"] == ABSENT
    assert run["skipped"]["first"][0] == FIRST_ABSENT and len(run["skipped"]["first"]) == 10
    assert len(run["skipped"]["subjects_without_clips"]) == 25  # sub02..sub26
    predictions = pd.read_csv(tmp_path / "run" / "predictions.csv")
    assert len(predictions) == len(CLIPS) + len(GENERATED)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0 <= metrics["uf1"] <= 1
