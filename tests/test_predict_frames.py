"""`fervid predict` with a still-face frame model (`fervid fit`): per-frame probabilities,
window and clip means, the face chosen in a scene with several, GIF input, ONNX.

Generated videos draw bright elliptic "faces" on a dark background; a blob detector stands in
for dlib (fast, exact boxes). Real videos and MAFW GIFs, when present in ../shared/data, go
through the real dlib detector.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.config import FitConfig
from fervid.errors import OptionError
from fervid.faces import FaceBox, FaceDetection, read_video_frames
from fervid.faces.choice import face_choice
from fervid.faces.template68 import MEAN_SHAPE_68
from fervid.models import create_model
from fervid.predict import predict_video
from fervid.predict.frames import FER2013_FIVE_POINTS, frame_crop, frame_inputs
from fervid.predict.windows import Window, window_means
from fervid.representation.face_images import FaceTensors, eval_face_batches
from fervid.runs.checkpoint import InputSpec, load_checkpoint, save_checkpoint

CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
FPS = 10
runner = CliRunner()


class BlobDetector:
    """Each bright blob (> 128, at least 150 px) is a face: its bounding box, with the mean
    68-point shape stretched over it as landmarks; also the tracker's landmark predictor."""

    def detect_faces(self, image: np.ndarray) -> list[FaceDetection]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        n, _, stats, _ = cv2.connectedComponentsWithStats((gray > 128).astype(np.uint8))
        faces = []
        for x, y, w, h, area in stats[1:n]:
            if area >= 150:
                box = FaceBox(float(x), float(y), float(x + w), float(y + h), 1.0)
                faces.append(FaceDetection(box, self.predictor(image, box)))
        return faces

    def predictor(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        return (MEAN_SHAPE_68 * [box.width, box.height] + [box.x0, box.y0]).astype(np.float32)


def draw_face(frame: np.ndarray, cx: int, cy: int, half_w: int, mouth: int) -> None:
    """A bright ellipse with dark eyes and a mouth opening ``mouth`` px high."""
    half_h = int(half_w * 1.25)
    cv2.ellipse(frame, (cx, cy), (half_w, half_h), 0, 0, 360, (210, 210, 210), -1)
    for ex in (cx - half_w // 2, cx + half_w // 2):
        cv2.circle(frame, (ex, cy - half_h // 4), max(2, half_w // 8), (40, 40, 40), -1)
    cv2.ellipse(frame, (cx, cy + half_h // 2), (half_w // 3, mouth), 0, 0, 360, (60, 60, 60), -1)


def scene(n_frames: int, faces_until: int, *, two: bool = False) -> list[np.ndarray]:
    """RGB ``(120, 200, 3)`` frames: one face (or, with ``two``, a small one on the left and a
    large one on the right) on frames ``0..faces_until - 1``, a blank scene after."""
    frames = []
    for i in range(n_frames):
        frame = np.full((120, 200, 3), 30, np.uint8)
        if i < faces_until:
            mouth = 2 + i % 6  # the expression changes, so frames differ
            if two:
                draw_face(frame, 45, 60, 16, mouth)
                draw_face(frame, 140, 58, 30, mouth)
            else:
                draw_face(frame, 95 + i % 3, 60, 30, mouth)
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[np.ndarray], fps: int = FPS) -> Path:
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "2"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_gif(path: Path, frames: list[np.ndarray], delays_ms: list[int]) -> Path:
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=delays_ms, loop=0)
    return path


@pytest.fixture(scope="module")
def frame_ckpt(tmp_path_factory) -> Path:
    """A 7-class gray frame model (48 px faces, 40 px centre crop), untrained weights."""
    torch.manual_seed(0)
    model = create_model("frame_resnet", in_chans=1, num_classes=7)
    cfg = FitConfig(name="tiny_frames")
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, model.state_dict(), config=cfg, classes=CLASSES)


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    """40 frames at 10 fps: a face on frames 0-24, none on 25-39."""
    return write_video(tmp_path_factory.mktemp("video") / "face_then_none.mp4", scene(40, 25))


def _probs(entry: dict) -> np.ndarray:
    return np.array([entry["probs"][c] for c in CLASSES])


def test_checkpoint_is_a_frame_model(frame_ckpt):
    spec = load_checkpoint(frame_ckpt).input_spec
    assert (spec.representation, spec.size, spec.resize, spec.mode) == ("frame", 40, 48, "gray")


def test_frame_inputs_are_the_training_evaluation_inputs():
    crops = np.random.default_rng(0).integers(0, 256, (5, 48, 48, 1), dtype=np.uint8)
    spec = InputSpec("frame", 40, "gray", resize=48)
    faces = FaceTensors(torch.from_numpy(crops).permute(0, 3, 1, 2), torch.zeros(5))
    expected = torch.cat(list(eval_face_batches(faces, torch.arange(5), 2, 40))).numpy()
    got = frame_inputs(crops, spec)
    assert got.shape == (5, 1, 40, 40) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_frame_crop_puts_the_five_points_on_the_target():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (240, 320), dtype=np.uint8)
    landmarks = (MEAN_SHAPE_68 * 90 + [100, 60]).astype(np.float32)
    crop = frame_crop(frame, landmarks, FER2013_FIVE_POINTS, 48)
    assert crop.shape == (48, 48, 1) and crop.dtype == np.uint8


def test_window_means_average_face_frames_and_skip_sparse_windows():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [np.nan, np.nan]])
    present = np.array([True, True, True, False])
    windows = [Window(0, 2, 10.0), Window(2, 4, 10.0), Window(3, 4, 10.0)]
    kept, means, skipped = window_means(probs, present, windows, 0.5)
    assert kept == windows[:2] and skipped == windows[2:]
    np.testing.assert_allclose(means, [[0.5, 0.5], [0.5, 0.5]])
    kept, _, skipped = window_means(probs, present, windows, 1.0)
    assert kept == windows[:1]
    with pytest.raises(OptionError, match="min_face_fraction"):
        window_means(probs, present, windows, 0.0)


def test_frames_windows_and_clip(frame_ckpt, face_video, tmp_path):
    result = predict_video(face_video, frame_ckpt, out_dir=tmp_path, detector=BlobDetector(),
                           annotate=True)
    saved = json.loads((tmp_path / "predictions.json").read_text())
    # The keys every reader of predictions.json uses are kept.
    assert saved["n_frames"] == 40 and saved["face_present_fraction"] == pytest.approx(25 / 40)
    assert saved["input"]["representation"] == "frame" and saved["fps"] == pytest.approx(FPS)
    frames = saved["frames"]
    assert [f["frame"] for f in frames] == list(range(25)) and saved["n_face_frames"] == 25
    for f in frames:
        assert sum(f["probs"].values()) == pytest.approx(1, abs=1e-5)
        assert f["label"] == max(f["probs"], key=f["probs"].get)
    frame_probs = np.stack([_probs(f) for f in frames])
    assert np.ptp(frame_probs, axis=0).max() > 1e-4  # frames are classified one by one
    # 1 s windows every 0.5 s: (20, 30) has 5 of 10 face frames (kept at 50 %), later none.
    assert [(w["start_frame"], w["end_frame"]) for w in saved["windows"]] == [
        (0, 10), (5, 15), (10, 20), (15, 25), (20, 30)]
    for w in saved["windows"]:
        mean = frame_probs[w["start_frame"]:min(w["end_frame"], 25)].mean(axis=0)
        np.testing.assert_allclose(_probs(w), mean, atol=2e-6)
    assert [s["start_s"] for s in saved["skipped_windows"]] == [2.5, 3.0]
    assert all("fewer than 50%" in s["reason"] for s in saved["skipped_windows"])
    clip = frame_probs.mean(axis=0)
    np.testing.assert_allclose(_probs(saved["clip"]), clip, atol=2e-6)
    assert saved["clip"]["label"] == CLASSES[int(clip.argmax())] == result.label
    assert saved["clip"]["method"] == "mean of frame probabilities over frames with a face"
    table = pd.read_csv(tmp_path / "frame_probs.csv")
    assert len(table) == 40 and table["face"].tolist() == [1] * 25 + [0] * 15
    np.testing.assert_allclose(table[CLASSES].to_numpy()[:25].sum(axis=1), 1, atol=1e-5)
    assert table[CLASSES].iloc[25:].isna().all().all() and table["label"].iloc[25:].isna().all()
    assert result.frame_probs.shape == (40, 7) and np.isnan(result.frame_probs[25:]).all()
    assert (tmp_path / "timeline.png").stat().st_size > 5000
    with av.open(str(tmp_path / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 40


def test_two_faces_the_largest_by_default_or_the_one_chosen(frame_ckpt, tmp_path):
    video = write_video(tmp_path / "two.mp4", scene(20, 20, two=True))
    for face, x_range in [("largest", (100, 180)), ("left:1", (20, 70)),
                          ("at:140,60", (100, 180)), ("left:2", (100, 180))]:
        out = tmp_path / face.replace(":", "_").replace(",", "_")
        predict_video(video, frame_ckpt, out_dir=out, detector=BlobDetector(), face=face)
        saved = json.loads((out / "predictions.json").read_text())
        assert saved["face"] == {"choice": face, "max_detected": 2}
        track = pd.read_csv(out / "face_track.csv")
        centres = (track["x0"] + track["x1"]) / 2
        assert centres.between(*x_range).all(), face
    with pytest.raises(OptionError, match="unknown face choice 'biggest'"):
        predict_video(video, frame_ckpt, out_dir=tmp_path / "bad", detector=BlobDetector(),
                      face="biggest")


def test_face_choice_rules():
    def face(x0, w):
        return FaceDetection(FaceBox(x0, 0, x0 + w, w, 1.0))

    faces = [face(100, 20), face(0, 10), face(50, 40)]
    assert face_choice("largest")(faces) is faces[2]
    assert face_choice("left:1")(faces) is faces[1]
    assert face_choice("left:3")(faces) is faces[0]
    assert face_choice("left:9")(faces) is faces[0]  # fewer faces: the rightmost
    assert face_choice("at:108,5")(faces) is faces[0]
    for bad in ("left:0", "track:1", "at:1"):
        with pytest.raises(OptionError, match="unknown face choice"):
            face_choice(bad)


def test_gif_input_and_its_frame_rate(frame_ckpt, tmp_path):
    frames = scene(15, 15)
    gif = write_gif(tmp_path / "clip.gif", frames, [100] * 15)
    video = read_video_frames(gif)
    assert (video.fps, video.frame_count, video.fps_source) == (10.0, 15, "gif delays")
    result = predict_video(gif, frame_ckpt, out_dir=tmp_path / "out", detector=BlobDetector())
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["fps_source"] == "gif delays" and saved["n_frames"] == 15
    assert len(saved["frames"]) == 15 and [w["end_s"] for w in saved["windows"]] == [1.0, 1.5]
    assert result.label in CLASSES
    # Variable delays: the mean rate; delays under 20 ms play as 100 ms, as in browsers.
    assert read_video_frames(write_gif(tmp_path / "var.gif", frames[:4],
                                       [50, 50, 200, 100])).fps == pytest.approx(4 / 0.4)
    assert read_video_frames(write_gif(tmp_path / "fast.gif", frames[:4], [10] * 4)).fps == 10
    one = write_gif(tmp_path / "one.gif", frames[:1], [100])
    single = predict_video(one, frame_ckpt, out_dir=tmp_path / "one", detector=BlobDetector())
    assert single.n_frames == 1 and len(single.windows) == 1


def test_rgb_frame_model(tmp_path):
    torch.manual_seed(0)
    model = create_model("frame_resnet", in_chans=3, num_classes=7)
    cfg = FitConfig.model_validate({"name": "rgb", "data": {"grayscale": False, "resize": 56,
                                                            "size": 48}})
    ckpt = save_checkpoint(tmp_path / "rgb.pt", model.state_dict(), config=cfg, classes=CLASSES)
    gif = write_gif(tmp_path / "clip.gif", scene(12, 12), [100] * 12)
    result = predict_video(gif, ckpt, out_dir=tmp_path / "out", detector=BlobDetector())
    assert result.n_face_frames == 12 and result.label in CLASSES
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["input"] | {"alignment": None} == {
        "representation": "frame", "size": 48, "mode": "rgb", "resize": 56, "alignment": None}


def test_export_frame_model_and_predict_through_onnxruntime(frame_ckpt, face_video, tmp_path):
    pytest.importorskip("onnxruntime")
    onnx_path = tmp_path / "model.onnx"
    result = runner.invoke(app, ["export", str(frame_ckpt), "--onnx", str(onnx_path)])
    assert result.exit_code == 0, result.output
    with_torch = predict_video(face_video, frame_ckpt, out_dir=tmp_path / "t",
                               detector=BlobDetector())
    with_onnx = predict_video(face_video, frame_ckpt, out_dir=tmp_path / "o",
                              detector=BlobDetector(), onnx_path=onnx_path)
    np.testing.assert_allclose(with_onnx.frame_probs, with_torch.frame_probs, atol=1e-4)


# --- real data (skipped when ../shared/data is absent)

def test_real_video_through_the_cli(frame_ckpt, tmp_path):
    video = shared_path("videos", "single_face.mp4")
    result = runner.invoke(app, ["predict", str(video), "--checkpoint", str(frame_ckpt),
                                 "--out", str(tmp_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert saved["n_frames"] == 72 and saved["n_face_frames"] >= 68
    assert saved["input"]["alignment"] == "fer2013 mean face"
    assert len(saved["windows"]) == 3 and saved["clip"]["label"] in CLASSES
    bad = runner.invoke(app, ["predict", str(video), "--checkpoint", str(frame_ckpt),
                              "--out", str(tmp_path), "--face", "track:2"])
    assert bad.exit_code == 2 and "unknown face choice" in bad.output


def test_real_mafw_gif(frame_ckpt, tmp_path):
    gif = shared_path("mafw_samples", "anger-disgust_08827.gif")
    result = predict_video(gif, frame_ckpt, out_dir=tmp_path)
    saved = json.loads((tmp_path / "predictions.json").read_text())
    assert (saved["fps"], saved["fps_source"], saved["n_frames"]) == (10.0, "gif delays", 15)
    assert result.n_face_frames >= 10 and saved["clip"]["label"] in CLASSES
    for f in saved["frames"]:
        assert sum(f["probs"].values()) == pytest.approx(1, abs=1e-5)


def test_real_faces_the_largest_of_two(frame_ckpt, tmp_path):
    """Two real faces cut from one photo, the larger on the right: dlib sees both."""
    image = cv2.cvtColor(cv2.imread(str(shared_path("faces", "multi_face.jpg"))),
                         cv2.COLOR_BGR2RGB)

    def face(x0: int, y0: int, w: int, side: int) -> np.ndarray:
        cx, cy, half = x0 + w / 2, y0 + w / 2, 0.7 * w  # boxes dlib finds in the photo
        cut = image[int(cy - half):int(cy + half), int(cx - half):int(cx + half)]
        return cv2.resize(cut, (side, side), interpolation=cv2.INTER_AREA)

    frame = np.full((300, 480, 3), 90, np.uint8)
    frame[75:225, 20:170] = face(660, 294, 152, 150)
    frame[30:270, 220:460] = face(294, 244, 152, 240)
    video = write_video(tmp_path / "two_people.mp4", [frame] * 8)
    for choice, x_range in [("largest", (240, 460)), ("left:1", (20, 170))]:
        out = tmp_path / choice.replace(":", "_")
        predict_video(video, frame_ckpt, out_dir=out, face=choice, detect_every=4)
        saved = json.loads((out / "predictions.json").read_text())
        assert saved["face"]["max_detected"] == 2 and saved["n_face_frames"] == 8
        track = pd.read_csv(out / "face_track.csv")
        assert ((track["x0"] + track["x1"]) / 2).between(*x_range).all(), choice
