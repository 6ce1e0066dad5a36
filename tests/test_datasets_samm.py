"""SAMM reader on the real sheet (13 preamble rows) over a fixture frame tree."""

from __future__ import annotations

import csv
import shutil
from collections import Counter

import openpyxl
import pytest

from conftest import shared_path
from fervid.datasets import read_samm
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError


def edited_sheet(real_sheet, path, **cells):
    """A copy of the real sheet with some cells overwritten (``E15='x'``)."""
    workbook = openpyxl.load_workbook(real_sheet)
    for cell, value in cells.items():
        workbook.active[cell] = value
    workbook.save(path)
    return path


def test_all_clips_subjects_and_emotions(samm_release):
    table = read_samm(*samm_release, protocol="all")
    assert len(table) == 159
    assert len(table.subjects) == 29
    # Lower-cased from the sheet's "Anger", "Other", ...
    assert Counter(s.emotion for s in table) == {
        "anger": 57, "other": 26, "happiness": 26, "surprise": 15, "contempt": 12,
        "disgust": 9, "fear": 8, "sadness": 6}
    assert all(table.classes[s.label] == s.emotion for s in table)


def test_five_class_protocol(samm_release):
    table = read_samm(*samm_release)
    assert table.classes == PROTOCOL_CLASSES["samm_5class"]
    labelled = table.labelled()
    assert len(labelled) == 136
    assert Counter(table.classes[s.label] for s in labelled) == {
        "anger": 57, "other": 26, "happiness": 26, "surprise": 15, "contempt": 12}


def test_three_class_protocol_is_megc2019s_samm_part(samm_release):
    table = read_samm(*samm_release, protocol="3class")
    labelled = table.labelled()
    assert len(labelled) == 133
    assert len(labelled.subjects) == 28
    assert Counter(table.classes[s.label] for s in labelled) == {
        "negative": 92, "positive": 26, "surprise": 15}
    assert {s.emotion for s in table if s.label is None} == {"other"}
    gt_csv = shared_path("annotations", "megc2019", "combined_3class_gt.csv")
    with open(gt_csv, newline="") as f:  # the ground truth writes subject 6 for folder 006
        gt = [(r[1].zfill(3), r[2], int(r[3])) for r in csv.reader(f) if r[0] == "samm"]
    assert sorted((s.subject, s.clip, s.label) for s in labelled) == sorted(gt)


def test_ids_and_frames(samm_release):
    root, sheet = samm_release
    first = read_samm(root, sheet)[0]
    assert (first.dataset, first.subject, first.clip) == ("samm", "006", "006_1_2")
    assert (first.onset, first.apex, first.offset) == (5562, 5588, 5632)
    assert first.frames[0] == root / "006" / "006_1_2" / "006_05562.jpg"
    assert first.frames[first.apex_position].name == "006_05588.jpg"
    assert len(first.frames) == 5632 - 5562 + 1
    assert (first.emotion, first.label) == ("anger", 0)


def test_emotion_case_and_spaces_do_not_matter(tmp_path, samm_release):
    root, real_sheet = samm_release
    sheet = edited_sheet(real_sheet, tmp_path / "edited.xlsx", J15=" HAPPINESS ", J16="anger")
    table = read_samm(root, sheet)
    assert [(s.emotion, s.label) for s in table[:2]] == [("happiness", 2), ("anger", 0)]


def test_numeric_subjects_are_padded(tmp_path, samm_release):
    root, real_sheet = samm_release
    sheet = edited_sheet(real_sheet, tmp_path / "edited.xlsx", A15=6)  # a number, not '006'
    assert read_samm(root, sheet)[0].subject == "006"


def test_renamed_column_names_the_sheet(tmp_path, samm_release):
    root, real_sheet = samm_release
    sheet = edited_sheet(real_sheet, tmp_path / "edited.xlsx", E14="Apex")
    with pytest.raises(DatasetFormatError) as caught:
        read_samm(root, sheet)
    assert caught.value.path == sheet
    assert caught.value.problems[0] == "missing column 'Apex Frame'"
    assert "columns found on row 14" in caught.value.problems[1]


def test_missing_frames_and_clip_folders_give_one_error(tmp_path, samm_release):
    real_root, sheet = samm_release
    root = tmp_path / "SAMM"
    shutil.copytree(real_root / "006", root / "006")
    shutil.rmtree(root / "006" / "006_1_3")
    (root / "006" / "006_1_2" / "006_05600.jpg").unlink()
    with pytest.raises(DatasetFormatError) as caught:
        read_samm(root, sheet)
    problems = caught.value.problems
    assert caught.value.path == root
    assert problems[:2] == [
        "006/006_1_2: 1 of 71 frames missing ({subject}_{N:05}.jpg for N in 5600)",
        "006/006_1_3: clip folder missing"]
    n_006 = sum(1 for p in (real_root / "006").iterdir())
    assert len(problems) == 159 - n_006 + 2


def test_unknown_protocol_lists_valid_ones(samm_release):
    with pytest.raises(ValueError, match="5class, 3class, all"):
        read_samm(*samm_release, protocol="3-class")


def test_missing_sheet_is_a_format_error(tmp_path, samm_release):
    with pytest.raises(DatasetFormatError, match="does not exist"):
        read_samm(samm_release[0], tmp_path / "SAMM_Micro_FACS_Codes_v2.xlsx")
