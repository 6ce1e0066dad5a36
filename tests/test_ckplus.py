"""CK+: the reader on the real tree and on generated ones, its folds, and ``prepare faces``.

The real tree is ``../shared/data/ckplus`` (40 sequences of 10 subjects in the official layout);
its tests skip when it is absent. Generated trees are tiny PNGs written with OpenCV; the
``prepare faces`` ones are fervid's synthetic faces (which dlib finds), laid out as CK+.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.config import ConfigError, LosoConfig
from fervid.datasets import DATASET_NAMES, PROTOCOLS, load_dataset
from fervid.datasets.ckplus import (
    CKPLUS_PROTOCOLS,
    ckplus_facs,
    ckplus_landmarks,
    ckplus_subject_folds,
    read_ckplus,
)
from fervid.datasets.from_config import read_release
from fervid.datasets.sheets import AnnotationWarning
from fervid.errors import OptionError
from fervid.faces import DlibFaceDetector, align_face, template_points, transform_points
from fervid.faces.detection import NUM_LANDMARKS
from fervid.samples import DatasetFormatError
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR
from generated import apex_loso_metrics

SEVEN = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")
REAL_COUNTS = {"anger": 4, "disgust": 9, "fear": 5, "happiness": 8, "sadness": 5, "surprise": 9}


# --- the real tree -----------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["7class", "6class"])
def test_real_tree(protocol):
    root = shared_path("ckplus")
    table = read_ckplus(root, protocol)
    assert len(table) == 40 and len(table.subjects) == 10
    assert sum(len(s.frames) for s in table) == 684
    assert Counter(s.emotion for s in table) == REAL_COUNTS
    assert table.classes == CKPLUS_PROTOCOLS[protocol] and len(table.labelled()) == 40
    assert all(table.classes[s.label] == s.emotion for s in table)
    first = table[0]
    assert (first.dataset, first.subject, first.clip, first.key) == (
        "ckplus", "S052", "S052_001", "ckplus_S052_S052_001")
    assert (first.onset, first.apex, first.offset, len(first.frames)) == (1, 15, 15, 15)
    assert first.frames[0] == root / "cohn-kanade-images" / "S052" / "001" / "S052_001_00000001.png"
    for s in table:  # neutral -> apex: the apex is the last frame, and the one labelled
        assert s.onset == 1 and s.apex == s.offset == len(s.frames)
        emotion_file = (root / "Emotion" / s.subject / s.clip[5:]
                        / f"{s.clip}_{s.offset:08d}_emotion.txt")
        assert emotion_file.is_file()
        assert [int(p.stem.rsplit("_", 1)[1]) for p in s.frames] == list(range(1, s.offset + 1))


def test_real_tree_protocols_agree_on_the_sequences():
    root = shared_path("ckplus")
    seven, six = read_ckplus(root, "7class"), read_ckplus(root, "6class")
    assert [s.key for s in seven] == [s.key for s in six]
    assert [s.emotion for s in seven] == [s.emotion for s in six]


def test_real_tree_through_load_dataset_and_a_config():
    root = shared_path("ckplus")
    assert "ckplus" in DATASET_NAMES and set(PROTOCOLS["ckplus"]) == {"7class", "6class"}
    assert len(load_dataset("ckplus", root, "6class")) == 40
    with pytest.raises(OptionError, match="no coding sheet"):
        load_dataset("ckplus", root, "7class", sheet=root / "x.xlsx")
    with pytest.raises(OptionError, match="valid protocols: 7class, 6class"):
        load_dataset("ckplus", root, "5class")
    cfg = LosoConfig.model_validate({"data": {"format": "apex", "dataset": "ckplus",
                                              "protocol": "7class", "classes": list(SEVEN)}})
    assert len(read_release(cfg, root)) == 40
    with pytest.raises(ConfigError, match="no coding sheet"):
        read_release(cfg.model_copy(update={"data": cfg.data.model_copy(
            update={"sheet": "x.xlsx"})}), root)


def test_real_tree_ten_folds_are_leave_one_subject_out():
    table = read_ckplus(shared_path("ckplus"))
    folds = ckplus_subject_folds(table)
    assert folds == {s: k for k, s in enumerate(["S052", "S055", "S074", "S106", "S111", "S113",
                                                 "S124", "S125", "S130", "S132"])}


# --- generated trees: the reader ---------------------------------------------------------------

def write_sequence(root: Path, subject: str, sequence: str, n_frames: int,
                   code: str | None = None, first: int = 1) -> Path:
    """Frames ``first..first+n_frames-1`` as 8x8 grey PNGs, and an emotion file holding
    ``code`` (as the release writes it) for the last frame when ``code`` is given."""
    folder = root / "cohn-kanade-images" / subject / sequence
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(first, first + n_frames):
        cv2.imwrite(str(folder / f"{subject}_{sequence}_{n:08d}.png"), np.full((8, 8), n, np.uint8))
    emotion = root / "Emotion" / subject / sequence
    emotion.mkdir(parents=True, exist_ok=True)  # the release keeps empty ones for unlabelled
    if code is None:
        return emotion
    path = emotion / f"{subject}_{sequence}_{first + n_frames - 1:08d}_emotion.txt"
    path.write_text(code)
    return path


def code_text(code: int) -> str:
    return f"   {code:.7e}\n"


@pytest.fixture
def tree(tmp_path) -> Path:
    """Three subjects: S005 (anger, contempt), S010 (surprise, unlabelled), S011 (happy)."""
    root = tmp_path / "CK+"
    write_sequence(root, "S005", "001", 4, code_text(1))
    write_sequence(root, "S005", "002", 3, code_text(2))
    write_sequence(root, "S010", "001", 5, code_text(7))
    write_sequence(root, "S010", "003", 3)
    write_sequence(root, "S011", "002", 6, code_text(5))
    return root


def test_generated_tree_ids_labels_and_the_unlabelled_warning(tree):
    with pytest.warns(AnnotationWarning, match="1 of 5 sequences have no emotion file"):
        table = read_ckplus(tree)
    assert [(s.clip, s.emotion, s.label, s.onset, s.apex, s.offset, len(s.frames))
            for s in table] == [("S005_001", "anger", 0, 1, 4, 4, 4),
                                ("S005_002", "contempt", 1, 1, 3, 3, 3),
                                ("S010_001", "surprise", 6, 1, 5, 5, 5),
                                ("S011_002", "happiness", 4, 1, 6, 6, 6)]
    assert table.classes == SEVEN


UNLABELLED_WARNING = "ignore:.*have no emotion file:fervid.datasets.sheets.AnnotationWarning"


@pytest.mark.filterwarnings(UNLABELLED_WARNING)
def test_six_classes_leave_contempt_out_with_a_warning(tree):
    with pytest.warns(AnnotationWarning, match=r"1 contempt sequence\(s\) outside the 6class"):
        table = read_ckplus(tree, "6class")
    assert [(s.clip, s.label) for s in table] == [("S005_001", 0), ("S005_002", None),
                                                  ("S010_001", 5), ("S011_002", 3)]
    assert [s.clip for s in table.labelled()] == ["S005_001", "S010_001", "S011_002"]


@pytest.mark.filterwarnings(UNLABELLED_WARNING)
def test_neutral_code_is_not_an_expression_label(tree):
    write_sequence(tree, "S012", "001", 3, "0.0000000e+00")
    with pytest.warns(AnnotationWarning, match="1 neutral sequence"):
        table = read_ckplus(tree)
    (neutral,) = [s for s in table if s.subject == "S012"]
    assert (neutral.emotion, neutral.label) == ("neutral", None)
    assert "S012" not in {s.subject for s in table.labelled()}


def test_frame_numbers_sort_as_numbers(tmp_path):
    root = tmp_path / "CK+"
    write_sequence(root, "S005", "001", 12, code_text(3), first=1)
    (frames,) = [s.frames for s in read_ckplus(root)]
    assert [p.name for p in frames][8:10] == ["S005_001_00000009.png", "S005_001_00000010.png"]


@pytest.mark.parametrize("text, problem", [
    ("happy\n", "'happy' is not a number"),
    ("   9.0000000e+00\n", "not a whole number in 0..7"),
    ("   2.5000000e+00\n", "not a whole number in 0..7"),
    ("", "needs one emotion code"),
    ("   1.0000000e+00   2.0000000e+00\n", "needs one emotion code"),
])
def test_garbage_emotion_file_names_the_file(tree, text, problem):
    path = write_sequence(tree, "S020", "004", 3, text)
    with pytest.raises(DatasetFormatError) as err:
        read_ckplus(tree)
    assert err.value.path == tree and len(err.value.problems) == 1
    assert "Emotion/S020/004/S020_004_00000003_emotion.txt" in str(err.value)
    assert problem in str(err.value) and path.is_file()


def test_every_layout_problem_is_listed_at_once(tree):
    (tree / "cohn-kanade-images" / "S030" / "001").mkdir(parents=True)  # a folder without frames
    write_sequence(tree, "S031", "001", 3, "x")                           # garbage
    orphan = tree / "Emotion" / "S040" / "002"                            # no such sequence
    orphan.mkdir(parents=True)
    (orphan / "S040_002_00000007_emotion.txt").write_text(code_text(3))
    write_sequence(tree, "S041", "001", 4, code_text(3))
    (tree / "cohn-kanade-images" / "S041" / "001" / "S041_001_00000002.png").unlink()
    late = write_sequence(tree, "S042", "001", 4, code_text(3))
    late.rename(late.with_name("S042_001_00000003_emotion.txt"))         # not the last frame
    with pytest.raises(DatasetFormatError) as err:
        read_ckplus(tree)
    text = "\n".join(err.value.problems)
    assert len(err.value.problems) == 5, text
    assert "cohn-kanade-images/S030/001: no frames named S030_001_<N>.png" in text
    assert "Emotion/S031/001/S031_001_00000003_emotion.txt: 'x' is not a number" in text
    assert ("Emotion/S040/002/S040_002_00000007_emotion.txt: emotion file for a sequence that "
            "does not exist") in text
    assert "cohn-kanade-images/S041/001: frame numbers have gaps" in text and "N in 2" in text
    assert "names frame 3, but the sequence's last frame is 4" in text


def test_missing_folders(tmp_path):
    with pytest.raises(DatasetFormatError, match="CK\\+ folder does not exist"):
        read_ckplus(tmp_path / "nowhere")
    (tmp_path / "Emotion").mkdir()
    with pytest.raises(DatasetFormatError, match="no cohn-kanade-images/ folder") as err:
        read_ckplus(tmp_path)
    assert err.value.path == tmp_path
    with pytest.raises(DatasetFormatError, match="no Emotion/ folder"):
        read_ckplus(tmp_path / "Emotion")  # a folder, but not the CK+ root
    with pytest.raises(OptionError, match="unknown protocol"):
        read_ckplus(tmp_path, "3class")


def write_landmarks(root: Path, subject: str, sequence: str, points: np.ndarray) -> None:
    """``points`` (T, 68, 2) as the release's per-frame landmark files, frames from 1."""
    folder = root / "Landmarks" / subject / sequence
    folder.mkdir(parents=True, exist_ok=True)
    for n, frame in enumerate(points, start=1):
        (folder / f"{subject}_{sequence}_{n:08d}_landmarks.txt").write_text(
            "".join(f"   {x:.7e}   {y:.7e}\n" for x, y in frame))


def write_facs(root: Path, subject: str, sequence: str, frame: int, rows: list[tuple]) -> None:
    folder = root / "FACS" / subject / sequence
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{subject}_{sequence}_{frame:08d}_facs.txt").write_text(
        "".join(f"   {au:.7e}   {level:.7e}\n" for au, level in rows))


def test_landmarks_and_facs_are_accepted_and_read_on_demand(tree):
    points = np.random.default_rng(0).uniform(0, 8, (4, NUM_LANDMARKS, 2)).astype(np.float32)
    write_landmarks(tree, "S005", "001", points)
    write_facs(tree, "S005", "001", 4, [(4, 3), (17, 0)])
    with pytest.warns(AnnotationWarning):
        table = read_ckplus(tree)
    assert len(table) == 4  # the extra folders change nothing
    anger, contempt = table[0], table[1]
    np.testing.assert_allclose(ckplus_landmarks(tree, anger), points, atol=1e-6)
    assert ckplus_facs(tree, anger) == [(4, 3.0), (17, 0.0)]
    assert ckplus_landmarks(tree, contempt) is None and ckplus_facs(tree, contempt) is None
    bad = tree / "Landmarks" / "S005" / "001" / "S005_001_00000002_landmarks.txt"
    bad.write_text("1 2 3\n")
    with pytest.raises(DatasetFormatError, match="needs 68 rows of x y") as err:
        ckplus_landmarks(tree, anger)
    assert err.value.path == bad


# --- subject-independent folds -----------------------------------------------------------------

def test_ten_folds_are_deterministic_subject_disjoint_and_round_robin(tmp_path):
    root = tmp_path / "CK+"
    numbers = random.Random(0).sample(range(5, 140), 23)  # written in a shuffled order
    for k, n in enumerate(numbers):
        for q in range(1 + k % 3):
            write_sequence(root, f"S{n:03d}", f"{q + 1:03d}", 2, code_text(1 + (k + q) % 7))
    table = read_ckplus(root)
    folds = ckplus_subject_folds(table)
    ordered = [f"S{n:03d}" for n in sorted(numbers)]
    assert list(folds) == ordered and folds == {s: k % 10 for k, s in enumerate(ordered)}
    assert Counter(folds.values()) == {k: 3 if k < 3 else 2 for k in range(10)}
    shuffled = type(table)(random.Random(1).sample(table.samples, len(table)), table.classes)
    assert ckplus_subject_folds(shuffled) == folds  # ids alone decide
    for fold in range(10):
        test = {s.subject for s in table if folds[s.subject] == fold}
        train = {s.subject for s in table if folds[s.subject] != fold}
        assert test and not test & train
    assert ckplus_subject_folds(table, 5) == {s: k % 5 for k, s in enumerate(ordered)}
    for bad in (1, 24):
        with pytest.raises(OptionError, match="n_folds must be between 2 and"):
            ckplus_subject_folds(table, bad)


# --- prepare faces -----------------------------------------------------------------------------

SIZE = 64
runner = CliRunner()


def count(output: str, row: str) -> int:
    """A row of the closing summary table."""
    match = re.search(rf"{row}\W+(\d+)", output)
    assert match, f"no {row!r} row in {output}"
    return int(match.group(1))


def prepare(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["prepare", "faces", "--no-progress", *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def raw_ckplus(tmp_path_factory) -> Path:
    """Three subjects x 2 sequences of 5-7 synthetic faces (fervid.synth, which dlib finds),
    as grey 200x160 PNGs in the CK+ layout, with Emotion/, FACS/ and Landmarks/ files."""
    made = tmp_path_factory.mktemp("synth")
    make_casme2_like(made, n_subjects=3, clips_per_subject=2, size=128, n_frames=(5, 7), seed=1)
    root = tmp_path_factory.mktemp("raw") / "CK+"
    clips = sorted(p for p in (made / FRAMES_DIR).glob("sub*/*") if p.is_dir())
    for k, clip in enumerate(clips):
        subject, sequence = f"S{int(clip.parent.name[3:]) * 5:03d}", f"{k % 2 + 1:03d}"
        folder = root / "cohn-kanade-images" / subject / sequence
        folder.mkdir(parents=True)
        images = sorted(clip.glob("img*.jpg"), key=lambda p: int(p.stem[3:]))
        for n, path in enumerate(images, start=1):
            canvas = np.full((160, 200), 60, np.uint8)
            canvas[16:144, 36:164] = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            cv2.imwrite(str(folder / f"{subject}_{sequence}_{n:08d}.png"), canvas)
        emotion = root / "Emotion" / subject / sequence
        emotion.mkdir(parents=True)
        (emotion / f"{subject}_{sequence}_{len(images):08d}_emotion.txt").write_text(
            code_text(1 + k % 7))
        write_facs(root, subject, sequence, len(images), [(1, 2), (2, 2)])
        grid = np.stack(np.meshgrid(np.arange(17), np.arange(4)), -1).reshape(-1, 2) * 8.0 + 40
        write_landmarks(root, subject, sequence, np.repeat(grid[None], len(images), axis=0))
    return root


@pytest.fixture(scope="module")
def aligned(raw_ckplus, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("faces") / "CK+_aligned"
    code, output = prepare("--dataset", "ckplus", "--data-root", str(raw_ckplus), "--out",
                           str(out), "--size", str(SIZE), "--workers", "1")
    assert code == 0, output
    return out, output


def test_prepared_tree_reads_back_with_the_same_reader(raw_ckplus, aligned):
    out, output = aligned
    raw, prepared = read_ckplus(raw_ckplus), read_ckplus(out)
    assert len(raw) == 6 and len(raw.subjects) == 3
    assert [(s.key, s.onset, s.apex, s.offset, s.emotion, s.label, [p.name for p in s.frames])
            for s in prepared] == [(s.key, s.onset, s.apex, s.offset, s.emotion, s.label,
                                    [p.name for p in s.frames]) for s in raw]
    assert all(p.parent.parent.parent == out / "cohn-kanade-images"
               for s in prepared for p in s.frames)
    for s in prepared:
        image = cv2.imread(str(s.frames[-1]), cv2.IMREAD_UNCHANGED)
        assert image.shape == (SIZE, SIZE)  # grey PNGs stay grey
        assert ckplus_facs(out, s) == [(1, 2.0), (2, 2.0)]
    assert count(output, "clips written") == 6 and count(output, "failed") == 0
    assert count(output, "frames written") == sum(len(s.frames) for s in raw)
    assert json.loads((out / "prepare_faces.json").read_text())["align"] == "onset"


def test_one_warp_per_sequence_from_its_first_frame(raw_ckplus, aligned):
    out, _ = aligned
    for raw, done in list(zip(read_ckplus(raw_ckplus), read_ckplus(out), strict=True))[:2]:
        subject, sequence = raw.subject, raw.clip[5:]
        track = pd.read_csv(out / "_face_tracks" / subject / f"{sequence}.csv")
        first = track.iloc[0, -2 * NUM_LANDMARKS:].to_numpy(np.float32).reshape(-1, 2)
        for source, written in zip(raw.frames, done.frames, strict=True):
            expected = align_face(cv2.imread(str(source)), first, size=SIZE)
            error = np.abs(cv2.imread(str(written), cv2.IMREAD_GRAYSCALE)
                           - expected.image[..., 0].astype(float)).mean()
            assert error < 1, (written, error)
        # The release's landmarks are moved into the crop by that same warp.
        moved = ckplus_landmarks(out, done)
        original = ckplus_landmarks(raw_ckplus, raw)
        np.testing.assert_allclose(moved, transform_points(
            original.reshape(-1, 2), expected.matrix).reshape(moved.shape), atol=0.01)


def test_rerun_resumes_and_a_faceless_sequence_leaves_no_labels(raw_ckplus, aligned, tmp_path):
    out, _ = aligned
    args = ("--dataset", "ckplus", "--data-root", str(raw_ckplus), "--size", str(SIZE),
            "--workers", "1")
    code, output = prepare(*args, "--out", str(out))
    assert code == 0 and count(output, "already done") == 6, output
    assert count(output, "clips written") == 0

    raw = tmp_path / "CK+"
    shutil.copytree(raw_ckplus, raw)
    blank = raw / "cohn-kanade-images" / "S010" / "002"
    for path in blank.iterdir():
        cv2.imwrite(str(path), np.full((160, 200), 60, np.uint8))
    code, output = prepare(*args[:2], "--data-root", str(raw), "--size", str(SIZE), "--workers",
                           "1", "--out", str(tmp_path / "out"))
    assert code == 1 and f"S010/002: no face found in {blank}" in output, output
    assert not (tmp_path / "out" / "Emotion" / "S010" / "002").exists()
    assert len(read_ckplus(tmp_path / "out")) == 5  # the others read as a complete tree


def test_real_sequence_is_centred_on_the_template(tmp_path):
    real = shared_path("ckplus")
    root = tmp_path / "CK+"
    for part in ("cohn-kanade-images", "Emotion"):  # one 8-frame sequence, linked, not copied
        (root / part / "S106").mkdir(parents=True)
        (root / part / "S106" / "004").symlink_to(real / part / "S106" / "004")
    out = tmp_path / "aligned"
    code, output = prepare("--dataset", "ckplus", "--data-root", str(root), "--out", str(out),
                           "--workers", "1")
    assert code == 0, output
    (sequence,) = read_ckplus(out)
    assert (sequence.clip, sequence.emotion, len(sequence.frames)) == ("S106_004", "disgust", 8)
    detector = DlibFaceDetector(upsample=1)
    target = template_points("5point", size=224, margin=0.1)[:2]
    for path in (sequence.frames[0], sequence.frames[-1]):  # neutral, then the apex
        crop = cv2.imread(str(path))
        assert crop.shape == (224, 224, 3)
        (face,) = detector.detect_faces(crop)
        eyes = np.stack([face.landmarks[36:42].mean(axis=0), face.landmarks[42:48].mean(axis=0)])
        assert np.abs(eyes - target).max() < 0.05 * 224, (path, eyes, target)


def test_prepare_without_cohn_kanade_images_exits_2(tmp_path):
    (tmp_path / "CK+" / "Emotion").mkdir(parents=True)
    code, output = prepare("--dataset", "ckplus", "--data-root", str(tmp_path / "CK+"), "--out",
                           str(tmp_path / "out"))
    assert code == 2 and "no cohn-kanade-images/ folder" in output, output
    assert not (tmp_path / "out").exists()


def test_prepare_then_loso(aligned, tmp_path):
    out, _ = aligned
    metrics = apex_loso_metrics(tmp_path, out, {"dataset": "ckplus", "protocol": "7class",
                                                "classes": list(SEVEN)})
    assert metrics["n_samples"] == 6 and metrics["n_folds"] == 3
