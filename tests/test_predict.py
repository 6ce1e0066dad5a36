"""`fervid predict` and `fervid export` on the real videos, with small untrained checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.cli.demo import VARIANTS, demo_config
from fervid.config import KfoldConfig
from fervid.predict import PredictError, predict_video, sliding_windows
from fervid.runs.checkpoint import (
    CheckpointError,
    build_model_from_checkpoint,
    input_spec_from_config,
    load_checkpoint,
    save_checkpoint,
)

runner = CliRunner()


def _video(name: str) -> Path:
    return shared_path("videos", name)


@pytest.fixture(scope="module")
def smastn_ckpt(tmp_path_factory) -> Path:
    """The demo's SMA-STN config (32 px gray DSSI, K = 2), untrained weights."""
    cfg = demo_config(VARIANTS[0], epochs=1)
    model_cfg = cfg.model.model_copy(update={"pretrained_path": None})
    from fervid.models import model_from_config

    torch.manual_seed(0)
    model = model_from_config(model_cfg, in_chans=1, num_classes=len(cfg.data.classes))
    path = tmp_path_factory.mktemp("ckpt") / "smastn.pt"
    return save_checkpoint(path, model.state_dict(), config=cfg, classes=cfg.data.classes)


def test_checkpoint_describes_itself(smastn_ckpt):
    ckpt = load_checkpoint(smastn_ckpt)
    assert ckpt.model_name == "smastn" and ckpt.classes[0] == "happiness"
    assert ckpt.input_spec.representation == "dssi" and ckpt.input_spec.size == 32
    assert ckpt.input_spec.example_shape() == (3, 1, 32, 32)  # K = 2 locals + the global DI
    model = build_model_from_checkpoint(ckpt)
    out = model(torch.zeros(2, *ckpt.input_spec.example_shape()))
    assert out.logits.shape == (2, len(ckpt.classes))


def test_bad_checkpoints_are_named(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pt is not a torch checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="nope.pt does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    cfg = demo_config(VARIANTS[0], epochs=1)
    bad = save_checkpoint(tmp_path / "bad.pt", {"w": torch.zeros(2)}, config=cfg,
                          classes=cfg.data.classes)
    with pytest.raises(CheckpointError, match="weights do not fit model 'smastn'"):
        build_model_from_checkpoint(load_checkpoint(bad))


def test_sliding_windows_cover_the_video():
    windows = sliding_windows(72, 30.0, 1.0, 0.5)
    assert [(w.start, w.end) for w in windows] == [(0, 30), (15, 45), (30, 60)]
    assert sliding_windows(10, 30.0, 1.0, 0.5)[0].end == 10  # shorter than one window
    with pytest.raises(ValueError, match="positive"):
        sliding_windows(72, 30.0, 0.0, 0.5)


def test_predict_single_face_video(smastn_ckpt, tmp_path):
    result = runner.invoke(app, ["predict", str(_video("single_face.mp4")), "--checkpoint",
                                 str(smastn_ckpt), "--out", str(tmp_path), "--annotate"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved["face_present_fraction"] >= 0.95 and saved["n_frames"] == 72
    jitter = saved["landmark_jitter_px"]
    assert 0 < jitter["smoothed"] < jitter["raw"]
    assert len(saved["windows"]) == 3 and not saved["skipped_windows"]
    for w in saved["windows"]:
        assert sum(w["probs"].values()) == pytest.approx(1, abs=1e-4)
        assert w["label"] == max(w["probs"], key=w["probs"].get)
    mean = {c: np.mean([w["probs"][c] for w in saved["windows"]]) for c in saved["classes"]}
    assert saved["clip"]["probs"] == pytest.approx(mean, abs=1e-5)
    assert saved["clip"]["label"] == max(mean, key=mean.get)
    assert set(saved["stage_s"]) >= {"decode", "detect_track", "align", "representation",
                                     "model", "total"}
    assert (tmp_path / "timeline.png").stat().st_size > 5000
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 72


def test_windows_without_a_face_are_skipped_and_listed(smastn_ckpt, tmp_path):
    result = predict_video(_video("face_noface.mov"), smastn_ckpt, out_dir=tmp_path,
                           window_s=1.0, stride_s=1.0)
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert result.skipped and saved["skipped_windows"]
    assert all(s["reason"] == "no face in some frame" for s in saved["skipped_windows"])
    first_skip = saved["skipped_windows"][0]["start_s"]
    assert all(w["end_s"] <= first_skip + 1.0 for w in saved["windows"])  # the face leaves


def test_no_face_video_exits_with_a_clear_message(smastn_ckpt, tmp_path):
    video = _video("no_face.mp4")
    result = runner.invoke(app, ["predict", str(video), "--checkpoint", str(smastn_ckpt),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 3
    assert f"no face found in {video}" in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("content", [b"", b"this is a text file, not a video\n" * 20])
def test_not_a_video_gets_a_clear_error(smastn_ckpt, tmp_path, content):
    fake = tmp_path / "clip.mp4"
    fake.write_bytes(content)
    result = runner.invoke(app, ["predict", str(fake), "--checkpoint", str(smastn_ckpt),
                                 "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "clip.mp4" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["predict", str(tmp_path / "none.mp4"), "--checkpoint",
                                  str(smastn_ckpt), "--out", str(tmp_path / "out")])
    assert missing.exit_code == 2 and "none.mp4" in missing.output


def test_flow_models_are_refused_by_predict(tmp_path):
    from fervid.config import load_config

    cfg = load_config(Path(__file__).parents[1] / "configs" / "ststnet_megc2019.yaml")
    from fervid.models import model_from_config

    model = model_from_config(cfg.model, in_chans=3, num_classes=3)
    spec = input_spec_from_config(cfg, (3, 28, 28))
    path = save_checkpoint(tmp_path / "ststnet.pt", model.state_dict(), config=cfg,
                           classes=cfg.data.classes, input_spec=spec)
    assert load_checkpoint(path).input_spec.example_shape() == (3, 28, 28)
    with pytest.raises(PredictError, match="precomputed optical-flow images"):
        predict_video(_video("single_face.mp4"), path, out_dir=tmp_path / "out")


def test_export_onnx_and_predict_through_onnxruntime(smastn_ckpt, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(smastn_ckpt), "--onnx", str(onnx_path)])
    assert result.exit_code == 0, result.output and onnx_path.exists()
    assert "within" in result.output
    video = _video("single_face.mp4")
    with_torch = predict_video(video, smastn_ckpt, out_dir=tmp_path / "t")
    with_onnx = predict_video(video, smastn_ckpt, out_dir=tmp_path / "o", onnx_path=onnx_path)
    assert np.allclose([w.probs for w in with_onnx.windows],
                       [w.probs for w in with_torch.windows], atol=1e-4)
    saved = json.loads((tmp_path / "o" / "predictions.json").read_text())
    assert saved["onnx"] == str(onnx_path)


def test_kfold_clip_model_predicts(tmp_path):
    cfg = KfoldConfig.model_validate({
        "name": "tiny_r3d", "model": {"name": "r3d_18"},
        "data": {"num_frames": 8, "size": 32, "representation": "clip"}})
    from fervid.models import model_from_config

    model = model_from_config(cfg.model, in_chans=3, num_classes=7)
    path = save_checkpoint(tmp_path / "r3d.pt", model.state_dict(), config=cfg,
                           classes=cfg.data.classes)
    spec = load_checkpoint(path).input_spec
    assert spec.representation == "clip" and spec.example_shape() == (3, 8, 32, 32)
    result = predict_video(_video("single_face.mp4"), path, out_dir=tmp_path / "out")
    assert len(result.windows) == 3 and result.label in cfg.data.classes
