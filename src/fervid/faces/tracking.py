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

:class:`FaceTracker` does the same one frame at a time: a frame's smoothed values are final
once a few frames after it are tracked (:attr:`FaceTracker.lag`), so long videos stream
through in bounded memory (``fervid predict``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.errors import FervidError, OptionError
from fervid.faces.alignment import five_points, matrix_scale, similarity_matrix, template_points
from fervid.faces.choice import FaceChooser, face_choice, pick_face
from fervid.faces.detection import (
    NUM_LANDMARKS,
    DlibFaceDetector,
    FaceBox,
    FaceDetector,
    LandmarkPredictor,
)
from fervid.faces.video import read_video_frames
from fervid.files import atomic_write

DETECTED, TRACKED, INTERPOLATED, MISSING = "detected", "tracked", "interpolated", "missing"
#: A face is present on frames with one of these statuses.
PRESENT = (DETECTED, TRACKED, INTERPOLATED)


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
    tracker = FaceTracker(detector=detector, predictor=predictor, detect_every=detect_every,
                          smooth_window=smooth_window, max_gap=max_gap,
                          min_overlap=min_overlap, refine=refine, choose=choose)
    for frame in frames:
        tracker.push(frame)
    tracker.finish()
    return tracker.track(fps=fps, source=source)


class FaceTracker:
    """:func:`track_faces` one frame at a time, for videos too long to hold: each
    :meth:`push` may finalise earlier frames (smoothed, gaps filled), at most :attr:`lag`
    frames behind the last one pushed, so a caller can use frame ``i`` (align it) while
    holding only the last ``lag + chunk`` frames. Options as :func:`track_faces`; per frame
    only the status, the box and the 68 landmarks are kept (about 1.2 kB).

    ``chunk``: frames finalised together (one smoothing call for all of them, cheaper than
    one per frame).
    """

    def __init__(self, *, detector: FaceDetector | None = None,
                 predictor: LandmarkPredictor | None = None, detect_every: int = 5,
                 smooth_window: int = 5, max_gap: int = 5, min_overlap: float = 0.3,
                 refine: bool = True, choose: FaceChooser | str = "largest",
                 chunk: int = 16) -> None:
        if detect_every < 1 or smooth_window < 1 or max_gap < 0 or chunk < 1:
            raise OptionError("detect_every, smooth_window and chunk must be >= 1 and "
                              f"max_gap >= 0, got {detect_every}, {smooth_window}, {chunk}, "
                              f"{max_gap}")
        self._chooser = face_choice(choose) if isinstance(choose, str) else choose
        self._detector = detector or DlibFaceDetector(upsample=1, max_side=480)
        self._predictor = (predictor or getattr(self._detector, "predictor", None)
                           or LandmarkPredictor())
        self.detect_every, self.smooth_window, self.max_gap = detect_every, smooth_window, max_gap
        self.min_overlap, self.refine, self.chunk = min_overlap, refine, chunk
        #: A frame's final values depend on raw values up to this many frames after it: the
        #: smoothing's half width, and a filled gap's far neighbour and its smoothing.
        self.lag = max_gap + (smooth_window - 1) // 2 + 1
        self._raw_status: list[str] = []
        self._raw_boxes: list[np.ndarray] = []
        self._raw_points: list[np.ndarray] = []
        self._n_faces: list[int] = []
        #: Final values of frames ``0 .. finalized - 1``.
        self.status: list[str] = []
        self.boxes: list[np.ndarray] = []
        self.landmarks: list[np.ndarray] = []
        self._box: FaceBox | None = None
        self._previous: np.ndarray | None = None
        self._finished = False

    def __len__(self) -> int:
        """Frames pushed."""
        return len(self._raw_status)

    @property
    def finalized(self) -> int:
        return len(self.status)

    def push(self, frame: np.ndarray) -> range:
        """Track one more frame; returns the frames finalised by it (often none)."""
        self._track(frame, len(self))
        if len(self) - self.finalized >= self.lag + self.chunk:
            return self._finalize(len(self) - self.lag)
        return range(self.finalized, self.finalized)

    def finish(self) -> range:
        """No more frames: finalise the rest."""
        self._finished = True
        return self._finalize(len(self))

    def track(self, *, fps: float = 0.0, source: str = "video") -> FaceTrack:
        """The whole :class:`FaceTrack`, after :meth:`finish`.

        Raises
        ------
        NoFaceFoundError
            No frame has a face.
        """
        if DETECTED not in self._raw_status:
            raise NoFaceFoundError(f"no face found in {source}")
        return FaceTrack(np.array(self.status, dtype=object), np.stack(self.boxes),
                         np.stack(self.landmarks), np.stack(self._raw_points), fps, source,
                         np.array(self._n_faces, dtype=np.int32))

    def _track(self, frame: np.ndarray, index: int) -> None:
        box, detector, predictor = self._box, self._detector, self._predictor
        if box is None or index % self.detect_every == 0:
            faces = detector.detect_faces(frame)
            self._n_faces.append(len(faces))
            found = pick_face(faces, box, self.min_overlap, self._chooser)
            if found is None:
                self._box, self._previous = None, None
                self._append(MISSING, _NAN_BOX, _NAN_POINTS)
                return
            box = found.box
            current = found.landmarks if found.landmarks is not None else predictor(frame, box)
            status = DETECTED
        else:
            current = predictor(frame, box)
            status = TRACKED
            self._n_faces.append(-1)
        if self._previous is not None and status == TRACKED:
            # Follow the face: move the box with the landmarks' mean motion, then re-predict.
            dx, dy = current.mean(axis=0) - self._previous.mean(axis=0)
            box = box.shifted(float(dx), float(dy))
            if self.refine:
                current = predictor(frame, box)
        self._box, self._previous = box, current
        self._append(status, box.as_array(), current.astype(np.float32))

    def _append(self, status: str, box: np.ndarray, points: np.ndarray) -> None:
        self._raw_status.append(status)
        self._raw_boxes.append(box)
        self._raw_points.append(points)

    def _finalize(self, stop: int) -> range:
        """Smooth and gap-fill frames ``finalized .. stop - 1`` from a slice of raw frames
        reaching far enough back that no run or gap they depend on is cut by its start."""
        first_new = self.finalized
        if stop <= first_new:
            return range(first_new, first_new)
        start = max(0, first_new - self.lag - 1)
        status = np.array(self._raw_status[start:], dtype=object)
        # A gap is filled only between two faces: not at the video's start (nor at the
        # slice's, whose gap began earlier and is too long to reach the new frames), not
        # at the end (or still open).
        short_gaps = [(a, b) for a, b in _runs(status == MISSING)
                      if a > 0 and b < len(status) - 1 and b - a + 1 <= self.max_gap]
        boxes = _fill_gaps(_smooth(np.stack(self._raw_boxes[start:]), status,
                                   self.smooth_window), short_gaps)
        points = _fill_gaps(_smooth(np.stack(self._raw_points[start:]), status,
                                    self.smooth_window), short_gaps)
        for a, b in short_gaps:
            status[a:b + 1] = INTERPOLATED
        rows = slice(first_new - start, stop - start)
        self.status.extend(status[rows].tolist())
        self.boxes.extend(boxes[rows])
        self.landmarks.extend(points[rows])
        return range(first_new, stop)


_NAN_BOX = np.full(4, np.nan, np.float32)
_NAN_POINTS = np.full((NUM_LANDMARKS, 2), np.nan, np.float32)


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
