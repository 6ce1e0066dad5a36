from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from fervid.representation.frame_loading import (
    FrameReadError,
    count_video_frames,
    load_clip,
    load_frame,
    load_video_frames,
    reduced_read_flag,
)


def _plain(paths, size):
    """The straightforward way: full decode with PIL, then resize each frame."""
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size),
                                                                    Image.Resampling.BILINEAR))
                     for p in paths])


@pytest.fixture(scope="module")
def face_frames(tmp_path_factory):
    """Eight 256x256 JPEG frames cut from a real face video."""
    video = shared_path("videos", "single_face.mp4")
    folder = tmp_path_factory.mktemp("face_frames")
    paths = []
    with av.open(str(video)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if k % 4:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            side = min(h, w)
            square = rgb[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            path = folder / f"{len(paths) + 1}.jpg"
            Image.fromarray(square).resize((256, 256), Image.Resampling.BILINEAR).save(
                path, quality=90)
            paths.append(path)
            if len(paths) == 8:
                break
    return paths


def test_load_clip_shape_and_close_to_plain_way(face_frames):
    clip = load_clip(face_frames, size=112)
    assert clip.shape == (8, 112, 112, 3) and clip.dtype == np.uint8
    plain = _plain(face_frames, 112)
    assert np.abs(clip.astype(int) - plain).mean() < 3.0
    assert clip.std() > 10  # a real picture, not a constant
    full = load_clip(face_frames, size=112, reduced_decode=False)
    assert np.abs(full.astype(int) - plain).mean() < 3.0


def test_reduced_decode_scale_choice(face_frames):
    assert reduced_read_flag(face_frames[0], 112) == cv2.IMREAD_REDUCED_COLOR_2
    assert reduced_read_flag(face_frames[0], 64) == cv2.IMREAD_REDUCED_COLOR_4
    assert reduced_read_flag(face_frames[0], 200) == cv2.IMREAD_COLOR
    assert load_clip(face_frames[:2], size=300).shape == (2, 300, 300, 3)


def test_indices_pick_and_repeat(tmp_path):
    paths = []
    for k in range(4):
        path = tmp_path / f"{k}.jpg"
        Image.fromarray(np.full((40, 60, 3), 60 * k, np.uint8)).save(path, quality=95)
        paths.append(path)
    clip = load_clip(paths, size=20, indices=[0, 0, 3, 2])
    assert clip.shape == (4, 20, 20, 3)
    assert np.abs(clip[:, 10, 10, 0].astype(int) - [0, 0, 180, 120]).max() <= 3
    with pytest.raises(ValueError, match="frame index 4 outside a clip of 4 frames"):
        load_clip(paths, size=20, indices=[4])
    with pytest.raises(ValueError, match="at least one frame"):
        load_clip([], size=20)


def test_centre_crop_keeps_aspect(tmp_path):
    image = np.zeros((20, 60, 3), np.uint8)
    image[:, 20:40] = 255  # only the centre square is white
    path = tmp_path / "wide.png"
    Image.fromarray(image).save(path)
    assert load_frame(path, size=10).min() == 255


def test_unreadable_files_name_the_path(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    with pytest.raises(FrameReadError, match="broken.jpg"):
        load_clip([broken])
    with pytest.raises(FileNotFoundError, match="absent.jpg"):
        load_frame(tmp_path / "absent.jpg")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (32, 32)).save(good)
    broken.write_bytes(good.read_bytes()[:40])  # a valid header, truncated pixels
    with pytest.raises(FrameReadError, match="broken.jpg"):
        load_clip([good, broken], size=16)
    with pytest.raises(FrameReadError, match="broken.jpg"):
        load_video_frames(broken, [0])
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        load_video_frames(tmp_path / "absent.mp4", [0])


def test_real_video_frames(tmp_path):
    video = shared_path("videos", "single_face.mp4")
    total = count_video_frames(video)
    assert total > 16
    frames = load_video_frames(video, [0, total // 2, total - 1], size=64)
    assert frames.shape == (3, 64, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 10
    with pytest.raises(FrameReadError, match=f"frame {total} requested"):
        load_video_frames(video, [total])


def test_video_frames_written_with_pyav(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(6):
            image = np.full((48, 64, 3), 40 * k, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    assert count_video_frames(path) == 6
    frames = load_video_frames(path, [5, 1, 1], size=24)
    assert frames.shape == (3, 24, 24, 3)
    assert np.abs(frames[:, 12, 12, 1].astype(int) - [200, 40, 40]).max() <= 10
