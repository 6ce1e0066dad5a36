"""Metrics against values worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fervid.metrics import save_confusion_png, score, score_predictions

CLASSES = ("negative", "positive", "surprise")


def test_megc2019_uf1_uar_by_hand():
    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    preds = [0, 0, 1, 2, 1, 0, 2, 2]
    s = score(labels, preds, CLASSES)
    # negative: TP 2, FP 1, FN 2 -> F1 4/7, recall 2/4
    # positive: TP 1, FP 1, FN 1 -> F1 1/2, recall 1/2
    # surprise: TP 2, FP 1, FN 0 -> F1 4/5, recall 1
    assert s.uf1 == pytest.approx((4 / 7 + 1 / 2 + 4 / 5) / 3)
    assert s.uar == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    assert s.acc == pytest.approx(5 / 8)
    assert s.per_class_recall == pytest.approx({"negative": .5, "positive": .5, "surprise": 1})


def test_class_absent_from_a_part_is_left_out():
    s = score([0, 0, 1], [0, 1, 1], CLASSES)  # no surprise in labels or predictions
    assert s.uf1 == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert "surprise" not in s.per_class_recall


def test_predicted_but_absent_class_counts_in_uf1_not_uar():
    s = score([0, 0], [0, 2], CLASSES)
    assert s.uf1 == pytest.approx((2 / 3 + 0) / 2)
    assert s.uar == pytest.approx(0.5)


def test_per_dataset_and_subject_and_png(tmp_path):
    frame = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "subject": ["1", "1", "2", "3"],
                          "clip": list("wxyz"), "label": [0, 1, 2, 2], "pred": [0, 1, 2, 0],
                          "fold": [0, 0, 1, 2]})
    out = score_predictions(frame, CLASSES)
    assert out["per_dataset"]["a"]["acc"] == 1.0
    assert out["per_dataset"]["b"]["acc"] == 0.5
    assert {r["subject"]: r["acc"] for r in out["per_subject"]} == {"1": 1.0, "2": 1.0,
                                                                    "3": 0.0}
    png = save_confusion_png(frame["label"], frame["pred"], CLASSES, tmp_path / "c.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_and_mismatched():
    assert math.isnan(score([], [], CLASSES).uf1)
    with pytest.raises(ValueError, match="shape"):
        score([0, 1], [0], CLASSES)
