"""``fervid evaluate --checkpoint``: a frame model on another dataset, classes matched by name."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import FitConfig
from fervid.datasets.fer2013 import FER2013_CLASSES
from fervid.models import create_model
from fervid.protocol.cross_dataset import NoCommonClassError, match_classes
from fervid.runs.checkpoint import save_checkpoint


def _folder(root, names, n=3):
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"{i}.png"), rng.integers(0, 256, (30, 30), np.uint8))
    return root


@pytest.fixture(scope="module")
def biased_checkpoint(tmp_path_factory):
    """A frame model that always scores neutral highest, then happiness."""
    model = create_model("frame_resnet", in_chans=1, num_classes=7)
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([0.0, 0, 0, 5, 0, 0, 100]))
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    cfg = FitConfig.model_validate({"data": {"dataset": "image_folder", "resize": 24,
                                             "size": 20}})
    save_checkpoint(path, model.state_dict(), config=cfg, classes=FER2013_CLASSES)
    return path


def test_match_classes_by_canonical_name():
    m = match_classes(["angry", "happy", "neutral"], ["happiness", "contempt", "anger"])
    assert m.common == ("happiness", "anger")
    assert m.model_index == (1, 0) and m.data_index == (0, 2)
    assert m.model_only == ("neutral",) and m.data_only == ("contempt",)
    with pytest.raises(NoCommonClassError, match="no class in common"):
        match_classes(["anger"], ["anxiety"])


def test_prediction_is_the_argmax_over_shared_classes(biased_checkpoint, tmp_path):
    data = _folder(tmp_path / "faces", ["happy", "contempt", "Anger"])
    result = CliRunner().invoke(app, [
        "evaluate", "--checkpoint", str(biased_checkpoint), "--data-root", str(data),
        "--dataset", "image_folder", "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    # neutral (the model's favourite) is not a data class: happiness wins everywhere.
    assert m["classes"] == ["anger", "happiness"]
    assert m["n_samples"] == 6 and m["acc"] == pytest.approx(0.5)
    assert m["per_class_recall"] == {"anger": 0.0, "happiness": 1.0}
    assert m["confusion"] == [[0, 3], [0, 3]]
    assert m["left_out"]["data_only"] == ["contempt"] and m["left_out"]["n_samples"] == 3
    assert "neutral" in m["left_out"]["model_only"]
    assert (tmp_path / "run" / "report.html").stat().st_size > 1000


def test_no_class_in_common_is_a_named_error(biased_checkpoint, tmp_path):
    data = _folder(tmp_path / "faces", ["anxiety", "helplessness"])
    result = CliRunner().invoke(app, [
        "evaluate", "--checkpoint", str(biased_checkpoint), "--data-root", str(data),
        "--dataset", "image_folder", "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 2
    assert "no class in common" in result.output


def test_a_release_with_a_test_split_is_scored_on_it_alone(biased_checkpoint, tmp_path):
    _folder(tmp_path / "faces" / "train", ["happy", "sad"], n=4)
    _folder(tmp_path / "faces" / "test", ["happy", "sad"], n=2)
    result = CliRunner().invoke(app, [
        "evaluate", "--checkpoint", str(biased_checkpoint), "--data-root",
        str(tmp_path / "faces"), "--dataset", "image_folder", "--out", str(tmp_path / "run"),
        "--no-progress"])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["split"] == "test" and m["n_samples"] == 4
