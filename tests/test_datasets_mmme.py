"""MMME: the real coding file (which rows are micro, which are left out and why), a tree read
through the registered spec, and bad rows."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from pathlib import Path

import openpyxl
import pytest

from fervid.datasets.mmme import (
    FPS,
    MMME_PROTOCOLS,
    frame_number,
    micro_rows,
    mmme_labels,
    read_mmme,
    read_mmme_sheet,
)
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.datasets.sheets import AnnotationWarning
from fervid.samples import DatasetFormatError
from release_trees import mmme as mmme_tree

SHEET = ("annotations", "mmme", "coding_file.xlsx")
EXPECTED = {
    "7class": {"anger": 63, "disgust": 110, "fear": 58, "happiness": 82, "sadness": 76,
               "surprise": 21, "tense": 24},
    "3class": {"negative": 307, "positive": 82, "surprise": 21},
}
HEADER = ["Subject", "Filename", "Marker", "OnsetTime", "ApexTime", "OffsetTime", "OnsetFrame",
          "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion", "Date", "dif"]


def _counts(labels, classes) -> dict[str, int]:
    found = Counter(classes[i] for i in labels if i is not None)
    return {c: found[c] for c in classes if found[c]}


def test_real_coding_file_micro_and_macro(shared):
    sheet = shared(*SHEET)
    # 947 rows below the header in Excel; the last three are blank.
    assert openpyxl.load_workbook(sheet, read_only=True).active.max_row == 948
    rows = read_mmme_sheet(sheet)
    assert len(rows) == 944 and rows["subject"].nunique() == 16
    assert int(rows["micro"].sum()) == 434
    with pytest.warns(AnnotationWarning, match=r"MMME: 510 of 944 rows left out: "
                                               r"macro-expressions \(OffsetTime - OnsetTime > "
                                               r"0.5 s\)"):
        with pytest.warns(AnnotationWarning, match="52 pairs of micro-expressions of one video "
                                                   "overlap"):
            micro = micro_rows(rows)
    assert len(micro) == 434 and micro["subject"].nunique() == 14
    assert (micro["offset_s"] - micro["onset_s"]).max() == Fraction(1, 2)
    for protocol, classes in MMME_PROTOCOLS.items():
        counts = _counts(mmme_labels(micro, protocol), classes)
        print(protocol, counts)
        assert counts == EXPECTED[protocol]
    first = micro.iloc[0]  # Excel row 4: 3.32 s .. 3.6 s of angry_1_146_wangxiaomin_20230718
    assert (first.excel_row, first.onset, first.apex, first.offset) == (4, 498, 540, 540)
    assert first["clip"] == "angry_1_146_wangxiaomin_20230718_498" and first.au == "AU4"
    assert micro["clip"].is_unique  # no two rows share a video and an onset frame


def test_frame_numbers_round_halves_up():
    assert frame_number(Fraction("24.33"), 150.0) == 3650  # 3649.5
    assert frame_number(Fraction("3.32"), 150.0) == 498
    assert frame_number(Fraction("3.32"), 100.0) == 332


@pytest.mark.filterwarnings("ignore:MMME.*overlap:fervid.datasets.sheets.AnnotationWarning")
def test_tree_through_the_registered_spec(tmp_path):
    tree = mmme_tree.build(tmp_path)
    spec = dataset_spec("mmme")
    assert spec.fps == FPS == 150.0 and spec.sheet == tree["sheet"].name
    with pytest.warns(AnnotationWarning, match="510 of 944 rows left out"):
        table = spec.read(ReadRequest(tree["root"], "3class", tree["sheet"]))
    assert len(table) == 434 and len(table.labelled()) == 410 and len(table.subjects) == 14
    assert _counts([s.label for s in table], table.classes) == EXPECTED["3class"]
    sample = table[0]
    assert (sample.subject, sample.onset, sample.fps, sample.au) == ("wangxiaomin", 498, 150.0,
                                                                     "AU4")
    assert sample.frames[0] == (tree["root"] / "wangxiaomin" /
                                "angry_1_146_wangxiaomin_20230718" / "00498.jpg")
    assert len(sample.frames) == 540 - 498 + 1


def _write(path: Path, rows: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.active.append(HEADER)
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def _row(subject="p1", video="happy_1_103_p1_20230101.avi", onset=1.0, apex=1.2, offset=1.4,
         emotion="happy"):
    return [subject, video, 103, onset, apex, offset, "x", "x", "x", "AU12", emotion, "d", 1]


def test_bad_rows_are_named_in_one_line(tmp_path):
    sheet = _write(tmp_path / "bad.xlsx", [_row(), _row(onset=None), _row(apex="soon"),
                                           _row(subject=None)])
    with pytest.raises(DatasetFormatError) as err:
        read_mmme_sheet(sheet)
    text = str(err.value)
    assert "\n" not in text and "3 problem(s)" in text
    assert "row 3: OnsetTime is blank" in text and "row 5: Subject is blank" in text
    assert "row 4: ApexTime 'soon' is not a time in seconds (>= 0)" in text
    sheet = _write(tmp_path / "order.xlsx", [_row(apex=2.0), _row(emotion="bored")])
    with pytest.raises(DatasetFormatError, match="row 2: needs OnsetTime <= ApexTime <= "
                                                 "OffsetTime, got 1.0, 2.0, 1.4"):
        read_mmme_sheet(sheet)
    sheet = _write(tmp_path / "emotion.xlsx", [_row(emotion="bored")])
    with pytest.raises(DatasetFormatError, match="row 2: Estimated Emotion 'bored' is not one"):
        read_mmme_sheet(sheet)


def test_frames_at_another_rate_and_missing_folders(tmp_path):
    sheet = _write(tmp_path / "coding_file.xlsx", [_row(), _row(onset=1.0, offset=2.0),
                                                   _row(subject="p2", onset=0.5, apex=0.5,
                                                        offset=0.8, emotion="tense")])
    root = tmp_path / "MMME"
    folder = root / "p1" / "happy_1_103_p1_20230101"
    folder.mkdir(parents=True)
    for n in range(100, 141):
        (folder / f"frame{n}.jpg").touch()
    with pytest.warns(AnnotationWarning, match="1 of 3 rows left out"):
        with pytest.raises(DatasetFormatError, match=r"1 problem\(s\): p2/happy_1_103_p1_20230101"
                                                     r"_50 \(sheet row 4\): frame folder"):
            read_mmme(root, sheet, "7class", fps=100.0)
    (root / "happy_1_103_p1_20230101").symlink_to(folder)  # a flat layout: <root>/<video>
    with pytest.warns(AnnotationWarning):
        with pytest.raises(DatasetFormatError, match="31 of 31 frames missing"):
            read_mmme(root, sheet, "7class", fps=100.0)
    for n in range(50, 100):
        (folder / f"frame{n}.jpg").touch()
    with pytest.warns(AnnotationWarning):
        table = read_mmme(root, sheet, "3class", fps=100.0)
    assert [(s.subject, s.onset, s.apex, s.offset, s.label) for s in table] == [
        ("p1", 100, 120, 140, 1), ("p2", 50, 50, 80, None)]
