"""Which frames of a clip to feed a video model: pure index functions over a clip of ``n`` frames.

Every function returns ``num`` frame indices (int64, shape ``(num,)``) in temporal order
(non-decreasing), each in ``0..n-1``. A clip shorter than ``num`` frames (DFEW has some of 12)
is padded by repeating frames, never refused; ``n < 1`` or ``num < 1`` is a ``ValueError``.

===========================  ======================================================
:func:`uniform_indices`      evaluation: the centre of each of ``num`` equal segments
:func:`random_sorted_indices`  training: ``num`` distinct frames drawn at random, sorted
:func:`tsn_indices`          TSN: one frame per equal segment, random within it or its centre
:func:`tim_indices`          TIM, nearest frame; :func:`time_interpolate` blends frames linearly
===========================  ======================================================
"""

from __future__ import annotations

import numpy as np

#: Names :func:`sample_indices` accepts.
SAMPLING_MODES: tuple[str, ...] = ("uniform", "random", "tsn", "tim")


def _check(n: int, num: int) -> None:
    if int(n) < 1:
        raise ValueError(f"a clip needs at least 1 frame to sample from, got n={n}")
    if int(num) < 1:
        raise ValueError(f"num_frames must be at least 1, got {num}")


def uniform_indices(n: int, num: int = 16) -> np.ndarray:
    """The centre frame of each of ``num`` equal segments of the clip (deterministic).

    With ``n < num`` every frame appears, each repeated about ``num / n`` times.
    """
    _check(n, num)
    return np.floor((np.arange(num) + 0.5) * (n / num)).astype(np.int64)


def random_sorted_indices(n: int, num: int = 16, rng: np.random.Generator | None = None
                          ) -> np.ndarray:
    """``num`` distinct frames drawn uniformly at random, in temporal order (training).

    With ``n < num`` every frame is kept and ``num - n`` random ones are repeated.

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        Source of randomness; a fresh unseeded one when omitted.
    """
    _check(n, num)
    rng = np.random.default_rng() if rng is None else rng
    if n >= num:
        chosen = rng.choice(n, size=num, replace=False)
    else:
        extra = rng.choice(n, size=num - n, replace=num - n > n)
        chosen = np.concatenate([np.arange(n), extra])
    return np.sort(chosen).astype(np.int64)


def tsn_indices(n: int, num: int = 16, rng: np.random.Generator | None = None) -> np.ndarray:
    """One frame from each of ``num`` equal segments (temporal segment network sampling).

    Parameters
    ----------
    rng : numpy.random.Generator, optional
        When given, a random frame within each segment (training); otherwise each segment's
        centre (evaluation). Segments shorter than one frame (``n < num``) hold their first
        frame, so frames repeat.
    """
    _check(n, num)
    edges = np.arange(num + 1) * (n / num)
    starts = np.floor(edges[:-1]).astype(np.int64)
    stops = np.maximum(starts + 1, np.floor(edges[1:]).astype(np.int64))
    if rng is None:
        return (starts + stops - 1) // 2
    return rng.integers(starts, stops).astype(np.int64)


def tim_positions(n: int, num: int = 16) -> np.ndarray:
    """Fractional frame positions, float64 ``(num,)``, evenly spaced from the first frame to the
    last: where a temporal interpolation model (TIM) samples the clip."""
    _check(n, num)
    if num == 1:
        return np.array([(n - 1) / 2.0])
    return np.linspace(0.0, n - 1, num)


def tim_indices(n: int, num: int = 16) -> np.ndarray:
    """The frame nearest each of :func:`tim_positions` (first and last frames always kept)."""
    return np.floor(tim_positions(n, num) + 0.5).astype(np.int64)


def time_interpolate(frames: np.ndarray, num: int = 16) -> np.ndarray:
    """Resample a clip to ``num`` frames by linear interpolation in time (TIM).

    Parameters
    ----------
    frames : numpy.ndarray
        ``(T, ...)``, e.g. ``(T, H, W, C)``, any numeric dtype.
    num : int
        Frames wanted.

    Returns
    -------
    numpy.ndarray
        ``(num, ...)`` of the input dtype (integers rounded). Frame ``k`` blends the two input
        frames around :func:`tim_positions` ``[k]``.
    """
    frames = np.asarray(frames)
    if frames.ndim < 1:
        raise ValueError("frames must have a leading time axis, got a scalar")
    positions = tim_positions(frames.shape[0], num)
    before = np.floor(positions).astype(np.int64)
    after = np.minimum(before + 1, frames.shape[0] - 1)
    weight = (positions - before).reshape((num,) + (1,) * (frames.ndim - 1))
    blended = frames[before] * (1.0 - weight) + frames[after] * weight
    if np.issubdtype(frames.dtype, np.integer):
        info = np.iinfo(frames.dtype)
        blended = np.clip(np.rint(blended), info.min, info.max)
    return blended.astype(frames.dtype)


def sample_indices(n: int, num: int = 16, mode: str = "uniform",
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """Dispatch on ``mode``, one of :data:`SAMPLING_MODES` (``rng`` used by random and tsn)."""
    if mode == "uniform":
        return uniform_indices(n, num)
    if mode == "random":
        return random_sorted_indices(n, num, rng)
    if mode == "tsn":
        return tsn_indices(n, num, rng)
    if mode == "tim":
        return tim_indices(n, num)
    raise ValueError(f"unknown sampling mode {mode!r}; valid modes: {', '.join(SAMPLING_MODES)}")
