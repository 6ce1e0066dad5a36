"""Following one face through a video: detect, track, smooth, interpolate short gaps.

:func:`track_faces` makes one pass over the frames:

* every ``detect_every`` frames (and whenever no face is held) the detector runs; the face kept
  is the one overlapping the previous box most (so the track stays on one person when several
  are in view); when the track starts, restarts after a loss, or no face overlaps the previous
  box enough, the ``choose`` rule picks one (:func:`face_choice`: the largest by default, the
  N-th from the left, or the one nearest a point). No face: the track is lost until a later
  detection finds one;
* on the other frames the landmark predictor runs inside the previous box, shifted by the
  landmarks' motion (``tracked``): cheap, and it follows the face between detections;
* afterwards boxes and landmarks are smoothed with a centred moving average of
  ``smooth_window`` frames over each run of consecutive frames with a face (offline, so no
  lag; runs are not smoothed across gaps), and gaps of at most ``max_gap`` frames between two
  faces are filled by linear interpolation (``interpolated``). Longer gaps, and gaps at the
  start or end, stay ``missing`` and are listed by :meth:`FaceTrack.gaps`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.errors import FervidError, OptionError
from fervid.faces.alignment import five_points, matrix_scale, similarity_matrix, template_points
from fervid.faces.detection import (
    NUM_LANDMARKS,
    DlibFaceDetector,
    FaceBox,
    FaceDetection,
    FaceDetector,
    LandmarkPredictor,
)
from fervid.faces.video import read_video_frames
from fervid.files import atomic_write

DETECTED, TRACKED, INTERPOLATED, MISSING = "detected", "tracked", "interpolated", "missing"
#: A face is present on frames with one of these statuses.
PRESENT = (DETECTED, TRACKED, INTERPOLATED)
#: Picks the face a track starts on from one frame's detections (never an empty list).
FaceChooser = Callable[[Sequence[FaceDetection]], FaceDetection]


class NoFaceFoundError(FervidError, ValueError):
    """No frame of a video has a face."""


@dataclass
class FaceTrack:
    """One face over the frames of a video.

    Attributes
    ----------
    status
        ``(T,)`` per frame: ``detected``, ``tracked``, ``interpolated`` or ``missing``.
    boxes
        ``(T, 4) float32`` smoothed x0, y0, x1, y1; NaN where missing.
    landmarks
        ``(T, 68, 2) float32`` smoothed landmarks; NaN where missing.
    raw_landmarks
        ``(T, 68, 2) float32`` landmarks before smoothing and interpolation.
    fps
        Frame rate of the source (0 when unknown).
    source
        What the frames came from (a path), for messages.
    n_faces
        ``(T,) int`` faces the detector found on each frame it ran on, -1 on the frames it did
        not (tracked); None when not recorded.
    """

    status: np.ndarray
    boxes: np.ndarray
    landmarks: np.ndarray
    raw_landmarks: np.ndarray
    fps: float = 0.0
    source: str = ""
    n_faces: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.status)

    @property
    def present(self) -> np.ndarray:
        """``(T,) bool``: frames with a face (detected, tracked or interpolated)."""
        return np.isin(self.status, PRESENT)

    @property
    def present_fraction(self) -> float:
        return float(self.present.mean()) if len(self) else 0.0

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of missing frames as ``(first, last)`` frame indices, inclusive."""
        return _runs(~self.present)

    def to_frame(self, *, with_landmarks: bool = False) -> pd.DataFrame:
        """One row per frame: ``frame, status, x0, y0, x1, y1`` (the box) and, with landmarks,
        ``lx0, ly0, ..., lx67, ly67``."""
        table = pd.DataFrame({"frame": np.arange(len(self)), "status": self.status})
        table[["x0", "y0", "x1", "y1"]] = self.boxes.round(2)
        if with_landmarks:
            names = [f"l{axis}{i}" for i in range(NUM_LANDMARKS) for axis in "xy"]
            points = pd.DataFrame(self.landmarks.reshape(len(self), -1).round(2), columns=names)
            table = pd.concat([table, points], axis=1)
        return table

    def write_csv(self, path: Path | str, *, with_landmarks: bool = False) -> None:
        """Write :meth:`to_frame` as a sidecar CSV (missing values empty), atomically."""
        table = self.to_frame(with_landmarks=with_landmarks)
        atomic_write(Path(path), lambda tmp: table.to_csv(tmp, index=False))


def track_faces(frames: Iterable[np.ndarray], *, detector: FaceDetector | None = None,
                predictor: LandmarkPredictor | None = None, detect_every: int = 5,
                smooth_window: int = 5, max_gap: int = 5, min_overlap: float = 0.3,
                fps: float = 0.0, source: str = "video", refine: bool = True,
                choose: FaceChooser | str = "largest") -> FaceTrack:
    """Follow one face, the largest by default, through ``frames`` (RGB or BGR
    ``(H, W, 3) uint8``, or ``(H, W)`` gray).

    Parameters
    ----------
    detector
        Any object with ``detect_faces``; default :class:`DlibFaceDetector` with landmarks,
        frames shrunk to 480 px for detection and upsampled once.
    predictor
        Landmark model used on tracked frames; default the detector's own, else dlib's.
    detect_every
        Run the detector on every N-th frame (1: every frame).
    smooth_window
        Frames of the centred moving average (1: no smoothing; an even width acts as the
        odd width below it).
    max_gap
        Longest run of frames without a face that is filled by interpolation.
    min_overlap
        Least IoU with the previous box for a detection to continue the same track.
    refine
        On tracked frames, fit the landmarks a second time in the box moved with the face
        (steadier landmarks); False fits once in the previous frame's moved box (half the
        landmark time, for real-time use).
    choose
        Which face a track starts on when several are in view: a rule of :func:`face_choice`
        (``largest``, ``left:N``, ``at:X,Y``) or such a function.

    Raises
    ------
    NoFaceFoundError
        When no frame has a face (message ``no face found in SOURCE``).
    OptionError
        An invalid option or ``choose`` rule.
    """
    if detect_every < 1 or smooth_window < 1 or max_gap < 0:
        raise OptionError("detect_every and smooth_window must be >= 1 and max_gap >= 0, got "
                          f"{detect_every}, {smooth_window}, {max_gap}")
    chooser = face_choice(choose) if isinstance(choose, str) else choose
    detector = detector or DlibFaceDetector(upsample=1, max_side=480)
    predictor = predictor or getattr(detector, "predictor", None) or LandmarkPredictor()

    status: list[str] = []
    boxes: list[np.ndarray] = []
    points: list[np.ndarray] = []
    nan_box = np.full(4, np.nan, np.float32)
    nan_points = np.full((NUM_LANDMARKS, 2), np.nan, np.float32)
    box: FaceBox | None = None
    previous_points: np.ndarray | None = None
    n_faces: list[int] = []
    for index, frame in enumerate(frames):
        if box is None or index % detect_every == 0:
            faces = detector.detect_faces(frame)
            n_faces.append(len(faces))
            found = _pick(faces, box, min_overlap, chooser)
            if found is None:
                box, previous_points = None, None
                status.append(MISSING)
                boxes.append(nan_box)
                points.append(nan_points)
                continue
            box = found.box
            current = found.landmarks if found.landmarks is not None else predictor(frame, box)
            status.append(DETECTED)
        else:
            current = predictor(frame, box)
            status.append(TRACKED)
            n_faces.append(-1)
        if previous_points is not None and status[-1] == TRACKED:
            # Follow the face: move the box with the landmarks' mean motion, then re-predict.
            dx, dy = current.mean(axis=0) - previous_points.mean(axis=0)
            box = box.shifted(float(dx), float(dy))
            if refine:
                current = predictor(frame, box)
        previous_points = current
        boxes.append(box.as_array())
        points.append(current.astype(np.float32))

    if not status or DETECTED not in status:
        raise NoFaceFoundError(f"no face found in {source}")
    status_array = np.array(status, dtype=object)
    raw = np.stack(points)
    short_gaps = [(first, last) for first, last in _runs(status_array == MISSING)
                  if first > 0 and last < len(status) - 1 and last - first + 1 <= max_gap]
    smooth_boxes = _fill_gaps(_smooth(np.stack(boxes), status_array, smooth_window), short_gaps)
    smooth_points = _fill_gaps(_smooth(raw, status_array, smooth_window), short_gaps)
    for first, last in short_gaps:
        status_array[first:last + 1] = INTERPOLATED
    return FaceTrack(status_array, smooth_boxes, smooth_points, raw, fps, source,
                     np.array(n_faces, dtype=np.int32))


def track_video(path: Path | str, **options) -> FaceTrack:
    """:func:`track_faces` over the frames of a video file (decoded with PyAV)."""
    video = read_video_frames(path)
    return track_faces(video, fps=video.fps, source=str(video.path), **options)


def landmark_jitter(landmarks: np.ndarray, *, size: int = 112, margin: float = 0.1) -> float:
    """Mean frame-to-frame landmark displacement in pixels of the aligned crop.

    Each step's displacement (mean over the 68 points) is converted from image pixels to crop
    pixels with the scale of that frame's 5-point alignment (``size``, ``margin`` as in
    :func:`~fervid.faces.alignment.align_face`). Steps touching a missing frame are skipped.
    """
    target = template_points("5point", size=size, margin=margin)
    steps = []
    for before, after in zip(landmarks[:-1], landmarks[1:], strict=True):
        if not (np.isfinite(before).all() and np.isfinite(after).all()):
            continue
        scale = matrix_scale(similarity_matrix(five_points(after), target))
        steps.append(float(np.linalg.norm(after - before, axis=1).mean()) * scale)
    if not steps:
        raise ValueError("landmark jitter needs two consecutive frames with a face")
    return float(np.mean(steps))


def face_choice(rule: str) -> FaceChooser:
    """The function that picks a track's face from one frame's detections, by name.

    Parameters
    ----------
    rule
        ``largest``: the largest box; ``left:N``: the N-th face from the left (1: the leftmost;
        the rightmost when fewer are in view), by box centre; ``at:X,Y``: the face whose box
        centre is nearest the point (X, Y), in pixels of the full frame.

    Raises
    ------
    OptionError
        Any other rule (the message lists the valid forms).
    """
    text = rule.strip().lower()
    if text == "largest":
        return lambda faces: max(faces, key=lambda f: f.box.area)
    if match := re.fullmatch(r"left:(\d+)", text):
        n = int(match.group(1))
        if n >= 1:
            return lambda faces: sorted(faces, key=lambda f: f.box.center[0])[
                min(n, len(faces)) - 1]
    if match := re.fullmatch(r"at:(-?[\d.]+),(-?[\d.]+)", text):
        x, y = float(match.group(1)), float(match.group(2))
        return lambda faces: min(faces, key=lambda f: (f.box.center[0] - x) ** 2
                                 + (f.box.center[1] - y) ** 2)
    raise OptionError(f"unknown face choice {rule!r}: use 'largest', 'left:N' (N >= 1, the N-th "
                      "face from the left) or 'at:X,Y' (the face nearest pixel X, Y)")


def _pick(faces: list[FaceDetection], previous: FaceBox | None, min_overlap: float,
          choose: FaceChooser) -> FaceDetection | None:
    """The face continuing ``previous`` (IoU >= ``min_overlap``), else ``choose``'s; None if
    none."""
    if not faces:
        return None
    if previous is not None:
        best = max(faces, key=lambda f: f.box.iou(previous))
        if best.box.iou(previous) >= min_overlap:
            return best
    return choose(faces)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive ``(first, last)`` indices of the runs of True in ``mask``."""
    padded = np.concatenate([[False], np.asarray(mask, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _smooth(values: np.ndarray, status: np.ndarray, window: int) -> np.ndarray:
    """Local straight-line fit along time within each run of present frames.

    Frame ``i`` gets the value at ``i`` of the least-squares line through frames ``i - h ..
    i + h`` (``h = (window - 1) // 2``) of its run. Inside a run that is the centred moving
    average; near a run's ends, where the window is cut, the line still follows a moving face
    instead of dragging it back, and still averages out detector noise.
    """
    flat = values.reshape(len(values), -1).astype(np.float64)
    out = flat.copy()
    half = (window - 1) // 2
    if half > 0:
        for first, last in _runs(np.isin(status, PRESENT)):
            y = flat[first:last + 1]
            t = np.arange(len(y), dtype=np.float64)
            sums = [np.concatenate([np.zeros((1,) + a.shape[1:]), np.cumsum(a, axis=0)])
                    for a in (np.ones_like(t), t, t * t)]
            sy, sty = (np.concatenate([np.zeros((1, y.shape[1])), np.cumsum(a, axis=0)])
                       for a in (y, t[:, None] * y))
            lo = np.maximum(t - half, 0).astype(int)
            hi = np.minimum(t + half, len(y) - 1).astype(int) + 1
            n, st, stt = (c[hi] - c[lo] for c in sums)
            sum_y, sum_ty = sy[hi] - sy[lo], sty[hi] - sty[lo]
            denom = n * stt - st * st
            slope = np.where(denom[:, None] > 0,
                             (n[:, None] * sum_ty - st[:, None] * sum_y)
                             / np.where(denom > 0, denom, 1)[:, None], 0.0)
            out[first:last + 1] = (sum_y - slope * st[:, None]) / n[:, None] + slope * t[:, None]
    return out.reshape(values.shape).astype(np.float32)


def _fill_gaps(values: np.ndarray, gaps: list[tuple[int, int]]) -> np.ndarray:
    """Linear interpolation over each inclusive ``(first, last)`` gap from its two neighbours."""
    out = values.copy()
    for first, last in gaps:
        before, after = values[first - 1], values[last + 1]
        for index in range(first, last + 1):
            t = (index - first + 1) / (last - first + 2)
            out[index] = (1 - t) * before + t * after
    return out
