"""MMEW reader on generated sheets and frame trees (no real MMEW sheet is available)."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from fervid.datasets.mmew import MMEW_EMOTIONS, read_mmew
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.samples import DatasetFormatError
from generated import apex_loso_metrics
from release_trees import mmew as tree


def read(root, sheet, protocol="all"):
    return dataset_spec("mmew").read(ReadRequest(root, protocol, sheet))


def test_the_registered_reader_reads_the_generated_release(tmp_path):
    release = tree.build(tmp_path)
    table = read(release["root"], release["sheet"], release["protocol"])
    assert table.classes == MMEW_EMOTIONS and len(table) == len(tree.ROWS)
    assert table.subjects == ["mmew/S01", "mmew/S02", "mmew/S03"]
    assert Counter(s.emotion for s in table) == {"happiness": 2, "surprise": 1, "others": 1,
                                                  "disgust": 1, "fear": 1, "anger": 1,
                                                  "sadness": 1}
    first = table[0]
    assert (first.clip, first.onset, first.apex, first.offset, first.au, first.fps) == \
        ("S01_happiness_1", 1, 12, 30, "AU6+AU12", 90.0)
    assert [p.name for p in first.frames] == [f"{n}.jpg" for n in range(1, 31)]
    # The sheet's others is found in a repression/ folder: clips are looked up by name.
    assert table[2].frames[0].parent.parent.name == "repression"
    # MMEW_Final/ itself may be given.
    assert [s.key for s in read(release["root"].parent, release["sheet"])] == \
        [s.key for s in table]


def test_3class_groups_the_negatives_and_leaves_others_out(tmp_path):
    release = tree.build(tmp_path)
    table = read(release["root"], release["sheet"], "3class")
    counts = Counter(table.classes[s.label] for s in table.labelled())
    assert counts == {"negative": 4, "positive": 2, "surprise": 1}


def test_a_clip_in_two_emotion_folders_or_none_is_a_problem(tmp_path):
    release = tree.build(tmp_path)
    root = release["root"]
    (root / "happiness" / "S01_surprise_1").mkdir()
    for frame in (root / "anger" / "S03_anger_1").iterdir():
        frame.unlink()
    (root / "anger" / "S03_anger_1").rmdir()
    with pytest.raises(DatasetFormatError) as err:
        read(root, release["sheet"])
    assert err.value.problems == [
        "S01/S01_surprise_1: clip folder in two emotion folders (happiness, surprise)",
        "S03/S03_anger_1: no <emotion>/S03_anger_1/ folder"]


def test_bad_rows_are_one_error_naming_row_and_field(tmp_path):
    rows = list(tree.ROWS)
    rows[0] = ("S01", "S01_happiness_1", 1, 40, 30, "AU6+AU12", "happiness", "happiness")
    rows[3] = ("S02", "S02_disgust_1", 1, 15, 40, "AU4+AU9", "contempt", "disgust")
    with pytest.raises(DatasetFormatError) as err:
        read_mmew(tmp_path, tree.write_sheet(tmp_path / "a.xlsx", rows))
    assert err.value.problems == ["row 2: S01/S01_happiness_1 needs 0 <= onset <= apex <= "
                                  "offset, got 1, 40, 30"]
    rows[0] = tree.ROWS[0]
    with pytest.raises(DatasetFormatError, match=r"row 5: Estimated Emotion 'contempt' is not "
                                                 r"one of happiness"):
        read_mmew(tmp_path, tree.write_sheet(tmp_path / "b.xlsx", rows))


def test_loso_runs_end_to_end_through_the_cli(tmp_path):
    jpeg = tmp_path / "frame.jpg"
    cv2.imwrite(str(jpeg), np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8))
    # Three subjects with one clip per class (six training clips a fold: no batch of one).
    rows = [(f"S0{s}", f"S0{s}_{e}_1", 1, 5, 10, "AU4", e, e) for s in (1, 2, 3)
            for e in ("disgust", "happiness", "surprise")]
    root = tree.write_frames(tmp_path / "Micro_Expression", rows, blank=jpeg)
    sheet = tree.write_sheet(tmp_path / "MMEW_Micro_Exp.xlsx", rows)
    metrics = apex_loso_metrics(tmp_path, root, {
        "dataset": "mmew", "protocol": "3class", "sheet": str(sheet),
        "classes": ["negative", "positive", "surprise"]})
    assert metrics["n_samples"] == 9 and metrics["n_folds"] == 3
