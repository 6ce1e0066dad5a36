"""Dynamic images: a clip summarised in one image by approximate rank pooling.

Bilen et al. (CVPR 2016) show that the parameters of a ranker fitted to the order of a clip's
frames can be approximated by a fixed weighted sum of the frames, ``DI = sum_t a_t x_t`` with

    a_t = 2(T - t + 1) - (T + 1)(H_T - H_{t-1})  =  sum_{i=t..T} (2i - T - 1) / i

(1-based ``t``, ``H_t`` the harmonic numbers, ``H_0 = 0``). The coefficients sum to zero, so
static appearance cancels and only change over time remains; later frames get positive weight,
so a region that brightens over the clip is positive in the DI. See ``docs/methods.md`` §1.

Pixel values are used as given (uint8 frames are not rescaled to 0..1), so a uint8 clip and the
same clip as float give the same DI. Use :func:`standardize` before a network and
:func:`to_display` to look at one.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from typing import Any

import numpy as np

#: Elements of float32 converted at a time when pooling an integer clip on the CPU (~1 MiB):
#: a block that stays in cache is cast and reduced at once, so the clip is never copied whole.
_CPU_BLOCK_ELEMS = 1 << 18
#: The same on a GPU, where a large block amortises kernel launches (~256 MiB of float32).
_GPU_BLOCK_ELEMS = 1 << 26

__all__ = ["dynamic_image", "rank_pool_coefficients", "standardize", "to_display"]


def rank_pool_coefficients(T: int) -> np.ndarray:
    """Approximate rank pooling weights ``a_1..a_T`` for a clip of ``T`` frames.

    Parameters
    ----------
    T : int
        Number of frames, at least 2.

    Returns
    -------
    numpy.ndarray
        Shape ``(T,)``, float64; sums to 0. ``T = 2`` gives ``(-0.5, 0.5)``.

    Raises
    ------
    ValueError
        ``T < 2``: one frame has no temporal order to pool.
    """
    return _coefficients(_check_length(T)).copy()


def _check_length(T: Any) -> int:
    if int(T) != T or T < 2:
        raise ValueError(f"a dynamic image needs at least 2 frames along the time axis, got T={T}")
    return int(T)


@lru_cache(maxsize=256)
def _coefficients(T: int) -> np.ndarray:
    # Closed form: O(T) instead of the O(T^2) double sum, identical up to rounding.
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, T + 1))])  # H_0..H_T
    t = np.arange(1, T + 1)
    a = 2.0 * (T - t + 1) - (T + 1) * (harmonic[T] - harmonic[t - 1])
    a.flags.writeable = False  # shared by every caller through the cache
    return a


def _torch_module(x: Any):
    """``torch`` when ``x`` is a tensor, else None (never imports torch itself: keeps it light)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and isinstance(x, torch.Tensor) else None


def dynamic_image(frames: Any) -> Any:
    """The dynamic image of a clip (or of a batch of clips).

    Parameters
    ----------
    frames : numpy.ndarray or torch.Tensor
        uint8 (or any integer / float) frames in temporal order, in one of the layouts
        ``(T, H, W)`` (grayscale), ``(T, H, W, C)`` (channels last, as OpenCV reads them) or
        ``(B, T, C, H, W)`` (a batch of channels-first clips).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, the input without its time axis: ``(H, W)``, ``(H, W, C)`` or ``(B, C, H, W)``.
        A NumPy input gives a NumPy array; a tensor gives a tensor on the same device (float
        tensors keep their autograd graph).

    Raises
    ------
    ValueError
        Fewer than 2 frames, or an unsupported number of dimensions.
    """
    ndim = frames.ndim
    if ndim not in (3, 4, 5):
        raise ValueError(f"frames must be (T, H, W), (T, H, W, C) or (B, T, C, H, W); "
                         f"got shape {tuple(frames.shape)}")
    batched = ndim == 5
    B, T = (frames.shape[0], frames.shape[1]) if batched else (1, frames.shape[0])
    if T < 2:
        raise ValueError(f"a dynamic image needs at least 2 frames along the time axis, got T={T} "
                         f"(frames of shape {tuple(frames.shape)})")
    out_shape = tuple(frames.shape[2:] if batched else frames.shape[1:])
    # One view (B, T, N): the pooling is then a single (T,) @ (T, N) product per clip.
    flat = frames.reshape(B, T, -1)
    torch = _torch_module(frames)
    pooled = (_pool_torch(torch, flat, _coefficients(T)) if torch is not None
              else _pool_numpy(np.asarray(flat), _coefficients(T)))
    return pooled.reshape((B, *out_shape) if batched else out_shape)


def _pool_numpy(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``(B, T, N) -> (B, N)`` float32 weighted sum over T."""
    if x.dtype == np.float64:
        return np.matmul(a, x).astype(np.float32)
    a32 = a.astype(np.float32)
    if x.dtype == np.float32:
        return np.matmul(a32, x)
    # Integer (or half) frames: cast and reduce one cache-sized block of columns at a time
    # instead of building a float32 copy of the whole clip (4x its size) first.
    B, T, N = x.shape
    out = np.empty((B, N), np.float32)
    step = max(1, _CPU_BLOCK_ELEMS // T)
    for b in range(B):
        for j in range(0, N, step):
            out[b, j:j + step] = a32 @ x[b, :, j:j + step].astype(np.float32)
    return out


def _pool_torch(torch, x, a: np.ndarray):
    """``(B, T, N) -> (B, N)`` float32 weighted sum over T, on ``x``'s device."""
    if x.dtype == torch.float64:
        return torch.matmul(torch.tensor(a, device=x.device), x).float()
    a32 = torch.tensor(a, dtype=torch.float32, device=x.device)  # copies the read-only cache
    if x.is_floating_point():
        # Differentiable path: a plain matmul keeps any autograd graph of ``x``.
        return torch.matmul(a32, x.float())
    if x.device.type == "cpu":
        # Integer tensors carry no gradient: NumPy's blocked path is the fastest on the CPU (and
        # avoids torch's thread pool, which oversubscribes busy cores on a tiny per-block job).
        return torch.from_numpy(_pool_numpy(x.numpy(), a))
    B, T, N = x.shape
    out = torch.empty((B, N), dtype=torch.float32, device=x.device)
    step = max(1, _GPU_BLOCK_ELEMS // (T * B))
    for j in range(0, N, step):
        out[:, j:j + step] = torch.matmul(a32, x[:, :, j:j + step].float())
    return out


def _per_image_axes(x: Any) -> tuple[int, ...]:
    # 2-D and 3-D arrays are one image ((H, W) or (H, W, C)); 4-D is a stack along axis 0
    # ((K, H, W, C) or (B, C, H, W)), each image normalised on its own.
    if x.ndim in (2, 3):
        return tuple(range(x.ndim))
    if x.ndim == 4:
        return (1, 2, 3)
    raise ValueError(f"expected one image (H, W[, C]) or a stack of them (N, ..., ...) with 4 "
                     f"dimensions; got shape {tuple(x.shape)}")


def to_display(di: Any) -> Any:
    """Stretch each dynamic image linearly to 0..255 for viewing.

    Parameters
    ----------
    di : numpy.ndarray or torch.Tensor
        One image ``(H, W)`` / ``(H, W, C)`` or a stack ``(N, H, W, C)`` / ``(N, C, H, W)``; each
        image of a stack is stretched over its own minimum..maximum (all channels together).

    Returns
    -------
    numpy.ndarray or torch.Tensor
        uint8, same shape (and kind / device). A constant image becomes all zeros.
    """
    axes = _per_image_axes(di)
    torch = _torch_module(di)
    if torch is not None:
        x = di.detach().float()
        lo, hi = x.amin(dim=axes, keepdim=True), x.amax(dim=axes, keepdim=True)
        span = hi - lo
        scaled = torch.where(span > 0, (x - lo) * 255.0 / torch.where(span > 0, span, 1.0), 0.0)
        return scaled.round().clamp(0, 255).to(torch.uint8)
    x = np.asarray(di, dtype=np.float32)
    lo, hi = x.min(axis=axes, keepdims=True), x.max(axis=axes, keepdims=True)
    span = hi - lo
    # Dividing by a safe span, then zeroing, avoids 0/0 warnings on constant images.
    scaled = np.where(span > 0, (x - lo) * 255.0 / np.where(span > 0, span, 1.0), 0.0)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def standardize(di: Any, eps: float = 1e-6) -> Any:
    """Per-image zero mean and unit standard deviation: the network's input.

    Parameters
    ----------
    di : numpy.ndarray or torch.Tensor
        One image or a stack of images, as in :func:`to_display`.
    eps : float
        Added to the standard deviation, so a constant image becomes zeros instead of NaN.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, same shape (and kind / device); differentiable for tensors.
    """
    axes = _per_image_axes(di)
    if _torch_module(di) is not None:
        x = di.float()
        mean = x.mean(dim=axes, keepdim=True)
        std = x.std(dim=axes, keepdim=True, unbiased=False)
        return (x - mean) / (std + eps)
    x = np.asarray(di, dtype=np.float32)
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return ((x - mean) / (std + eps)).astype(np.float32)
