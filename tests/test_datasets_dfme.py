"""DFME: the three real sheets, a release tree read through the registered spec, and bad
sheets."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter
from pathlib import Path

import openpyxl
import pytest

from fervid.datasets.dfme import DFME_PROTOCOLS, dfme_labels, read_dfme, read_dfme_sheets
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.datasets.sheets import AnnotationWarning
from fervid.samples import DatasetFormatError
from release_trees import dfme as dfme_tree

CLIPS = {"train": 1856, "testA": 474, "testB": 299}
SUBJECTS = {"train": 176, "testA": 42, "testB": 41}
FPS = {"train": {200.0: 556, 300.0: 605, 500.0: 695},
       "testA": {200.0: 116, 300.0: 143, 500.0: 215},
       "testB": {200.0: 159, 300.0: 57, 500.0: 83}}
EXPECTED = {
    "7class": {"anger": 241, "contempt": 171, "disgust": 735, "fear": 365, "happiness": 311,
               "sadness": 359, "surprise": 447},
    "3class": {"negative": 1871, "positive": 311, "surprise": 447},
}
HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Emotion",
          "EmotionId", "Fps", "AU"]


def _counts(labels, classes) -> dict[str, int]:
    found = Counter(classes[i] for i in labels if i is not None)
    return {c: found[c] for c in classes if found[c]}


def test_real_sheets_counts(shared):
    rows = read_dfme_sheets(shared("annotations", "dfme", "training_full_with_AU.xlsx"))
    by_split = rows.groupby("split")
    assert by_split.size().to_dict() == CLIPS
    assert by_split["subject"].nunique().to_dict() == SUBJECTS
    for split, counts in FPS.items():
        assert rows[rows.split == split]["fps"].value_counts().to_dict() == counts
    for protocol, classes in DFME_PROTOCOLS.items():
        counts = _counts(dfme_labels(rows, protocol), classes)
        print(protocol, counts)
        assert counts == EXPECTED[protocol]
    assert rows.iloc[0][["subject", "clip", "onset", "apex", "offset", "au"]].tolist() == \
        ["sub0003", "sub0003_01", 109, 199, 228, "23"]


@pytest.fixture(scope="module")
def dfme_release(tmp_path_factory):
    return dfme_tree.build(tmp_path_factory.mktemp("dfme"))


def test_release_tree_through_the_registered_spec(dfme_release):
    spec = dataset_spec("dfme")
    assert spec.sheet == "training_full_with_AU.xlsx" and spec.protocols == ("loso",)
    table = spec.read(ReadRequest(dfme_release["root"], "7class", dfme_release["sheet"]))
    assert len(table) == sum(CLIPS.values()) and len(table.subjects) == sum(SUBJECTS.values())
    assert Counter(s.split for s in table) == CLIPS
    assert Counter(s.fps for s in table) == Counter({200.0: 831, 300.0: 805, 500.0: 993})
    assert _counts([s.label for s in table], table.classes) == EXPECTED["7class"]
    first = table[0]
    assert first.frames[0] == dfme_release["root"] / "train_data" / "sub0003_01" / "00109.png"
    assert len(first.frames) == 228 - 109 + 1 and first.frames[first.apex_position].stem == "00199"
    test_a = next(s for s in table if s.split == "testA")
    assert test_a.frames[0].parent.parent.name == "test_data_A"  # the nested unzip layout


def _write(path: Path, rows: list[list]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.active.title = "Sheet1"
    workbook.active.append(HEADER)
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


def _touch(folder: Path, numbers) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"{n:05d}.png").touch()


def test_test_sheets_beside_the_training_sheet_and_missing_ones(tmp_path):
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    train = _write(sheets / "training_full_with_AU.xlsx",
                   [["sub0001", "sub0001_01", 0, 2, 4, "fear", 3, 200, "4+5"]])
    _write(sheets / "testA_full_with_AU.xlsx",
           [["sub0002", "sub0002_01", 1, 2, 3, "contempt", 1, 500, "L12"]])
    root = tmp_path / "DFME"
    _touch(root / "train_data" / "sub0001_01", range(5))
    _touch(root / "sub0002_01", range(1, 4))  # clip folders directly in the root also do
    with pytest.warns(AnnotationWarning, match="testB_full_with_AU.xlsx not found beside"):
        table = read_dfme(root, train, "3class")
    assert [(s.clip, s.split, s.label, s.fps, s.au) for s in table] == [
        ("sub0001_01", "train", 0, 200.0, "4+5"), ("sub0002_01", "testA", 0, 500.0, "L12")]
    shutil.rmtree(root / "sub0002_01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnnotationWarning)
        with pytest.raises(DatasetFormatError, match="testA sub0002_01: clip folder missing"):
            read_dfme(root, train, "7class")


def test_bad_rows_of_every_sheet_are_named_together(tmp_path):
    train = _write(tmp_path / "training_full_with_AU.xlsx", [
        ["sub0001", "sub0001_01", 0, 2, 4, "fear", 2, 200, "4"],
        ["sub0001", "sub0001_02", 0, 2, 4, "fear", 3, 0, "4"],
    ])
    _write(tmp_path / "testA_full_with_AU.xlsx",
           [["sub0002", "sub0002_01", None, 2, 3, "anger", 0, 500, "4"]])
    _write(tmp_path / "testB_full_with_AU.xlsx",
           [["sub0003", "sub0003_01", 1, 2, 3, "joy", 0, 500, "4"]])
    with pytest.raises(DatasetFormatError) as err:
        read_dfme_sheets(train)
    text = str(err.value)
    assert "\n" not in text and "4 problem(s)" in text
    assert "training_full_with_AU.xlsx row 2: EmotionId 2 disagrees with Emotion 'fear'" in text
    assert "training_full_with_AU.xlsx row 3: Fps 0 is not a positive whole number" in text
    assert "testA_full_with_AU.xlsx row 2: OnsetFrame is blank" in text
    assert "testB_full_with_AU.xlsx row 2: Emotion 'joy' is not one of anger" in text
