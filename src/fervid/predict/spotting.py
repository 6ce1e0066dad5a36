"""A training-free spotter: where in a long video the face moves like a micro- or a
macro-expression, in the spirit of MDMD (main directional maximal difference) and its
successors.

One streaming pass (bounded memory: the tracker's few frames, the last ``k_macro + 1`` face
crops and a few floats a frame):

1. the face is tracked with its 68 landmarks (:class:`fervid.faces.FaceTracker`) and each
   frame's face cut to a ``crop`` × ``crop`` grey square around the landmarks, so a head
   that moves moves the crop with it;
2. dense optical flow (OpenCV's Farnebäck) from the crop ``k`` frames back to this one, for
   ``k = k_micro`` and ``k = k_macro``; its mean vector in small regions around landmarks
   where expressions act (brows, nose wings, mouth corners, lips), minus the mean vector
   around the nose ridge, which moves with the head but hardly with expressions. The eyes are
   left out, so blinks do not count;
3. after the pass, for each frame ``t``, the region's displacement against the mean of the
   frames ``k`` before and after, ``|G(t) − G(t + k)| / 2`` with ``G(t)`` the flow from
   ``t − k`` to ``t``: large at the apex of a movement that comes and goes within about
   ``2k`` frames, small for slow drifts. The largest region value, smoothed, is the signal;
4. peaks above ``median + z · σ`` (σ from the median absolute deviation) of the signal, each
   with the interval where the signal stays above half its
   height, widened by half that width on each side (a raised-cosine movement is above half
   its height for about half its length); peaks ``2k`` apart, since a movement's side lobes
   lie ``k`` from its apex. Micro: peaks of the ``k_micro`` signal no longer
   than ``max_micro_seconds``; macro: peaks of the ``k_macro`` signal that are longer. A
   micro interval inside a macro one is dropped.

Every setting is a field of :class:`SpotSettings`; the defaults were chosen on SynthME long
videos of seeds apart from those the documented figures use.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from fervid.faces import FaceTracker
from fervid.faces.tracking import PRESENT
from fervid.metrics.spotting import SpottedInterval
from fervid.predict.sources import Source, open_frames

#: Landmarks (0-based, dlib's 68) whose neighbourhoods carry expressions: outer and inner
#: brows, nose wings, mouth corners, upper and lower lip.
REGION_POINTS = (17, 21, 22, 26, 31, 35, 48, 54, 51, 57)
#: The nose ridge: the reference region, moving with the head.
REFERENCE_POINTS = (27, 28, 29)


@dataclass(frozen=True)
class SpotSettings:
    """The spotter's settings (seconds are turned into frames at the video's rate)."""

    micro_k_seconds: float = 0.2
    macro_k_seconds: float = 1.3
    max_micro_seconds: float = 0.5
    z_micro: float = 6.0
    z_macro: float = 6.0
    crop: int = 128
    region: float = 0.08
    detect_every: int = 5

    def frames(self, seconds: float, fps: float) -> int:
        return max(1, int(round(seconds * fps)))


@dataclass
class SpotResult:
    """What :func:`spot_frames` found: the intervals (frame numbers from 1), the two signals
    ``(T,)`` with their thresholds, frames with a face, and the time taken."""

    intervals: list[SpottedInterval]
    fps: float
    signals: dict[str, np.ndarray]
    thresholds: dict[str, float]
    face: np.ndarray
    settings: SpotSettings
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.face)


class _Motion:
    """Per-frame region flows ``G_k(t)``, from the crops of the last ``k_macro`` frames."""

    def __init__(self, ks: tuple[int, ...], crop: int, region: float) -> None:
        self.ks, self.crop = ks, crop
        self.half = max(2, int(round(region * crop)))
        self.crops: deque = deque(maxlen=max(ks) + 1)
        self.flows: dict[int, list[np.ndarray]] = {k: [] for k in ks}
        self.face: list[bool] = []

    def push(self, crop: np.ndarray | None, points: np.ndarray | None) -> None:
        self.crops.append(None if crop is None else (crop, points))
        self.face.append(crop is not None)
        n_regions = len(REGION_POINTS) + 1
        for k in self.ks:
            value = np.full((n_regions, 2), np.nan, np.float32)
            if crop is not None and len(self.crops) > k and self.crops[-1 - k] is not None:
                before, at = self.crops[-1 - k]
                flow = cv2.calcOpticalFlowFarneback(before, crop, None, 0.5, 3, 15, 3, 5, 1.2, 0)
                value = self._regions(flow, at)
            self.flows[k].append(value)

    def _regions(self, flow: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Mean flow ``(R + 1, 2)`` in squares around the regions' landmarks (last: the
        reference, the nose ridge)."""
        centres = [points[i] for i in REGION_POINTS] + [points[list(REFERENCE_POINTS)].mean(0)]
        out = np.empty((len(centres), 2), np.float32)
        for r, (x, y) in enumerate(centres):
            x0, y0 = int(np.clip(x - self.half, 0, self.crop - 1)), int(
                np.clip(y - self.half, 0, self.crop - 1))
            patch = flow[y0:y0 + 2 * self.half + 1, x0:x0 + 2 * self.half + 1]
            out[r] = patch.reshape(-1, 2).mean(0)
        return out


def _face_crop(gray: np.ndarray, points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The face's square around its landmarks (1.3 × their extent), ``size`` px, and the
    landmarks in crop pixels."""
    lo, hi = points.min(0), points.max(0)
    centre, side = (lo + hi) / 2, 1.3 * float((hi - lo).max())
    scale = size / max(side, 1.0)
    matrix = np.array([[scale, 0, size / 2 - scale * centre[0]],
                       [0, scale, size / 2 - scale * centre[1]]], np.float32)
    crop = cv2.warpAffine(gray, matrix, (size, size), flags=cv2.INTER_AREA,
                          borderMode=cv2.BORDER_REPLICATE)
    return crop, points * scale + matrix[:, 2]


def _signal(flows: np.ndarray, k: int) -> np.ndarray:
    """``(T,)``: the largest region displacement against the frames ``k`` before and after."""
    n = len(flows)
    out = np.zeros(n, np.float32)
    if n > k:
        relative = flows[:, :-1] - flows[:, -1:]                      # (T, R, 2)
        diff = relative[:n - k] - relative[k:]                        # G(t) - G(t + k)
        value = np.linalg.norm(diff, axis=2).max(axis=1) / 2
        out[:n - k] = np.nan_to_num(value, nan=0.0)
    return uniform_filter1d(out, size=max(1, k // 2) | 1, mode="nearest")


def _peaks(signal: np.ndarray, z: float, distance: int) -> tuple[list[tuple], float]:
    """``(onset, apex, offset, score)`` from 0, and the threshold."""
    median = float(np.median(signal))
    sigma = 1.4826 * float(np.median(np.abs(signal - median))) or 1e-6
    threshold = median + z * sigma
    found = []
    peaks, _ = find_peaks(signal, height=threshold, distance=max(1, distance))
    for p in peaks:
        half = median + (signal[p] - median) / 2
        left, right = int(p), int(p)
        while left > 0 and signal[left - 1] > half:
            left -= 1
        while right < len(signal) - 1 and signal[right + 1] > half:
            right += 1
        widen = (right - left + 1) // 2
        found.append((max(0, left - widen), int(p), min(len(signal) - 1, right + widen),
                      float(signal[p] / threshold)))
    return found, threshold


def find_intervals(signals: dict[str, np.ndarray], fps: float,
                   settings: SpotSettings) -> tuple[list[SpottedInterval], dict[str, float]]:
    """Micro and macro intervals (frame numbers from 1) from the two signals."""
    k_micro = settings.frames(settings.micro_k_seconds, fps)
    k_macro = settings.frames(settings.macro_k_seconds, fps)
    longest = settings.max_micro_seconds * fps
    # Peaks 2k apart: a movement's side lobes (at apex ± k, where G(t + k) holds its rise
    # or G(t) its fall) are not movements of their own.
    micro, t_micro = _peaks(signals["micro"], settings.z_micro, 2 * k_micro)
    macro, t_macro = _peaks(signals["macro"], settings.z_macro, 2 * k_macro)
    macro = [m for m in macro if m[2] - m[0] + 1 > longest]
    micro = [m for m in micro if m[2] - m[0] + 1 <= longest
             and not any(a[0] <= m[1] <= a[2] for a in macro)]
    intervals = [SpottedInterval(on + 1, off + 1, kind, apex + 1, score)
                 for kind, found in (("micro", micro), ("macro", macro))
                 for on, apex, off, score in found]
    return sorted(intervals, key=lambda s: s.onset), {"micro": t_micro, "macro": t_macro}


def spot_frames(source: Source, *, fps: float | None = None,
                settings: SpotSettings = SpotSettings(), tracker: FaceTracker | None = None,
                ) -> SpotResult:
    """Spot the expressions of a video file, a folder of numbered frames or an array.

    Parameters
    ----------
    source : path or array
        What :func:`fervid.predict.sources.open_frames` opens.
    fps : float, optional
        The frame rate of a folder or an array (a video file knows its own).
    settings : SpotSettings
    tracker : FaceTracker, optional
        Default: dlib's detector every ``settings.detect_every`` frames, landmarks fitted
        once a frame.

    Raises
    ------
    NoFaceFoundError
        No frame has a face.
    """
    start = time.perf_counter()
    frames = open_frames(source, fps)
    tracker = (tracker if tracker is not None
               else FaceTracker(detect_every=settings.detect_every, refine=False))
    ks = (settings.frames(settings.micro_k_seconds, frames.fps),
          settings.frames(settings.macro_k_seconds, frames.fps))
    motion = _Motion(ks, settings.crop, settings.region)
    ready = time.perf_counter()
    for crop, points in face_crops(frames, tracker, settings.crop):
        motion.push(crop, points)
    signals = {kind: _signal(np.stack(motion.flows[k]), k)
               for kind, k in zip(("micro", "macro"), ks, strict=True)}
    intervals, thresholds = find_intervals(signals, frames.fps, settings)
    end = time.perf_counter()
    return SpotResult(intervals, frames.fps, signals, thresholds, np.array(motion.face),
                      settings, {"start_up": ready - start, "total": end - start})


def face_crops(frames, tracker: FaceTracker, crop: int
               ) -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
    """Each frame's face crop (``crop`` × ``crop`` grey, uint8) and its 68 landmarks in crop
    pixels ``(68, 2)``, in frame order; ``(None, None)`` for a frame without a face. Streams:
    only the tracker's few frames are held.

    Raises
    ------
    NoFaceFoundError
        Once the frames are spent, when no frame had a face.
    """
    held: deque[np.ndarray] = deque()

    def hand_on(finalised: range):
        for index in finalised:
            gray = held.popleft()
            if tracker.status[index] in PRESENT:
                yield _face_crop(gray, tracker.landmarks[index], crop)
            else:
                yield None, None

    for frame in frames.decoded():
        gray = frame.to_array("gray")
        held.append(gray)
        yield from hand_on(tracker.push(gray))
    yield from hand_on(tracker.finish())
    tracker.track(fps=frames.fps, source=str(frames.path))  # raises when no face was found


def settings_dict(settings: SpotSettings) -> dict:
    return asdict(settings)


__all__ = ["SpotResult", "SpotSettings", "face_crops", "find_intervals", "settings_dict",
           "spot_frames"]
