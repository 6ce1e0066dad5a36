"""Approximate rank pooling: coefficients checked against the paper, pooling on every layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fervid
from fervid.representation.dynamic_image import (
    dynamic_image,
    rank_pool_coefficients,
    standardize,
    to_display,
)


def sum_form(T: int) -> np.ndarray:
    """The authors' MATLAB form ``a_t = sum_{i=t..T} (2i - T - 1) / i``, written out plainly."""
    return np.array([sum((2 * i - T - 1) / i for i in range(t, T + 1)) for t in range(1, T + 1)])


def wrong_port(T: int) -> np.ndarray:
    """The widely copied Python port, ``(2i - T) / i``: what we must not compute."""
    return np.array([sum((2 * i - T) / i for i in range(t, T + 1)) for t in range(1, T + 1)])


def clip(T=6, H=5, W=4, C=3, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, C), dtype=np.uint8)


# --- coefficients -----------------------------------------------------------------------------

@pytest.mark.parametrize("T", range(2, 51))
def test_coefficients_sum_to_zero_and_match_the_sum_form(T):
    a = rank_pool_coefficients(T)
    assert a.dtype == np.float64 and a.shape == (T,)
    assert abs(a.sum()) < 1e-9 * T
    np.testing.assert_allclose(a, sum_form(T), atol=1e-10)


def test_coefficients_known_values():
    np.testing.assert_allclose(rank_pool_coefficients(2), [-0.5, 0.5])
    np.testing.assert_array_equal(np.round(rank_pool_coefficients(5), 1),
                                  [-3.7, 0.3, 1.3, 1.3, 0.8])


def test_coefficients_are_not_the_wrong_port():
    # The port's weights sum to T, so it keeps static appearance: ours must differ from it.
    for T in (2, 5, 16):
        wrong = wrong_port(T)
        assert wrong.sum() == pytest.approx(T)
        assert not np.allclose(rank_pool_coefficients(T), wrong)


def test_coefficients_reject_one_frame_and_are_not_shared_mutable():
    with pytest.raises(ValueError, match="at least 2 frames"):
        rank_pool_coefficients(1)
    a = rank_pool_coefficients(4)
    a[:] = 0  # a caller's copy: the cached weights must stay intact
    assert rank_pool_coefficients(4)[0] != 0


# --- dynamic_image ----------------------------------------------------------------------------

def reference_di(frames: np.ndarray) -> np.ndarray:
    """float64 per-frame sum, the formula as written."""
    a = rank_pool_coefficients(len(frames))
    return sum(a[t] * frames[t].astype(np.float64) for t in range(len(frames)))


@pytest.mark.parametrize("shape", [(6, 5, 4, 3), (2, 7, 9), (3, 300, 301)])
def test_numpy_matches_formula_uint8_and_float(shape):
    # (3, 300, 301) has more pixels than one block, so the chunked uint8 path is covered.
    x = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    expected = reference_di(x)
    for frames in (x, x.astype(np.float32), x.astype(np.float64)):
        di = dynamic_image(frames)
        assert di.dtype == np.float32 and di.shape == shape[1:]
        np.testing.assert_allclose(di, expected, rtol=1e-5, atol=1e-3)


def test_torch_matches_numpy_and_keeps_device_and_autograd():
    x = clip()
    expected = dynamic_image(x)
    for frames in (torch.from_numpy(x), torch.from_numpy(x).double()):
        di = dynamic_image(frames)
        assert isinstance(di, torch.Tensor) and di.dtype == torch.float32
        assert di.device == frames.device
        np.testing.assert_allclose(di.numpy(), expected, rtol=1e-5, atol=1e-3)
    leaf = torch.from_numpy(x).float().requires_grad_()
    dynamic_image(leaf).sum().backward()
    # d(sum DI)/d(frame t) is a_t at every pixel.
    np.testing.assert_allclose(leaf.grad[:, 0, 0, 0].numpy(), rank_pool_coefficients(6),
                               rtol=1e-6)


def test_batched_channels_first_matches_channels_last():
    clips = np.stack([clip(seed=0), clip(seed=1)])                  # (B, T, H, W, C)
    batched = torch.from_numpy(clips).permute(0, 1, 4, 2, 3)        # (B, T, C, H, W), a view
    di = dynamic_image(batched)
    assert tuple(di.shape) == (2, 3, 5, 4)
    for b in range(2):
        np.testing.assert_allclose(di[b].permute(1, 2, 0).numpy(), dynamic_image(clips[b]),
                                   rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(dynamic_image(batched.numpy()), di.numpy(), rtol=1e-5, atol=1e-3)


def test_static_clip_gives_zero():
    frame = clip(T=1)[0]
    di = dynamic_image(np.repeat(frame[None], 9, axis=0))
    assert np.abs(di).max() < 1e-3


@pytest.mark.parametrize("T", [2, 5, 12])
def test_brightness_ramp_gives_its_slope_with_the_right_sign(T):
    # x_t = base + t * slope: since sum(a) = 0 the DI is slope * sum_t a_t t, with that factor > 0.
    rng = np.random.default_rng(T)
    base = rng.uniform(0, 50, (4, 3))
    slope = rng.uniform(-3, 3, (4, 3))
    frames = np.stack([base + t * slope for t in range(T)])
    factor = float(rank_pool_coefficients(T) @ np.arange(T))
    assert factor > 0
    di = dynamic_image(frames)
    np.testing.assert_allclose(di, factor * slope, rtol=1e-5, atol=1e-4)
    assert np.all(np.sign(di) == np.sign(slope))  # brightening -> positive
    ramp = np.stack([np.full((3, 3), 10 + 20 * t, np.uint8) for t in range(T)])
    assert np.all(dynamic_image(ramp) > 0) and np.all(dynamic_image(ramp[::-1]) < 0)


def test_one_frame_or_bad_rank_raises():
    with pytest.raises(ValueError, match="at least 2 frames"):
        dynamic_image(clip(T=1))
    with pytest.raises(ValueError, match="at least 2 frames"):
        dynamic_image(torch.zeros(2, 1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        dynamic_image(np.zeros((4, 4)))


def test_lazy_top_level_access():
    assert fervid.dynamic_image is dynamic_image
    np.testing.assert_array_equal(fervid.dynamic_image(clip()), dynamic_image(clip()))


# --- to_display / standardize -----------------------------------------------------------------

def test_to_display_stretches_each_image():
    stack = np.stack([np.linspace(-5, 3, 12).reshape(2, 2, 3),
                      np.linspace(100, 101, 12).reshape(2, 2, 3), np.full((2, 2, 3), 7.0)])
    shown = to_display(stack)
    assert shown.dtype == np.uint8 and shown.shape == stack.shape
    for image in shown[:2]:
        assert image.min() == 0 and image.max() == 255
    assert not shown[2].any()  # constant image -> zeros
    np.testing.assert_array_equal(to_display(torch.from_numpy(stack)).numpy(), shown)
    single = to_display(stack[0])
    assert single.min() == 0 and single.max() == 255


def test_standardize_per_image():
    stack = np.stack([np.arange(12.0).reshape(2, 2, 3) * 9 + 4, np.full((2, 2, 3), 3.0)])
    z = standardize(stack)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z[0].mean(), 0, atol=1e-6)
    np.testing.assert_allclose(z[0].std(), 1, atol=1e-4)
    assert np.all(np.isfinite(z)) and not z[1].any()
    np.testing.assert_allclose(standardize(torch.from_numpy(stack)).numpy(), z, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    x = torch.from_numpy(clip(T=8, H=64, W=48))
    expected = dynamic_image(x.numpy())
    for frames in (x.cuda(), x.cuda().float(), x.cuda().permute(0, 3, 1, 2)[None]):
        di = dynamic_image(frames)
        assert di.is_cuda and di.dtype == torch.float32
        got = di[0].permute(1, 2, 0) if di.ndim == 4 else di
        np.testing.assert_allclose(got.cpu().numpy(), expected, rtol=1e-4, atol=1e-2)
