"""Video decoding and face tracking on real videos and generated frame sequences."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import shared_path
from fervid.faces import (
    DlibFaceDetector,
    FaceBox,
    FaceDetection,
    NoFaceFoundError,
    VideoReadError,
    landmark_jitter,
    read_video_frames,
    track_faces,
    track_video,
)
from fervid.faces.tracking import INTERPOLATED, MISSING


@pytest.fixture(scope="module")
def detector():
    # Frames shrunk to 320 px for detection, upsampled once: faces of ~40 px and more.
    return DlibFaceDetector(upsample=1, max_side=320)


@pytest.fixture(scope="module")
def tracks(detector):
    """Tracks of the real videos, computed once on first use."""
    cache = {}

    def track(name: str):
        if name not in cache:
            cache[name] = track_video(shared_path("videos", name), detector=detector,
                                      detect_every=5)
        return cache[name]

    return track


@pytest.mark.parametrize("name", ["WolfgangLanger_Pexels.mp4", "single_face.mp4"])
def test_face_in_almost_every_frame(tracks, name):
    track = tracks(name)
    frames = read_video_frames(shared_path("videos", name))
    assert abs(len(track) - frames.frame_count) <= 3
    print(f"{name}: face in {track.present_fraction:.1%} of {len(track)} frames")
    assert track.present_fraction >= 0.95
    assert track.fps == pytest.approx(frames.fps)


def test_face_that_leaves(tracks):
    track = tracks("face_noface.mov")
    present = track.present
    assert present[:30].all() and not present[-30:].any()
    assert len(track.gaps()) == 1 and track.gaps()[0][1] == len(track) - 1
    assert 0.2 < track.present_fraction < 0.8
    assert np.isnan(track.boxes[-1]).all() and np.isfinite(track.boxes[0]).all()


def test_face_that_enters(tracks):
    track = tracks("noface_face.mov")
    present = track.present
    assert not present[:30].any() and present[-30:].all()
    assert len(track.gaps()) == 1 and track.gaps()[0][0] == 0
    assert 0.2 < track.present_fraction < 0.8


def test_video_without_a_face(detector):
    path = shared_path("videos", "no_face.mp4")
    with pytest.raises(NoFaceFoundError, match="no face found in .*no_face.mp4"):
        track_video(path, detector=detector, detect_every=5)


def test_smoothing_reduces_landmark_jitter(tracks):
    track = tracks("single_face.mp4")
    raw, smooth = landmark_jitter(track.raw_landmarks), landmark_jitter(track.landmarks)
    print(f"single_face.mp4 landmark jitter (112 px aligned crop): raw {raw:.3f} px, "
          f"smoothed {smooth:.3f} px")
    assert smooth < 0.8 * raw


def test_sidecar_csv(tracks, tmp_path):
    track = tracks("face_noface.mov")
    track.write_csv(tmp_path / "faces.csv")
    table = pd.read_csv(tmp_path / "faces.csv")
    assert list(table.columns) == ["frame", "status", "x0", "y0", "x1", "y1"]
    assert len(table) == len(track)
    assert list(table["status"]) == list(track.status)
    missing = table["status"] == MISSING
    assert table.loc[missing, "x0"].isna().all() and table.loc[~missing, "x0"].notna().all()
    track.write_csv(tmp_path / "points.csv", with_landmarks=True)
    points = pd.read_csv(tmp_path / "points.csv")
    assert points.shape[1] == 6 + 136
    np.testing.assert_allclose(points.loc[0, "lx30"], track.landmarks[0, 30, 0], atol=0.01)


# --- generated sequences

def test_short_gaps_are_interpolated_long_gaps_reported(detector):
    face = cv2.imread(str(shared_path("faces", "single_face.jpg")))
    face = cv2.resize(face, (240, 236))
    blank = np.full((300, 400, 3), 90, np.uint8)

    def frame_with_face(dx: int) -> np.ndarray:
        frame = blank.copy()
        frame[30:266, 40 + dx:280 + dx] = face
        return frame

    # 0-9 face, 10-12 blank (short gap), 13-22 face, 23-35 blank (long gap), 36-40 face.
    layout = [True] * 10 + [False] * 3 + [True] * 10 + [False] * 13 + [True] * 5
    frames = [frame_with_face(2 * i) if has_face else blank for i, has_face in enumerate(layout)]
    track = track_faces(frames, detector=detector, detect_every=1, max_gap=5, source="generated")
    assert list(track.status[10:13]) == [INTERPOLATED] * 3
    assert track.gaps() == [(23, 35)]
    assert track.present[layout].all()
    # Interpolated boxes lie between their neighbours.
    x0 = track.boxes[:, 0]
    assert x0[9] < x0[11] < x0[13]


class _ScriptedDetector:
    """Finds a face on frames whose first pixel is non-zero, with landmarks given by a script."""

    def __init__(self, landmarks_by_value):
        self.landmarks_by_value = landmarks_by_value

    def detect_faces(self, image):
        value = int(image[0, 0, 0])
        if value == 0:
            return []
        return [FaceDetection(FaceBox(10, 10, 50, 50, 1.0), self.landmarks_by_value[value])]


def test_tracking_logic_with_a_scripted_detector():
    rng = np.random.default_rng(0)
    base = rng.uniform(10, 50, size=(68, 2)).astype(np.float32)
    shapes = {v: base + rng.normal(0, 1, size=(68, 2)).astype(np.float32) for v in range(1, 40)}
    values = list(range(1, 11)) + [0, 0] + list(range(11, 21))
    frames = [np.full((60, 60, 3), v, np.uint8) for v in values]
    track = track_faces(frames, detector=_ScriptedDetector(shapes), predictor=object(),
                        detect_every=1, smooth_window=5, max_gap=2)
    assert list(track.status) == ["detected"] * 10 + [INTERPOLATED] * 2 + ["detected"] * 10
    np.testing.assert_array_equal(track.raw_landmarks[0], shapes[1])
    # The centred average of 5 frames; at the run's edge the line through frames 0..2
    # evaluated at frame 0; linear filling between runs.
    np.testing.assert_allclose(track.landmarks[2], np.mean([shapes[v] for v in range(1, 6)], 0),
                               atol=1e-4)
    edge = np.stack([shapes[v] for v in range(1, 4)]).reshape(3, -1)
    slope, intercept = np.polyfit(np.arange(3), edge, 1)
    np.testing.assert_allclose(track.landmarks[0].ravel(), intercept, atol=1e-4)
    np.testing.assert_allclose(track.landmarks[10],
                               (2 * track.landmarks[9] + track.landmarks[12]) / 3, atol=1e-4)
    assert landmark_jitter(track.landmarks) < landmark_jitter(track.raw_landmarks)
    with pytest.raises(NoFaceFoundError, match="no face found in blank"):
        track_faces([frames[10]] * 3, detector=_ScriptedDetector(shapes), predictor=object(),
                    source="blank")


# --- decoding errors

def test_read_video_frames():
    video = read_video_frames(shared_path("videos", "single_face.mp4"))
    assert (video.width, video.height) == (640, 360) and video.fps == pytest.approx(30)
    first = next(iter(video))
    assert first.shape == (360, 640, 3) and first.dtype == np.uint8


def test_unreadable_files_name_the_path(tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoReadError, match="clip.mp4"):
        read_video_frames(fake)
    with pytest.raises(FileNotFoundError, match="absent.mp4"):
        read_video_frames(tmp_path / "absent.mp4")
    with pytest.raises(VideoReadError, match="clip.mp4"):
        track_video(fake)


def test_smoothing_keeps_a_steady_motion_at_the_ends_of_a_run():
    from fervid.faces.tracking import DETECTED, MISSING, _smooth

    positions = np.arange(12, dtype=np.float32)[:, None] * 5.0  # 5 px per frame
    status = np.array([DETECTED] * 10 + [MISSING] * 2, dtype=object)
    smoothed = _smooth(positions, status, window=5)
    assert np.allclose(smoothed[:10], positions[:10])  # a symmetric mean keeps a line
    noisy = positions + np.tile([1.0, -1.0], 6)[:, None].astype(np.float32)
    assert np.abs(_smooth(noisy, status, 5)[2:8] - positions[2:8]).max() < 0.5


def test_gray_frames_are_the_luma_of_the_colour_frames():
    frames = read_video_frames(shared_path("videos", "single_face.mp4"))
    gray = list(frames.as_format("gray"))
    colour = list(frames)
    assert len(gray) == len(colour) == 72 and gray[0].shape == colour[0].shape[:2]
    for g, c in zip(gray[::20], colour[::20], strict=True):
        ref = cv2.cvtColor(c, cv2.COLOR_RGB2GRAY).astype(float)
        assert np.corrcoef(g.ravel().astype(float), ref.ravel())[0, 1] > 0.99
