from __future__ import annotations

import numpy as np
import pytest

from fervid.representation.temporal_sampling import (
    SAMPLING_MODES,
    random_sorted_indices,
    sample_indices,
    tim_indices,
    tim_positions,
    time_interpolate,
    tsn_indices,
    uniform_indices,
)

LENGTHS = (1, 5, 12, 15, 16, 17, 77, 847)


def _sample(mode: str, n: int, num: int, seed: int | None = 0) -> np.ndarray:
    rng = None if seed is None else np.random.default_rng(seed)
    return sample_indices(n, num, mode, rng)


@pytest.mark.parametrize("mode", SAMPLING_MODES)
@pytest.mark.parametrize("n", LENGTHS)
def test_length_range_and_order(mode, n):
    for num in (1, 8, 16):
        indices = _sample(mode, n, num)
        assert indices.shape == (num,) and indices.dtype == np.int64
        assert indices.min() >= 0 and indices.max() < n
        assert np.all(np.diff(indices) >= 0)


@pytest.mark.parametrize("mode", SAMPLING_MODES)
@pytest.mark.parametrize("n", (12, 14, 15))
def test_short_clip_pads_by_repetition_and_uses_every_frame(mode, n):
    indices = _sample(mode, n, 16)
    assert len(indices) == 16
    assert set(indices.tolist()) == set(range(n))


@pytest.mark.parametrize("mode", SAMPLING_MODES)
def test_long_clip_frames_distinct(mode):
    for n in (16, 40, 300):
        assert len(set(_sample(mode, n, 16).tolist())) == 16


def test_uniform_is_segment_centres():
    assert uniform_indices(32, 4).tolist() == [4, 12, 20, 28]
    assert uniform_indices(16, 16).tolist() == list(range(16))
    assert uniform_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]


def test_tsn_one_frame_per_segment():
    assert tsn_indices(40, 4).tolist() == [4, 14, 24, 34]
    rng = np.random.default_rng(1)
    for _ in range(20):
        drawn = tsn_indices(40, 4, rng)
        assert np.all(drawn // 10 == np.arange(4))


def test_seeded_rng_is_deterministic_and_varies():
    for mode in ("random", "tsn"):
        a = _sample(mode, 100, 16, seed=7)
        assert np.array_equal(a, _sample(mode, 100, 16, seed=7))
        assert not np.array_equal(a, _sample(mode, 100, 16, seed=8))
    draws = {tuple(random_sorted_indices(100, 16, np.random.default_rng(s))) for s in range(5)}
    assert len(draws) == 5


def test_tim_keeps_first_and_last():
    assert tim_indices(77, 16)[[0, -1]].tolist() == [0, 76]
    assert np.allclose(tim_positions(5, 9), np.arange(9) / 2)


def test_time_interpolate_blends_linearly():
    ramp = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 2, 3), np.float32)
    out = time_interpolate(ramp, 9)
    assert out.shape == (9, 2, 3) and out.dtype == np.float32
    assert np.allclose(out[:, 0, 0], np.arange(9) / 2)
    frames = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 100, 255)])
    stretched = time_interpolate(frames, 5)
    assert stretched.dtype == np.uint8
    assert stretched[:, 0, 0, 0].tolist() == [0, 50, 100, 178, 255]
    assert np.array_equal(time_interpolate(frames[:1], 4), np.repeat(frames[:1], 4, axis=0))


def test_invalid_arguments():
    for fn in (uniform_indices, random_sorted_indices, tsn_indices, tim_indices):
        with pytest.raises(ValueError, match="at least 1 frame"):
            fn(0, 16)
        with pytest.raises(ValueError, match="num_frames"):
            fn(10, 0)
    with pytest.raises(ValueError, match="unknown sampling mode"):
        sample_indices(10, 4, "dense")
    with pytest.raises(ValueError, match="at least 1 frame"):
        time_interpolate(np.zeros((0, 2, 2)), 4)
