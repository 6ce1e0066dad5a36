"""Sliding windows over a video's aligned face crops, and the model input of each window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fervid.errors import OptionError
from fervid.representation.input_spec import InputSpec, build_input


@dataclass(frozen=True)
class Window:
    """Frames ``start..end - 1`` of a video (``end`` exclusive) and their times in seconds."""

    start: int
    end: int
    fps: float

    @property
    def start_s(self) -> float:
        return self.start / self.fps

    @property
    def end_s(self) -> float:
        return self.end / self.fps

    def __len__(self) -> int:
        return self.end - self.start


def sliding_windows(n_frames: int, fps: float, window_s: float, stride_s: float) -> list[Window]:
    """Windows of ``window_s`` seconds every ``stride_s`` seconds (at least 2 frames and a
    stride of at least 1 frame); a video shorter than one window gives one window over all of it.

    Raises
    ------
    OptionError
        Non-positive durations.
    ValueError
        A non-positive frame rate or fewer than 2 frames (the pipeline checks the video for
        both first).
    """
    if window_s <= 0 or stride_s <= 0:
        raise OptionError(f"window and stride must be positive, got {window_s} s and "
                          f"{stride_s} s")
    if fps <= 0:
        raise ValueError("the video's frame rate is unknown, so windows in seconds cannot be cut")
    if n_frames < 2:
        raise ValueError(f"a window needs at least 2 frames, the video has {n_frames}")
    length = min(max(2, round(window_s * fps)), n_frames)
    stride = max(1, round(stride_s * fps))
    return [Window(s, s + length, fps) for s in range(0, n_frames - length + 1, stride)]


def window_input(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """The model input of one window's aligned crops.

    Parameters
    ----------
    crops
        ``(T, S, S, C)`` uint8 crops of the window, in the checkpoint's pixel mode and size.
    spec
        The checkpoint's :class:`~fervid.representation.input_spec.InputSpec`. The window is
        the clip: onset its first frame, offset its last, apex its middle (unknown in raw
        video).

    Returns
    -------
    numpy.ndarray
        float32, ``spec.example_shape()``: built by
        :func:`~fervid.representation.input_spec.build_input`, as training builds its inputs.
    """
    return build_input(spec, crops).numpy()


def window_means(frame_probs: np.ndarray, present: np.ndarray, windows: list[Window],
                 min_face_fraction: float) -> tuple[list[Window], np.ndarray, list[Window]]:
    """Smooth per-frame probabilities over windows: each window's mean over its frames with a
    face.

    Parameters
    ----------
    frame_probs
        ``(T, K)`` per-frame class probabilities (rows of frames without a face are ignored).
    present
        ``(T,) bool``: frames with a face.
    windows
        Windows over the ``T`` frames (:func:`sliding_windows`).
    min_face_fraction
        A window is kept only if at least this fraction of its frames (and at least one) has a
        face; the others are skipped.

    Returns
    -------
    tuple
        The kept windows, their probabilities ``(W, K)`` float64 and the skipped windows.

    Raises
    ------
    OptionError
        ``min_face_fraction`` outside (0, 1].
    """
    if not 0 < min_face_fraction <= 1:
        raise OptionError(f"min_face_fraction must be in (0, 1], got {min_face_fraction}")
    kept, skipped, means = [], [], []
    for w in windows:
        faces = np.flatnonzero(present[w.start:w.end]) + w.start
        if len(faces) and len(faces) >= min_face_fraction * len(w):
            kept.append(w)
            means.append(frame_probs[faces].astype(np.float64).mean(axis=0))
        else:
            skipped.append(w)
    probs = np.stack(means) if means else np.zeros((0, frame_probs.shape[1]))
    return kept, probs, skipped
