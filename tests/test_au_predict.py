"""``fervid predict`` with an AU detection model: per-window AU probabilities (a sigmoid each),
no emotion softmax or argmax, from a fold model trained on generated CASME II-format clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.predict.api import predict_video
from fervid.runs.checkpoint import load_checkpoint
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR, SHEET_NAME

runner = CliRunner()
AUS = ["AU4", "AU12"]


@pytest.fixture(scope="module")
def au_checkpoint(tmp_path_factory) -> Path:
    """Fold 0's model of a one-epoch LOSO AU run (apex frames, 32 px grey, AU4 and AU12 from
    the generated sheet's codes)."""
    root = tmp_path_factory.mktemp("au_predict")
    make_casme2_like(root / "data", n_subjects=2, clips_per_subject=5, size=32, seed=2)
    cfg = {"name": "apex_au", "seed": 0, "model": {"name": "apex_resnet", "drop_rate": 0.0},
           "data": {"format": "apex", "dataset": "casme2", "protocol": "5class",
                    "sheet": f"../{SHEET_NAME}", "size": 32, "dssi": {"mode": "gray"},
                    "classes": ["happiness", "disgust", "repression", "surprise", "others"],
                    "task": "au", "aus": [4, 12]},
           "train": {"lr": 1e-3, "batch_size": 4, "epochs": 1},
           "run": {"engine": "sequential", "workers": 1}}
    path = root / "apex_au.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root",
                                 str(root / "data" / FRAMES_DIR), "--out", str(root / "run"),
                                 "--cache-dir", str(root / "cache"), "--no-progress"])
    assert result.exit_code == 0, result.output
    return root / "run" / "models" / "fold_000.pt"


def test_predict_writes_au_probabilities(au_checkpoint, tmp_path):
    ckpt = load_checkpoint(au_checkpoint)
    assert ckpt.classes == tuple(AUS) and ckpt.input_spec.representation == "apex"
    video = shared_path("videos", "single_face.mp4")
    result = runner.invoke(app, ["predict", str(video), "--checkpoint", str(au_checkpoint),
                                 "--out", str(tmp_path), "--annotate", "--no-progress"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps at the terminal's width
    assert "AUs present" in text and "AU4" in text
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved["task"] == "au" and saved["classes"] == AUS and saved["threshold"] == 0.5
    assert len(saved["windows"]) == 3
    for w in saved["windows"]:
        assert "probs" not in w and "label" not in w  # no softmax, no argmax
        assert set(w["au_probs"]) == set(AUS)
        assert w["aus_present"] == [a for a in AUS if w["au_probs"][a] >= 0.5]
    mean = {a: np.mean([w["au_probs"][a] for w in saved["windows"]]) for a in AUS}
    assert saved["clip"]["au_probs"] == pytest.approx(mean, abs=1e-5)
    assert "label" not in saved["clip"] and "index" not in saved["clip"]
    assert (tmp_path / "timeline.png").stat().st_size > 5000
    assert (tmp_path / "annotated.mp4").stat().st_size > 0

    # The same through the Python API: one au_prob_<AU> column per AU, each a sigmoid.
    tables = predict_video(video, ckpt)
    columns = [f"au_prob_{a}" for a in AUS]
    assert list(tables.windows.columns) == ["start_frame", "end_frame", "start_s", "end_s",
                                            *columns, "aus_present"]
    probs = tables.windows[columns].to_numpy()
    np.testing.assert_allclose(probs, [[w["au_probs"][a] for a in AUS]
                                       for w in saved["windows"]], atol=1e-6)
    # One sigmoid per AU: the rows are not distributions over the AUs.
    assert ((probs > 0) & (probs < 1)).all() and not np.allclose(probs.sum(1), 1)
    assert set(tables.clip.index) == {*columns, "aus_present", "method"}
    assert not any(c in tables.windows for c in ("label", *AUS))


def test_au_probabilities_are_the_logits_sigmoids(au_checkpoint):
    """predict's classifier gives an AU model's logits their sigmoid, checked against the
    model run by hand on the same inputs."""
    import torch

    from fervid.predict.sinks import Classifier
    from fervid.runs.checkpoint import build_model_from_checkpoint

    ckpt = load_checkpoint(au_checkpoint)
    x = torch.randn(3, *ckpt.input_spec.example_shape()).numpy()
    got = Classifier(ckpt, None, 4).probabilities(x)
    with torch.no_grad():
        logits = build_model_from_checkpoint(ckpt)(torch.from_numpy(x)).logits.double()
    np.testing.assert_allclose(got, logits.sigmoid().numpy(), atol=1e-6)
