"""Bad and unusual videos for `fervid predict` and the video readers (`fervid prepare faces`
reads clips with the same `read_video_frames`): every bad one fails with exit status 2 and
one line naming the file and the problem, and leaves an earlier run's outputs alone; every
valid but unusual one works.

Videos are generated with PyAV in tmp_path: synthetic frames where no face is needed, frames
of the real ../shared/data/videos/single_face.mp4 (dlib finds its face) where one is.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.cli.demo import VARIANTS, demo_config
from fervid.config import FitConfig
from fervid.faces import VideoReadError, read_video_frames, track_video
from fervid.models import create_model, model_from_config
from fervid.runs.checkpoint import save_checkpoint

runner = CliRunner()
CLASSES = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def encode(path: Path, frames: list[np.ndarray], *, fps: int = 10, rotation: int | None = None,
           pts_ms: list[int] | None = None, options: dict | None = None) -> Path:
    """An MPEG-4 part 2 ``.mp4`` of RGB ``frames``; ``rotation``: a display matrix turning
    them that many degrees counter-clockwise; ``pts_ms``: each frame's time (variable rate)."""
    with av.open(str(path), mode="w", format="mp4", options=options or {}) as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "3"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def noise(n: int, shape=(120, 160)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (*shape, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def face_frames() -> list[np.ndarray]:
    """The first 12 RGB frames of the real single_face.mp4 (640x360)."""
    frames = []
    for frame in read_video_frames(shared_path("videos", "single_face.mp4")):
        frames.append(frame)
        if len(frames) == 12:
            break
    return frames


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    """Untrained checkpoints: the demo's SMA-STN (a window model) and a frame model."""
    folder = tmp_path_factory.mktemp("ckpt")
    cfg = demo_config(VARIANTS[0], epochs=1)
    torch.manual_seed(0)
    model = model_from_config(cfg.model.model_copy(update={"pretrained_path": None}),
                              in_chans=1, num_classes=len(cfg.data.classes))
    window = save_checkpoint(folder / "smastn.pt", model.state_dict(), config=cfg,
                             classes=cfg.data.classes)
    frame = save_checkpoint(folder / "frame.pt",
                            create_model("frame_resnet", in_chans=1, num_classes=7).state_dict(),
                            config=FitConfig(name="tiny"), classes=CLASSES)
    return {"window": window, "frame": frame}


def predict(video: Path, ckpt: Path, out: Path, *extra: str):
    return runner.invoke(app, ["predict", str(video), "--checkpoint", str(ckpt), "--out",
                               str(out), "--no-progress", *extra])


def one_error_line(result, name: str, problem: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert name in lines[0] and problem in lines[0], lines[0]
    assert "Traceback" not in result.output


def _truncated(tmp: Path, name: str, options: dict | None) -> Path:
    whole = encode(tmp / f"whole_{name}", noise(20), options=options)
    data = whole.read_bytes()
    (tmp / name).write_bytes(data[:len(data) // 2])
    return tmp / name


def _bad_videos(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, the problem its error line names)."""
    (tmp / "empty.mp4").write_bytes(b"")
    png = tmp / "photo.mp4"
    png.write_bytes(cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))[1].tobytes())
    audio = tmp / "sound.mp4"
    with av.open(str(audio), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    (tmp / "notes.mp4").write_text("not a video at all\n" * 50)
    return {
        "zero bytes": (tmp / "empty.mp4", "is empty (0 bytes)"),
        # moov index at the end: the truncated file has none.
        "truncated, index lost": (_truncated(tmp, "cut.mp4", None), "not a readable video"),
        # moov index first: frames end early.
        "truncated, frames lost": (_truncated(tmp, "cut_faststart.mp4",
                                              {"movflags": "faststart"}), "truncated"),
        "png behind .mp4": (png, "is a still image (png), not a video"),
        "audio only": (audio, "has no video stream"),
        "text behind .mp4": (tmp / "notes.mp4", "not a readable video"),
    }


def test_bad_videos_fail_in_one_line_and_keep_earlier_outputs(ckpts, face_frames, tmp_path):
    out = tmp_path / "out"
    good = encode(tmp_path / "good.mp4", face_frames[:6])
    assert predict(good, ckpts["frame"], out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert {"predictions.json", "frame_probs.csv", "face_track.csv"} <= set(before)
    for name, (video, problem) in _bad_videos(tmp_path).items():
        for ckpt in ckpts.values():
            result = predict(video, ckpt, out)
            one_error_line(result, video.name, problem)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before, name  # no tmp left


def test_the_readers_name_each_bad_video(tmp_path):
    """What `prepare faces` and the other video readers get: read_video_frames and tracking."""
    for video, problem in _bad_videos(tmp_path).values():
        with pytest.raises(VideoReadError, match=re.escape(problem)) as caught:
            list(read_video_frames(video))
        assert video.name in str(caught.value)
        with pytest.raises(VideoReadError, match=video.name):
            track_video(video)


def test_clips_shorter_than_a_window(ckpts, face_frames, tmp_path):
    one = encode(tmp_path / "one.mp4", face_frames[:1])
    one_error_line(predict(one, ckpts["window"], tmp_path / "w1"), "one.mp4",
                   "1 frame decoded; a window needs at least 2")
    assert predict(one, ckpts["frame"], tmp_path / "f1").exit_code == 0  # a frame model: ok
    two = encode(tmp_path / "two.mp4", face_frames[:2])
    result = predict(two, ckpts["window"], tmp_path / "w2")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "w2" / "predictions.json").read_text())
    assert saved["n_frames"] == 2
    assert [(w["start_frame"], w["end_frame"]) for w in saved["windows"]] == [(0, 2)]


def test_gif_of_a_face(ckpts, face_frames, tmp_path):
    gif = tmp_path / "face.gif"
    images = [Image.fromarray(f) for f in face_frames[:5]]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=100, loop=0)
    result = predict(gif, ckpts["window"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert (saved["fps"], saved["fps_source"], saved["n_frames"]) == (10.0, "gif delays", 5)


def test_variable_frame_rate_works_and_is_noted(ckpts, face_frames, tmp_path):
    times = [0, 40, 80, 200, 240, 400, 440, 480]
    vfr = encode(tmp_path / "vfr.mp4", face_frames[:8], pts_ms=times)
    result = predict(vfr, ckpts["frame"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["n_frames"] == 8 and saved["n_face_frames"] == 8
    assert any("variable frame rate" in note for note in saved["notes"])
    assert "variable frame rate" in " ".join(result.output.split())


def test_rotated_video_is_turned_upright(ckpts, face_frames, tmp_path):
    """A phone's portrait video: landscape frames stored turned clockwise, with a display
    matrix turning them back. dlib finds upright faces only, so the rotation is honoured."""
    stored = [np.ascontiguousarray(np.rot90(f, -1)) for f in face_frames[:6]]  # 360 x 640
    video = encode(tmp_path / "portrait.mp4", stored, rotation=90)
    frames = read_video_frames(video)
    assert (frames.rotation, frames.width, frames.height) == (90, 640, 360)
    first = next(iter(frames))
    assert first.shape == (360, 640, 3)
    assert np.abs(first.astype(int) - face_frames[0]).mean() < 8  # the upright frame
    result = predict(video, ckpts["frame"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["rotation"] == 90 and saved["n_face_frames"] == 6
    assert any("turned 90 degrees" in note for note in saved["notes"])


def test_4k_video(ckpts, face_frames, tmp_path):
    big = [cv2.resize(f, (3840, 2160), interpolation=cv2.INTER_LINEAR) for f in face_frames[:3]]
    video = encode(tmp_path / "uhd.mp4", big)
    assert (read_video_frames(video).width, read_video_frames(video).height) == (3840, 2160)
    result = predict(video, ckpts["window"], tmp_path / "out")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert saved["n_frames"] == 3 and saved["face_present_fraction"] == 1.0
