"""CAS(ME)²'s cut samples: the real code sheet, and frame trees generated from it."""

from __future__ import annotations

import shutil
from collections import Counter

import openpyxl
import pytest

from fervid.datasets import AnnotationWarning
from fervid.datasets.casme_sq import CASME_SQ_PROTOCOLS, TYPES, read_casme_sq_sheet
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.samples import DatasetFormatError
from release_trees import casme_sq as tree

#: The three macro-expression rows whose apex comes after their offset (Excel row: apex).
LATE_APEX = {170: 1230, 242: 2203, 262: 2455}


def read(root, sheet, protocol="4class"):
    return dataset_spec("casme_sq").read(ReadRequest(root, protocol, sheet))


def corrected_copy(tmp_path):
    """The real sheet with the three late apexes moved onto their offsets."""
    workbook = openpyxl.load_workbook(tree.real_sheet())
    for row in LATE_APEX:
        cells = workbook["CASFEcode_final"][row]
        cells[3].value = cells[4].value
    path = tmp_path / "corrected.xlsx"
    workbook.save(path)
    return path


def test_the_real_sheet_micro_expressions_and_its_three_late_apexes():
    micro = read_casme_sq_sheet(tree.real_sheet(), TYPES[:1])
    assert len(micro) == 57 and micro["subject"].nunique() == 14
    assert Counter(micro["emotion"]) == {"negative": 21, "others": 19, "surprise": 9,
                                         "positive": 8}
    assert micro.iloc[0][["subject", "clip", "onset", "apex", "offset", "au"]].tolist() == \
        ["s15", "disgust2_3", 699, 703, 707, "43"]
    with pytest.warns(AnnotationWarning, match=r"3 expression\(s\) have their apex after their "
                                               r"offset and are left out: row 170 \(s27/"
                                               r"disgust1_5: apex 1230, offset 1224\); row 242"):
        every = read_casme_sq_sheet(tree.real_sheet())
    assert len(every) == 354 and not set(every["excel_row"]) & set(LATE_APEX)


def test_the_real_sheet_has_357_intervals_of_22_subjects(tmp_path):
    rows = read_casme_sq_sheet(corrected_copy(tmp_path))
    assert len(rows) == 357 and rows["subject"].nunique() == 22
    assert Counter(rows["type"]) == {"macro-expression": 300, "micro-expression": 57}
    assert Counter(rows["emotion"]) == {"negative": 126, "positive": 124, "others": 82,
                                        "surprise": 25}
    assert rows["offset"].isna().sum() == 44 and rows["apex"].isna().sum() == 1
    assert rows["subject"].iloc[-1] == "s40"


def test_the_registered_reader_reads_the_micro_expressions_of_the_generated_tree(tmp_path):
    release = tree.build(tmp_path)
    table = read(release["root"], release["sheet"], release["protocol"])
    assert len(table) == 57 and len(table.subjects) == 14
    assert Counter(table.classes[s.label] for s in table) == {"negative": 21, "others": 19,
                                                              "surprise": 9, "positive": 8}
    first = table[0]
    assert (first.dataset, first.subject, first.clip, first.fps, first.au) == \
        ("casme_sq", "s15", "disgust2_3", 30.0, "43")
    assert first.frames[0] == release["root"] / "s15" / "disgust2_3" / "img699.jpg"
    assert first.frames[first.apex_position].name == "img703.jpg"
    three = read(release["root"], release["sheet"], "3class")
    assert three.classes == CASME_SQ_PROTOCOLS["3class"] and len(three.labelled()) == 38


def test_all_expressions_with_offsets_from_the_folders(tmp_path):
    release = tree.build(tmp_path)
    with pytest.warns(AnnotationWarning) as caught:
        table = read(tmp_path, tree.real_sheet(), "4class_all")  # the folder above selectedpic
    assert len(table) == 354 and len(table.subjects) == 22
    with pytest.warns(AnnotationWarning):
        assert len(read(tmp_path, corrected_copy(tmp_path), "3class_all").labelled()) == 275
    notes = [str(w.message) for w in caught]
    assert any("3 expression(s) have their apex after" in n for n in notes)
    assert any("44 sample(s) have no coded offset" in n for n in notes)
    assert any("s34/anger1_1 (sheet row 309): apex not coded; using the middle frame 1775" in n
               for n in notes)
    open_ended = next(s for s in table if (s.subject, s.clip) == ("s15", "anger2_1"))
    assert (open_ended.onset, open_ended.offset) == (2155, 2163 + tree.OPEN_FRAMES)
    assert release["root"] == tmp_path / "selectedpic"


def test_the_cropped_set_numbered_from_one(tmp_path):
    micro = [r for r in tree.sheet_rows(tree.real_sheet()) if r[6] == "micro-expression"]
    root = tree.write_frames(tmp_path / "cropped", micro, name="{i}.jpg",
                             folder_of=lambda s: s[1:])
    with pytest.warns(AnnotationWarning, match=r"57 clip folder\(s\) number their frames"):
        table = read(root, tree.real_sheet())
    assert len(table) == 57 and table[0].frames[0] == root / "15" / "disgust2_3" / "1.jpg"
    shutil.rmtree(root / "15" / "happy1_1")
    with pytest.raises(DatasetFormatError, match=r"s15/happy1_1: clip folder missing"), \
            pytest.warns(AnnotationWarning):
        read(root, tree.real_sheet())


def test_bad_rows_are_one_error_naming_row_and_field(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "CASFEcode_final"
    for row in ([1, "anger1_1", 557, 572, 608, "4+10", "negative", "micro-expression", "anger"],
                [99, "anger1_2", 700, 705, 710, "4", "negative", "micro-expression", "anger"],
                [2, "happy1_1", "x", 705, 710, "12", "happy", "micro-expression", "happiness"],
                [2, "happy1_2", 800, 805, 810, "12", "positive", "mega-expression", "happiness"]):
        sheet.append(row)
    workbook.save(tmp_path / "bad.xlsx")
    with pytest.raises(DatasetFormatError) as err:
        read(tmp_path, tmp_path / "bad.xlsx")
    assert err.value.problems == [
        "row 3: onset 'x' is not a frame number",
        "row 3: class 'happy' is not one of negative, positive, surprise, others",
        "row 4: type 'mega-expression' is not one of micro-expression, macro-expression",
        "row 2: participant 99 has no folder in naming rule1"]
    assert "\n" not in str(err.value)
