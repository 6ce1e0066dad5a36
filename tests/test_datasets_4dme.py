"""4DME reader on generated sheets and frame trees (no real 4DME sheet is available)."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from conftest import _touch_frames
from fervid.datasets import AnnotationWarning
from fervid.datasets.fourdme import FOURDME_EMOTIONS, read_fourdme
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.samples import DatasetFormatError
from release_trees import fourdme as tree


def read(root, sheet, protocol="5class"):
    return dataset_spec("4dme").read(ReadRequest(root, protocol, sheet))


def test_the_registered_reader_reads_the_generated_release(tmp_path):
    release = tree.build(tmp_path)
    table = read(tmp_path, release["sheet"], release["protocol"])  # the folder holding gray_micro
    assert table.classes == FOURDME_EMOTIONS and len(table) == len(tree.ROWS)
    assert table.subjects == ["4dme/S01", "4dme/S02", "4dme/S03"]
    first = table[0]
    assert (first.subject, first.clip, first.onset, first.apex, first.offset) == \
        ("S01", "S01_0101", 120, 126, 135)
    assert first.emotion == "negative" and first.fps == 60.0
    assert first.frames[0] == release["root"] / "S01" / "S01_0101" / "S01_0101_0120.jpg"
    assert [s.emotion for s in table][3:6] == ["repression", "others", "negative+surprise"]
    # The AUs text is kept ((k) marks included); a blank one is built from the 0/1 columns.
    assert [s.au for s in table][3::3] == ["AU14(k)", "AU4+AU7"]
    labels = [s.label for s in table]
    assert labels[5] is None and labels[4] == FOURDME_EMOTIONS.index("others")


def test_3class_leaves_out_others_and_several_emotions(tmp_path):
    release = tree.build(tmp_path)
    table = read(release["root"], release["sheet"], "3class")
    counts = Counter(table.classes[s.label] for s in table.labelled())
    assert counts == {"negative": 3, "positive": 2, "surprise": 1}


def test_a_folder_numbered_from_one_is_taken_in_order(tmp_path):
    release = tree.build(tmp_path)
    clip = release["root"] / "S01" / "S01_0102"
    shutil.rmtree(clip)
    _touch_frames(clip, (f"{n}.jpg" for n in range(1, 20)), tmp_path / "blank")
    with pytest.warns(AnnotationWarning, match=r"S01/S01_0102 \(1\.\.19 for 300\.\.318\)"):
        table = read(release["root"], release["sheet"])
    sample = table[1]
    assert sample.frames[sample.apex_position].name == "6.jpg"  # apex 305 is the 6th frame


def test_bad_rows_are_one_error_naming_row_and_field(tmp_path):
    rows = list(tree.ROWS)
    rows[1] = ("S01", "S01_0102", "Angry", 300, 305, 318, "AU12", (12,))
    rows[2] = ("S01", "S01_0201", "Surprise", 50, 53, 61, "AU1+AU2", (1, 2))
    with pytest.raises(DatasetFormatError, match=r"row 3: Emotion 'angry' is not one of "
                                                 r"negative, positive"):
        read_fourdme(tmp_path, tree.write_sheet(tmp_path / "a.xlsx", rows))
    rows[1] = ("S01", "S01_0102", "Positive", 300, "x", 318, "AU12", (12,))
    rows[2] = ("S01", "S01_0201", "Surprise", 50, 53, 45, "AU1+AU2", (1, 2))
    with pytest.raises(DatasetFormatError) as err:
        read_fourdme(tmp_path, tree.write_sheet(tmp_path / "b.xlsx", rows))
    assert err.value.problems == ["row 3: Apex 'x' is not a frame number or '/'"]


def test_a_blank_apex_is_the_middle_frame_and_missing_clips_are_listed(tmp_path):
    rows = list(tree.ROWS)
    rows[0] = ("S01", "S01_0101", "Negative", 120, None, 135, "AU4+AU7", (4, 7))
    sheet = tree.write_sheet(tmp_path / "sheet.xlsx", rows)
    root = tree.write_frames(tmp_path / "gray_micro_crop", rows)
    with pytest.warns(AnnotationWarning, match=r"S01/S01_0101 .*middle frame 127"):
        assert read(root, sheet)[0].apex == 127
    shutil.rmtree(root / "S03")
    (root / "S01" / "S01_0201" / "S01_0201_0055.jpg").unlink()
    with pytest.raises(DatasetFormatError) as err, pytest.warns(AnnotationWarning):
        read(root, sheet)
    assert err.value.problems == [
        "S01/S01_0201: 1 of 12 frames missing (<name>{N}.jpg for N in 55)",
        "S03/S03_0101: clip folder missing (S03_0101)",
        "S03/S03_0202: clip folder missing (S03_0202)"]
