"""Onset-to-apex optical flow and optical strain: the STSTNet input.

STSTNet (Liong et al., 2019) feeds a shallow CNN with three 28x28 maps computed between the onset
and the apex frame of a micro-expression: the horizontal flow ``u``, the vertical flow ``v`` (both
TV-L1) and the optical strain magnitude. :func:`ststnet_input` builds that image the way the
published MEGC2019 set (``megc2019_flow``) stores it, so that images written here and the shipped
ones are interchangeable.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.errors import FervidError, PathNotFoundError
from fervid.representation.frame_loading import FrameReadError

#: Default order of the maps in the array given to ``cv2.imwrite`` (and returned by
#: ``cv2.imread``). The shipped ``megc2019_flow`` PNGs hold, read with ``cv2.imread``, the strain
#: in channel 0, ``v`` in channel 1 and ``u`` in channel 2 (their authors built an RGB image
#: ``(u, v, strain)`` and it was stored as such, so OpenCV sees it in BGR order). We follow that
#: so that a network trained on one set accepts the other unchanged.
MEGC2019_CHANNELS: tuple[str, str, str] = ("strain", "v", "u")

_MAPS = frozenset({"u", "v", "strain"})


class FrameSizeError(FervidError, ValueError):
    """The onset and apex image files of a clip differ in size; the message names both."""


@dataclass(frozen=True)
class TVL1Params:
    """Parameters of OpenCV's Dual TV-L1 optical flow (``cv2.optflow``).

    The defaults are OpenCV's own, which is what the STSTNet and MEGC2019 pipelines used (they
    call the constructor without arguments). See ``cv2.optflow.DualTVL1OpticalFlow_create``.

    Attributes
    ----------
    tau : float
        Time step of the numerical scheme.
    lambda_ : float
        Weight of the data term; smaller values give smoother flow.
    theta : float
        Tightness of the coupling between the two sub-problems.
    nscales : int
        Number of pyramid scales.
    warps : int
        Warpings per scale.
    epsilon : float
        Stopping threshold.
    inner_iterations, outer_iterations : int
        Iterations of the inner and outer loops.
    scale_step : float
        Down-scaling factor between pyramid levels.
    gamma : float
        Weight of the illumination-change term (0 disables it).
    median_filtering : int
        Size of the median filter applied to the flow between warps.
    """

    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8
    gamma: float = 0.0
    median_filtering: int = 5

    def create(self) -> cv2.optflow.DualTVL1OpticalFlow:
        """A new OpenCV TV-L1 solver with these parameters."""
        p = asdict(self)
        return cv2.optflow.DualTVL1OpticalFlow_create(
            tau=p["tau"], lambda_=p["lambda_"], theta=p["theta"], nscales=p["nscales"],
            warps=p["warps"], epsilon=p["epsilon"], innnerIterations=p["inner_iterations"],
            outerIterations=p["outer_iterations"], scaleStep=p["scale_step"], gamma=p["gamma"],
            medianFiltering=p["median_filtering"], useInitialFlow=False)


def read_gray(path: Path | str) -> np.ndarray:
    """Read an image file as a 2-D uint8 grayscale array.

    Raises
    ------
    PathNotFoundError
        The file does not exist (a :class:`FileNotFoundError`).
    FrameReadError
        OpenCV cannot decode the file (the message names it).
    """
    path = Path(path)
    if not path.is_file():
        raise PathNotFoundError(f"frame not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None or image.size == 0:
        raise FrameReadError(path, "corrupt or unsupported format")
    return image


def _as_gray(frame: np.ndarray, name: str) -> np.ndarray:
    """A 2-D uint8 (0..255) or float32 (0..1) grayscale frame, as OpenCV's TV-L1 expects."""
    frame = np.asarray(frame)
    if frame.size == 0:
        raise ValueError(f"{name} frame is empty (shape {frame.shape})")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        # cv2.imread order: BGR(A).
        code = cv2.COLOR_BGR2GRAY if frame.shape[2] == 3 else cv2.COLOR_BGRA2GRAY
        frame = cv2.cvtColor(np.ascontiguousarray(frame), code)
    if frame.ndim != 2:
        raise ValueError(f"{name} frame must be grayscale (H, W) or colour (H, W, 3|4); "
                         f"got shape {frame.shape}")
    if frame.dtype == np.uint8:
        return np.ascontiguousarray(frame)
    if np.issubdtype(frame.dtype, np.floating):
        lo, hi = float(np.nanmin(frame)), float(np.nanmax(frame))
        # OpenCV scales float frames by 255, i.e. assumes 0..1; a 0..255 float frame would
        # silently give a flow of the wrong strength.
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
            raise ValueError(f"float {name} frame must lie in [0, 1]; got [{lo:g}, {hi:g}] "
                             "(pass uint8 0..255 or divide by 255)")
        return np.ascontiguousarray(frame, dtype=np.float32)
    raise ValueError(f"{name} frame must be uint8 or floating point; got {frame.dtype}")


def tvl1_flow(onset: np.ndarray, apex: np.ndarray,
              params: TVL1Params | None = None) -> np.ndarray:
    """Dense TV-L1 optical flow from ``onset`` to ``apex``.

    Parameters
    ----------
    onset, apex : numpy.ndarray
        Frames of the same height and width: grayscale ``(H, W)`` or colour ``(H, W, 3)`` in BGR
        order (as ``cv2.imread`` returns it). ``uint8`` frames are taken as 0..255, float frames
        as 0..1 (OpenCV's convention).
    params : TVL1Params, optional
        Solver parameters; OpenCV's defaults when omitted.

    Returns
    -------
    numpy.ndarray
        ``(H, W, 2)`` float32: ``[..., 0]`` = u (horizontal, + to the right), ``[..., 1]`` = v
        (vertical, + downwards), in pixels, such that ``onset(x, y) ~ apex(x + u, y + v)``.

    Raises
    ------
    ValueError
        Empty frames, frames of different sizes, or an unsupported dtype or value range.
    """
    a = _as_gray(onset, "onset")
    b = _as_gray(apex, "apex")
    if a.shape != b.shape:
        raise ValueError(f"onset and apex frames differ in size: {a.shape} vs {b.shape}")
    if a.dtype != b.dtype:
        # Both to OpenCV's float convention rather than refusing a mixed pair.
        a = a.astype(np.float32) / 255 if a.dtype == np.uint8 else a
        b = b.astype(np.float32) / 255 if b.dtype == np.uint8 else b
    flow = (params or TVL1Params()).create().calc(a, b, None)
    return np.asarray(flow, dtype=np.float32)


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Optical strain magnitude of a flow field.

    Following Liong et al. (optical strain for micro-expressions; STSTNet), the strain tensor is
    the symmetric part of the flow gradient, ``e = (grad w + grad w^T) / 2`` with ``w = (u, v)``::

        e_xx = du/dx,  e_yy = dv/dy,  e_xy = e_yx = (du/dy + dv/dx) / 2
        strain = sqrt(e_xx**2 + e_yy**2 + e_xy**2 + e_yx**2)
               = sqrt(e_xx**2 + e_yy**2 + 2 * e_xy**2)

    Derivatives are central differences (``numpy.gradient``, one-sided at the borders), in pixels.
    A pure translation has zero strain; ``u = a*x`` has strain ``|a|``.

    Parameters
    ----------
    flow : numpy.ndarray
        ``(H, W, 2)`` flow, u then v.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32, non-negative.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2 or min(flow.shape[:2]) < 2:
        raise ValueError(f"flow must have shape (H, W, 2) with H, W >= 2; got {flow.shape}")
    # np.gradient returns the derivative along axis 0 (y, rows) first, then axis 1 (x).
    du_dy, du_dx = np.gradient(flow[:, :, 0])
    dv_dy, dv_dx = np.gradient(flow[:, :, 1])
    e_xy = 0.5 * (du_dy + dv_dx)
    return np.sqrt(du_dx**2 + dv_dy**2 + 2 * e_xy**2).astype(np.float32)


def minmax_uint8(channel: np.ndarray) -> np.ndarray:
    """Stretch one map to 0..255 (per image), rounded to uint8; a constant map gives zeros."""
    channel = np.asarray(channel, dtype=np.float64)
    lo, hi = float(channel.min()), float(channel.max())
    if hi - lo <= 1e-12 * max(1.0, abs(hi)):
        return np.zeros(channel.shape, np.uint8)
    return np.rint((channel - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def ststnet_input(onset: np.ndarray, apex: np.ndarray, size: int = 28, *,
                  params: TVL1Params | None = None,
                  channels: tuple[str, str, str] = MEGC2019_CHANNELS) -> np.ndarray:
    """The STSTNet image of one clip: u, v and optical strain between onset and apex.

    Steps: TV-L1 flow at full resolution (:func:`tvl1_flow`); strain from it
    (:func:`optical_strain`); each map resized to ``size x size`` with ``cv2.INTER_AREA`` (an
    average over the source pixels, which suits a strong down-scaling); then each map min-max
    normalised *per image* to 0..255 and rounded (a constant map becomes 0). Normalising after
    resizing is what the shipped ``megc2019_flow`` images show: every channel of every image
    there spans exactly 0..255.

    Parameters
    ----------
    onset, apex : numpy.ndarray
        The two frames (see :func:`tvl1_flow`).
    size : int
        Side of the square output (28 for STSTNet).
    params : TVL1Params, optional
        TV-L1 parameters.
    channels : tuple of str
        Which map goes to each channel of the returned array, from ``"u"``, ``"v"``,
        ``"strain"``. The default :data:`MEGC2019_CHANNELS` = ``("strain", "v", "u")`` is the
        array order of the shipped set as ``cv2.imread`` returns it, i.e. an RGB image
        ``(u, v, strain)``; write the result with ``cv2.imwrite`` and read it back with
        ``cv2.imread`` to get the same array.

    Returns
    -------
    numpy.ndarray
        ``(size, size, 3)`` uint8.
    """
    if size < 1:
        raise ValueError(f"size must be positive; got {size}")
    if sorted(channels) != sorted(_MAPS):
        raise ValueError(f"channels must order 'u', 'v', 'strain'; got {channels}")
    flow = tvl1_flow(onset, apex, params)
    maps = {"u": flow[:, :, 0], "v": flow[:, :, 1], "strain": optical_strain(flow)}
    out = np.empty((size, size, 3), np.uint8)
    for i, name in enumerate(channels):
        small = cv2.resize(maps[name], (size, size), interpolation=cv2.INTER_AREA)
        out[:, :, i] = minmax_uint8(small)
    return out


def ststnet_input_from_files(onset: Path | str, apex: Path | str, size: int = 28, *,
                             params: TVL1Params | None = None,
                             channels: tuple[str, str, str] = MEGC2019_CHANNELS) -> np.ndarray:
    """:func:`ststnet_input` on two image files, read as grayscale (errors name the file:
    :class:`~fervid.errors.PathNotFoundError`, :class:`FrameReadError`, :class:`FrameSizeError`).
    """
    a, b = read_gray(onset), read_gray(apex)
    if a.shape != b.shape:
        raise FrameSizeError(f"onset {onset} is {a.shape[1]}x{a.shape[0]} but apex {apex} is "
                             f"{b.shape[1]}x{b.shape[0]}")
    return ststnet_input(a, b, size, params=params, channels=channels)


def mirror_flow(x, u_channel: int, top: float):
    """Flow images ``x`` ``(..., C, H, W)`` (a tensor) mirrored left-right, as the flow of the
    mirrored face: the horizontal flow u (channel ``u_channel``) changes sign, v and the strain
    do not. Channels stored min-max scaled to ``0..top`` (:func:`minmax_uint8`) negate as
    ``top - u``, since the scaling maps -u's range onto the same ``0..top``."""
    out = x.flip(-1)
    out[..., u_channel, :, :] = top - out[..., u_channel, :, :]
    return out
