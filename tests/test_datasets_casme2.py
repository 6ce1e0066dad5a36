"""CASME II reader on the real coding sheet over fixture frame trees (see conftest.py)."""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter

import openpyxl
import pytest

from conftest import shared_path
from fervid.datasets import AnnotationWarning, read_casme2
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore::fervid.datasets.AnnotationWarning")

HEADER = ["Subject", "Filename", None, "OnsetFrame", "ApexFrame", "OffsetFrame", None,
          "Action Units", "Estimated Emotion"]


def write_sheet(path, rows, header=HEADER):
    """A small sheet in the official layout; rows of (subject, clip, onset, apex, offset,
    emotion)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    for subject, clip, onset, apex, offset, emotion in rows:
        sheet.append([subject, clip, None, onset, apex, offset, None, "4", emotion])
    workbook.save(path)
    return path


def make_clip(folder, numbers, prefix="img"):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"{prefix}{n}.jpg").touch()


def frame_number(path):
    return int(re.search(r"(\d+)\.jpg$", path.name).group(1))


def test_all_clips_subjects_and_emotions(casme2_release):
    table = read_casme2(*casme2_release, protocol="all")
    assert len(table) == 255
    assert len(table.subjects) == 26
    assert Counter(s.emotion for s in table) == {
        "others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25,
        "sadness": 7, "fear": 2}
    assert all(s.label is not None and table.classes[s.label] == s.emotion for s in table)


def test_five_class_protocol(casme2_release):
    table = read_casme2(*casme2_release)
    assert table.classes == PROTOCOL_CLASSES["casme2_5class"]
    assert len(table) == 255
    labelled = table.labelled()
    assert len(labelled) == 246
    assert Counter(table.classes[s.label] for s in labelled) == {
        "others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25}
    assert {s.emotion for s in table if s.label is None} == {"sadness", "fear"}


def test_three_class_protocol_is_megc2019s_casme2_part(casme2_release):
    table = read_casme2(*casme2_release, protocol="3class")
    labelled = table.labelled()
    assert table.classes == ("negative", "positive", "surprise")
    assert len(labelled) == 145
    assert len(labelled.subjects) == 24
    assert Counter(table.classes[s.label] for s in labelled) == {
        "negative": 88, "positive": 32, "surprise": 25}
    gt_csv = shared_path("annotations", "megc2019", "combined_3class_gt.csv")
    with open(gt_csv, newline="") as f:
        gt = [(r[1], r[2], int(r[3])) for r in csv.reader(f) if r[0] == "casme2"]
    assert sorted((s.subject, s.clip, s.label) for s in labelled) == sorted(gt)
    # The two disgust clips MEGC2019 left out: apex '/' and apex == onset.
    dropped = {(s.subject, s.clip) for s in table
               if s.label is None and s.emotion in ("disgust", "repression")}
    assert dropped == {("sub04", "EP12_01f"), ("sub05", "EP09_05f")}


def test_ids_and_frames(casme2_release):
    root, sheet = casme2_release
    table = read_casme2(root, sheet)
    first = table[0]
    assert (first.dataset, first.subject, first.clip) == ("casme2", "sub01", "EP02_01f")
    assert (first.onset, first.apex, first.offset) == (46, 59, 86)
    assert first.frames[0] == root / "sub01" / "EP02_01f" / "img46.jpg"
    assert first.frames[first.apex_position].name == "img59.jpg"
    assert len(first.frames) == 41
    assert first.key == "casme2_sub01_EP02_01f"
    for s in table:  # numeric order everywhere, including clips running past img99
        numbers = [frame_number(p) for p in s.frames]
        assert numbers == list(range(s.onset, s.offset + 1))
    assert any(s.onset < 100 <= s.offset for s in table)


def test_slash_apex_uses_middle_frame_with_warning(casme2_release):
    with pytest.warns(AnnotationWarning, match=r"sub04/EP12_01f.*middle frame 291"):
        table = read_casme2(*casme2_release)
    sample = next(s for s in table if (s.subject, s.clip) == ("sub04", "EP12_01f"))
    assert (sample.onset, sample.apex, sample.offset) == (261, 291, 321)
    assert sample.frames[sample.apex_position].name == "img291.jpg"


def test_numeric_frame_order_and_raw_layout(tmp_path):
    sheet = write_sheet(tmp_path / "coding.xlsx", [("01", "EP01_01", 8, 9, 12, "happiness")])
    root = tmp_path / "CASME2_RAW_selected"
    make_clip(root / "sub01" / "EP01_01", range(1, 20))
    (root / "sub01" / "EP01_01" / "Thumbs.db").touch()
    sample = read_casme2(root, sheet)[0]
    assert [p.name for p in sample.frames] == ["img8.jpg", "img9.jpg", "img10.jpg",
                                               "img11.jpg", "img12.jpg"]
    assert sample.frames[sample.apex_position].name == "img9.jpg"


def test_cropped_release_is_detected(tmp_path):
    sheet = write_sheet(tmp_path / "coding.xlsx", [("01", "EP01_01", 9, 10, 11, "disgust"),
                                                   ("02", "EP02_03f", 98, 99, 101, "others")])
    root = tmp_path / "Cropped"
    make_clip(root / "sub01" / "EP01_01", range(9, 12), prefix="reg_img")
    make_clip(root / "sub02" / "EP02_03f", range(98, 102), prefix="reg_img")
    table = read_casme2(root, sheet)
    assert [p.name for p in table[0].frames] == ["reg_img9.jpg", "reg_img10.jpg",
                                                 "reg_img11.jpg"]
    assert [p.name for p in table[1].frames][-2:] == ["reg_img100.jpg", "reg_img101.jpg"]
    assert [s.label for s in table] == [1, 4]


def test_missing_frames_and_clip_folders_give_one_error(tmp_path, casme2_release):
    real_root, sheet = casme2_release
    root = tmp_path / "CASME2_RAW_selected"
    shutil.copytree(real_root / "sub01", root / "sub01")  # only 9 of the 255 clips
    (root / "sub01" / "EP02_01f" / "img50.jpg").unlink()
    (root / "sub01" / "EP02_01f" / "img51.jpg").unlink()
    with pytest.raises(DatasetFormatError) as caught:
        read_casme2(root, sheet)
    err = caught.value
    assert err.path == root
    assert len(err.problems) == 255 - 8
    assert err.problems[0] == ("sub01/EP02_01f: 2 of 41 frames missing "
                               "(img{N}.jpg for N in 50-51)")
    assert "sub02/EP01_11f: clip folder missing" in err.problems
    message = str(err)
    assert str(root) in message and "... and 237 more" in message


def test_empty_root_says_no_frames_were_found(tmp_path, casme2_release):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(DatasetFormatError, match="img{N}.jpg .* reg_img{N}.jpg"):
        read_casme2(root, casme2_release[1])


def test_missing_root_is_a_format_error(tmp_path, casme2_release):
    with pytest.raises(DatasetFormatError, match="does not exist") as caught:
        read_casme2(tmp_path / "nowhere", casme2_release[1])
    assert caught.value.path == tmp_path / "nowhere"


def test_renamed_columns_are_all_listed(tmp_path, casme2_release):
    root, real_sheet = casme2_release
    workbook = openpyxl.load_workbook(real_sheet)
    sheet = workbook.active
    sheet["D1"] = "Onset"                 # was OnsetFrame
    sheet["I1"] = "Emotion"               # was Estimated Emotion
    renamed = tmp_path / "renamed.xlsx"
    workbook.save(renamed)
    with pytest.raises(DatasetFormatError) as caught:
        read_casme2(root, renamed)
    err = caught.value
    assert err.path == renamed
    assert err.problems[:2] == ["missing column 'OnsetFrame'",
                                "missing column 'Estimated Emotion'"]
    assert "'Onset'" in err.problems[2]


def test_bad_sheet_values_are_all_listed(tmp_path):
    sheet = write_sheet(tmp_path / "coding.xlsx", [
        ("01", "EP01_01", 10, "x", 20, "happiness"),   # apex text
        ("01", "EP01_02", 30, 25, 40, "happiness"),    # apex before onset
        ("02", None, 1, 2, 3, "others"),               # blank clip
        ("03", "EP01_03", "ten", 12, 14, "others"),    # onset text
    ])
    with pytest.raises(DatasetFormatError) as caught:
        read_casme2(tmp_path, sheet)
    problems = caught.value.problems
    assert caught.value.path == sheet
    assert "row 4: Filename is blank" in problems
    assert "row 5: OnsetFrame 'ten' is not a frame number" in problems
    assert "row 2: ApexFrame 'x' is not a frame number or '/'" in problems
    assert len(problems) == 3  # order is checked once values parse


def test_apex_outside_the_clip_is_reported(tmp_path):
    sheet = write_sheet(tmp_path / "coding.xlsx", [("01", "EP01_02", 30, 25, 40, "others"),
                                                   ("01", "EP01_02", 30, 35, 40, "others")])
    with pytest.raises(DatasetFormatError) as caught:
        read_casme2(tmp_path, sheet)
    assert caught.value.problems == [
        "row 2: sub01/EP01_02 needs 0 <= onset <= apex <= offset, got 30, 25, 40",
        "row 3: sub01/EP01_02 is listed twice"]


def test_unknown_protocol_lists_valid_ones(casme2_release):
    with pytest.raises(ValueError, match="5class, 3class, all"):
        read_casme2(*casme2_release, protocol="7class")
