"""The generated CASME II-like set: official layout, determinism, class-bearing motion."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from conftest import SHARED_DATA
from fervid.representation import ststnet_input
from fervid.synth import make_casme2_like

#: Row 1 of the official CASME2-coding-20140508.xlsx, written out by hand on purpose.
OFFICIAL_HEADER = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
                   "Action Units", "Estimated Emotion")
FIVE_CLASS = {"happiness", "disgust", "repression", "surprise", "others"}


def rows(sheet_path: Path) -> list[tuple]:
    sheet = openpyxl.load_workbook(sheet_path).active
    return list(sheet.iter_rows(values_only=True))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return make_casme2_like(tmp_path_factory.mktemp("synth"), n_subjects=4, clips_per_subject=5)


def test_same_seed_same_bytes_other_seed_other_set(tmp_path):
    kwargs = {"n_subjects": 2, "clips_per_subject": 3}
    make_casme2_like(tmp_path / "a", seed=3, **kwargs)
    time.sleep(1.1)  # across a second boundary: no time stamp may leak into the files
    make_casme2_like(tmp_path / "b", seed=3, **kwargs)
    make_casme2_like(tmp_path / "c", seed=4, **kwargs)
    a, b, c = (tree_bytes(tmp_path / n) for n in "abc")
    assert len(a) > 20 and a == b  # frames and the sheet, byte for byte
    assert a != c


def test_default_set_is_quick_and_complete(tmp_path):
    start = time.perf_counter()
    sheet = make_casme2_like(tmp_path)
    assert time.perf_counter() - start < 10  # `make demo` builds it every time
    body = rows(sheet)[1:]
    assert len(body) == 36
    assert {r[0] for r in body} == {f"{i:02d}" for i in range(1, 7)}
    assert {r[8] for r in body} == FIVE_CLASS  # every class of the 5-class protocol


def test_layout_and_header_as_official(small_set):
    root = small_set.parent
    assert small_set.name == "CASME2-coding-20140508.xlsx"
    book = openpyxl.load_workbook(small_set)
    assert book.sheetnames[0] == "Sheet1"
    sheet = book.active
    assert tuple(c.value for c in sheet[1]) == OFFICIAL_HEADER
    official = SHARED_DATA / "annotations/casme2/CASME2-coding-20140508.xlsx"
    if official.exists():  # the real sheet, when the shared data is there
        real = openpyxl.load_workbook(official).active
        assert tuple(c.value for c in real[1]) == tuple(c.value for c in sheet[1])
    for row in sheet.iter_rows(min_row=2):
        subject = row[0]
        assert subject.data_type == "s" and re.fullmatch(r"\d\d", subject.value)  # text '01'
        assert all(isinstance(row[i].value, int) for i in (3, 4, 5))
        assert row[2].value is None and row[6].value is None
        assert isinstance(row[7].value, int | str) and row[8].value in FIVE_CLASS
    folders = sorted(p.relative_to(root) for p in (root / "CASME2_RAW_selected").glob("*/*"))
    listed = sorted(Path("CASME2_RAW_selected", f"sub{r[0]}", r[1]) for r in rows(small_set)[1:])
    assert folders == listed
    assert all(re.fullmatch(r"EP\d\d_\d\df?", f.name) for f in folders)


def test_clips_have_ordered_frames_on_disk(small_set):
    frames_root = small_set.parent / "CASME2_RAW_selected"
    onsets = set()
    for subject, clip, _, onset, apex, offset, _, _, _ in rows(small_set)[1:]:
        assert onset <= apex <= offset and 10 <= offset - onset + 1 <= 20
        onsets.add(onset)
        folder = frames_root / f"sub{subject}" / clip
        expected = {f"img{n}.jpg" for n in range(onset, offset + 1)}
        assert {p.name for p in folder.iterdir()} == expected
        image = cv2.imread(str(folder / f"img{apex}.jpg"), cv2.IMREAD_UNCHANGED)
        assert image is not None and image.shape == (64, 64) and image.dtype == np.uint8
    assert len(onsets) > 5  # absolute frame numbers, not all starting at 1


def test_motion_is_subtle_but_separates_classes(small_set):
    """Onset-to-apex flow images of different classes differ: nearest-centroid LOSO works."""
    frames_root = small_set.parent / "CASME2_RAW_selected"
    features, emotions, subjects = [], [], []
    for subject, clip, _, onset, apex, _, _, _, emotion in rows(small_set)[1:]:
        folder = frames_root / f"sub{subject}" / clip
        a = cv2.imread(str(folder / f"img{onset}.jpg"), cv2.IMREAD_GRAYSCALE)
        b = cv2.imread(str(folder / f"img{apex}.jpg"), cv2.IMREAD_GRAYSCALE)
        assert 0.2 < np.abs(a.astype(float) - b).mean() < 8  # visible, but micro
        features.append(ststnet_input(a, b).astype(float).ravel())
        emotions.append(emotion)
        subjects.append(subject)
    x, y, s = np.array(features), np.array(emotions), np.array(subjects)
    correct = 0
    for held_out in np.unique(s):
        train = s != held_out
        classes = np.unique(y[train])
        centroids = np.array([x[train & (y == c)].mean(0) for c in classes])
        for xi, yi in zip(x[~train], y[~train], strict=True):
            correct += classes[np.argmin(((centroids - xi) ** 2).sum(1))] == yi
    assert correct / len(y) > 0.6  # chance is 0.2


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_subjects"):
        make_casme2_like(Path("unused"), n_subjects=0)
