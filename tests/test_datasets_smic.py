"""SMIC-HS reader over a fixture tree built from the SMIC rows of combined_3class_gt.csv, and the
SMIC-HS-E sheet reader on the real sheet."""

from __future__ import annotations

import csv
from collections import Counter

import openpyxl
import pytest

from conftest import shared_path
from fervid.datasets import AnnotationWarning, read_smic, read_smic_hs_e_sheet
from fervid.datasets.smic import smic_clip_id, smic_subject_id
from fervid.samples import DatasetFormatError


def make_clip(folder, numbers):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"image{n:06d}.bmp").touch()


def gt_rows():
    with open(shared_path("annotations", "megc2019", "combined_3class_gt.csv"), newline="") as f:
        return [(r[1], r[2], int(r[3])) for r in csv.reader(f) if r[0] == "smic"]


def test_counts_ids_and_order_match_the_ground_truth(smic_release):
    table = read_smic(smic_release[0])
    assert len(table) == 164
    assert len(table.subjects) == 16
    assert Counter(s.emotion for s in table) == {"negative": 70, "positive": 51, "surprise": 43}
    assert {s.dataset for s in table} == {"smic"}
    assert [(s.subject, s.clip, s.label) for s in table] == gt_rows()
    assert len(table.labelled()) == 164


def test_onset_offset_apex_from_the_folder(smic_release):
    root, expected = smic_release
    for s in read_smic(root):
        onset, offset, emotion = expected[s.clip]
        assert (s.onset, s.offset, s.emotion) == (onset, offset, emotion)
        assert s.apex == (onset + offset) // 2
        assert [p.name for p in s.frames] == [f"image{n:06d}.bmp"
                                              for n in range(onset, offset + 1)]
    first = read_smic(root)[0]
    assert first.frames[0].parent == root / "HS" / "s1" / "micro" / "negative" / "s1_ne_01"


def test_root_may_be_the_hs_folder(smic_release):
    root = smic_release[0]
    assert [s.key for s in read_smic(root / "HS")] == [s.key for s in read_smic(root)]


def test_padded_and_unpadded_folders_give_the_same_ids(tmp_path):
    for name, subject, clip in (("raw", "s3", "s3_po_11"), ("padded", "s03", "s03_po_11")):
        make_clip(tmp_path / name / "HS" / subject / "micro" / "positive" / clip, range(98, 103))
        sample = read_smic(tmp_path / name)[0]
        assert (sample.subject, sample.clip, sample.label) == ("s03", "s03_po_11", 1)
        assert (sample.onset, sample.apex, sample.offset) == (98, 100, 102)
    assert smic_subject_id("s1") == smic_subject_id(1) == "s01"
    assert smic_clip_id("s1_ne_1") == "s01_ne_01"
    assert smic_clip_id("s12_sur_03") == "s12_sur_03"


def test_numeric_order_of_subjects_and_frames(tmp_path):
    hs = tmp_path / "SMIC_all_cropped" / "HS"
    make_clip(hs / "s10" / "micro" / "surprise" / "s10_sur_01", [99999, 100000])
    make_clip(hs / "s2" / "micro" / "negative" / "s2_ne_10", [5])
    make_clip(hs / "s2" / "micro" / "negative" / "s2_ne_9", [7])
    table = read_smic(tmp_path / "SMIC_all_cropped")
    assert [s.clip for s in table] == ["s02_ne_09", "s02_ne_10", "s10_sur_01"]
    assert [p.name for p in table[2].frames] == ["image099999.bmp", "image100000.bmp"]


def test_broken_clips_give_one_error(tmp_path):
    hs = tmp_path / "HS"
    make_clip(hs / "s1" / "micro" / "negative" / "s1_ne_01", [1, 2, 3])
    make_clip(hs / "s1" / "micro" / "negative" / "s1_ne_02", [])           # empty
    make_clip(hs / "s1" / "micro" / "positive" / "s1_po_01", [1, 2, 5, 6])  # gap
    make_clip(hs / "s1" / "micro" / "happy" / "s1_ha_01", [1])              # not a class
    make_clip(hs / "s2" / "micro" / "surprise" / "s3_sur_01", [1])          # wrong subject
    with pytest.raises(DatasetFormatError) as caught:
        read_smic(tmp_path)
    assert caught.value.path == hs
    assert caught.value.problems == [
        "s1/micro/happy: not an emotion folder (negative, positive, surprise)",
        "s1/micro/negative/s1_ne_02: no image<N>.bmp frames",
        "s1/micro/positive/s1_po_01: frame numbers have gaps (image<N>.bmp for N in 3-4)",
        "s2/micro/surprise/s3_sur_01: clip folder name is not s2_<ne|po|sur>_<number>",
    ]


def test_clip_code_disagreeing_with_folder_warns(tmp_path):
    make_clip(tmp_path / "HS" / "s18" / "micro" / "negative" / "s18_sur_03", [1, 2])
    with pytest.warns(AnnotationWarning, match="s18_sur_03.*labelled negative"):
        sample = read_smic(tmp_path)[0]
    assert (sample.emotion, sample.label) == ("negative", 0)


def test_not_a_smic_folder(tmp_path):
    with pytest.raises(DatasetFormatError, match="no HS/ folder"):
        read_smic(tmp_path)


def test_unknown_protocol(smic_release):
    with pytest.raises(ValueError, match="valid protocols: 3class"):
        read_smic(smic_release[0], protocol="5class")


def test_hs_e_sheet():
    sheet = read_smic_hs_e_sheet(shared_path("annotations", "smic", "SMIC-HS-E_annotation.xlsx"))
    assert len(sheet) == 157
    assert list(sheet.columns) == ["subject", "clip", "emotion", "onset", "offset",
                                   "video_first", "video_last", "onset2", "offset2", "onset3",
                                   "offset3"]
    first = sheet.iloc[0]
    # offset, video_first and video_last are formula cells: their cached values must be read.
    assert (first["subject"], first["clip"], first["emotion"]) == ("s20", "s20_ne_01",
                                                                   "negative")
    assert (first["onset"], first["offset"], first["video_first"], first["video_last"]) == (
        17581039, 17581055, 17580887, 17581094)
    assert sheet[["onset", "offset", "video_first", "video_last"]].notna().all().all()
    assert (sheet.onset <= sheet.offset).all()
    assert Counter(sheet.emotion) == {"negative": 66, "positive": 51, "surprise": 40}
    assert sheet.subject.nunique() == 16
    assert set(sheet["clip"]) <= {clip for _, clip, _ in gt_rows()}
    assert sheet.onset2.notna().sum() == 8
    # A quirk of the released sheet: s18_sur_03 is marked negative (the ground truth: surprise).
    assert sheet.set_index("clip").loc["s18_sur_03", "emotion"] == "negative"


def test_hs_e_formulas_without_cached_values_are_reported(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "HS"
    sheet.append(["Subject", "Filename", None, "OnsetF", "OffsetF", "FirstF", "LastF", "Emotion"])
    sheet.append([1, "s1_ne_01", None, 100, "=D2+10", 50, 300, "negative"])
    path = tmp_path / "hs_e.xlsx"
    workbook.save(path)  # openpyxl stores the formula without computing it
    with pytest.raises(DatasetFormatError,
                       match=r"row 2: OffsetF is blank \(a formula cell without") as caught:
        read_smic_hs_e_sheet(path)
    assert caught.value.path == path
