"""Registration of a clip's frames onto its onset frame, from the regions an expression moves
least.

A dynamic image weighs frames with coefficients that sum to zero, so whatever moves between
frames shows in it, and a head that drifts by half a pixel moves more than a micro-expression.
Each frame is therefore warped onto the clip's onset frame with a global motion model fitted
only where expressions move least (:func:`stable_mask`): the upper face outline (temples to
cheekbones; the jaw below moves with the mouth), the nose bridge and the forehead above the
brows. The warp starts from the landmarks of those regions when there are any and is refined
to sub-pixel accuracy on the grey levels of the masked onset frame (weighted Gauss-Newton,
invariant to lighting like ECC; :func:`estimate_warp` says why not OpenCV's masked ECC).

Motion models (``motion``): ``translation`` (2 parameters), ``euclidean`` (rotation and shift,
3) and ``affine`` (6). ``euclidean`` is the default with landmarks: on real raw CASME II clips
it leaves less residual drift than a shift alone (heads roll a little), while ``affine``'s
extra parameters also follow what moves inside the masked regions (on SynthME's still heads it
took whole expressions for head motion). Crops without landmarks get a shift on the outline
bands (:func:`register_cropped`). Measurements: docs/results.md, "Registration".

Matrices follow ``cv2.warpAffine``'s forward convention: ``(2, 3)`` float64 taking a pixel of
frame t to the matching pixel of the onset frame, so ``cv2.warpAffine(frame_t, m, size)`` is the
registered frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from fervid.errors import OptionError
from fervid.faces.alignment import similarity_matrix, template_points

Motion = Literal["translation", "euclidean", "affine"]
MOTIONS: tuple[str, ...] = ("translation", "euclidean", "affine")

#: iBUG 68-point indices of the stable regions: the outline from the temples to the
#: cheekbones on each side, the nose bridge, and the brows (the forehead is drawn above them).
OUTLINE_LEFT = (0, 1, 2, 3)
OUTLINE_RIGHT = (13, 14, 15, 16)
NOSE_BRIDGE = (27, 28, 29)
BROWS = tuple(range(17, 27))
#: The stable regions :func:`stable_mask` can draw.
REGIONS = ("outline", "nose", "forehead")
#: Regions and motion model of crops without landmarks (:func:`register_cropped`).
CROPPED_REGIONS = ("outline",)
CROPPED_MOTION = "translation"
#: Landmarks that fit the starting warp (the brows move with AU1/2/4, so they are left out).
STABLE_POINTS = (*OUTLINE_LEFT, *OUTLINE_RIGHT, *NOSE_BRIDGE)

#: Residuals beyond this many robust standard deviations weigh little (Cauchy's 95% efficiency
#: constant).
ROBUST_SCALE = 2.385

#: Side the frames are scaled to (at least) before the estimate: small crops (48 px) have too few
#: pixels in the masked regions for a sub-pixel estimate.
ANALYSIS_SIZE = 128


@dataclass(frozen=True)
class Registration:
    """Frames registered onto a reference frame.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` or ``(T, H, W, C)``, the input's dtype: each frame warped onto the
        reference (the reference itself unchanged).
    matrices : numpy.ndarray
        ``(T, 2, 3)`` float64, frame t pixels → reference pixels (identity for the reference).
    converged : numpy.ndarray
        ``(T,)`` bool: False where the estimate failed and the starting warp was kept.
    """

    frames: np.ndarray
    matrices: np.ndarray
    converged: np.ndarray


def check_motion(motion: str) -> str:
    """``motion`` if it is a known model, else an :class:`OptionError` naming the choices."""
    if motion not in MOTIONS:
        raise OptionError(f"unknown registration motion {motion!r}; expected one of "
                          f"{', '.join(MOTIONS)}")
    return motion


def stable_mask(landmarks: np.ndarray, shape: tuple[int, int],
                regions: tuple[str, ...] = REGIONS) -> np.ndarray:
    """``(H, W) uint8`` mask (255 inside) of the upper face outline, nose bridge and forehead.

    Parameters
    ----------
    landmarks : numpy.ndarray
        ``(68, 2)`` iBUG landmarks (x, y) in the image's pixels.
    shape : (int, int)
        ``(H, W)`` of the image.
    regions : tuple of str
        Which of ``outline``, ``nose`` and ``forehead`` to include.
    """
    p = np.asarray(landmarks, dtype=np.float64)
    width = float(np.linalg.norm(p[16] - p[0]))
    centre = p[list(NOSE_BRIDGE)].mean(axis=0)
    mask = np.zeros(shape, np.uint8)

    def fill(poly: np.ndarray) -> None:
        cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)

    # Outline bands lie inside the face (pulled 4-22% towards its centre): the background
    # outside does not move with the head.
    for side in (OUTLINE_LEFT, OUTLINE_RIGHT) if "outline" in regions else ():
        edge = p[list(side)]
        outer = edge + 0.04 * (centre - edge)
        inner = edge + 0.22 * (centre - edge)
        fill(np.concatenate([outer, inner[::-1]]))
    # Nose bridge: a strip along points 27-29, a tenth of the face wide.
    top, bottom = p[NOSE_BRIDGE[0]], p[NOSE_BRIDGE[-1]]
    half = np.array([0.05 * width, 0.0])
    if "nose" in regions:
        fill(np.stack([top - half, top + half, bottom + half, bottom - half]))
    # Forehead: from 8% to 30% of the face width above the brows (clear of their own motion).
    up = np.array([0.0, width])
    brows = p[list(BROWS)]
    if "forehead" in regions:
        fill(np.concatenate([brows - 0.08 * up, (brows - 0.30 * up)[::-1]]))
    return mask


def template_mask(size: int, margin: float = 0.1, regions: tuple[str, ...] = REGIONS
                  ) -> np.ndarray:
    """:func:`stable_mask` of the 68-point template in a ``size`` px crop with ``margin``
    (:func:`fervid.faces.template_points`): the mask of faces already aligned by fervid."""
    return stable_mask(template_points("68point", size=size, margin=margin), (size, size),
                       regions)


def _grey(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif frame.ndim == 3:
        frame = frame[..., 0]
    return frame.astype(np.float32)


def _as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def _scaled(image: np.ndarray, k: float, flags: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``image`` scaled by ``k`` with the exact pixel map x' = k x (matrices stay simple)."""
    if k == 1:
        return image
    h, w = image.shape[:2]
    m = np.array([[k, 0.0, 0.0], [0.0, k, 0.0]])
    return cv2.warpAffine(image, m, (round(w * k), round(h * k)), flags=flags,
                          borderMode=cv2.BORDER_REPLICATE)


def _fit_points(moving: np.ndarray, reference: np.ndarray, motion: str) -> np.ndarray:
    """Starting warp ``(2, 3)``: moving landmarks → reference landmarks."""
    if motion == "translation":
        shift = (reference - moving).mean(axis=0)
        return np.array([[1.0, 0.0, shift[0]], [0.0, 1.0, shift[1]]])
    if motion == "affine":
        m, _ = cv2.estimateAffine2D(moving.astype(np.float32), reference.astype(np.float32),
                                    method=cv2.LMEDS)
        if m is not None and np.isfinite(m).all():
            return m
    m = similarity_matrix(moving, reference)
    # The euclidean model has no scale: keep the rotation, drop the (tiny) zoom.
    scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
    return np.hstack([m[:, :2] / scale, m[:, 2:]]) if motion == "euclidean" else m


def _matrix(params: np.ndarray, motion: str) -> np.ndarray:
    """``(2, 3)`` map of centred reference coordinates to centred moving ones."""
    if motion == "translation":
        return np.array([[1.0, 0.0, params[0]], [0.0, 1.0, params[1]]])
    if motion == "euclidean":
        c, s = np.cos(params[0]), np.sin(params[0])
        return np.array([[c, -s, params[1]], [s, c, params[2]]])
    return params.reshape(2, 3).copy()


def _params(m: np.ndarray, motion: str) -> np.ndarray:
    if motion == "translation":
        return m[:, 2].copy()
    if motion == "euclidean":
        return np.array([np.arctan2(m[1, 0], m[0, 0]), m[0, 2], m[1, 2]])
    return m.reshape(-1).copy()


def _jacobian(gx: np.ndarray, gy: np.ndarray, x: np.ndarray, y: np.ndarray,
              params: np.ndarray, motion: str) -> list[np.ndarray]:
    if motion == "translation":
        return [gx, gy]
    if motion == "euclidean":
        c, s = np.cos(params[0]), np.sin(params[0])
        return [gx * (-s * x - c * y) + gy * (c * x - s * y), gx, gy]
    return [gx * x, gx * y, gx, gy * x, gy * y, gy]


def _gauss_newton(reference: np.ndarray, moving: np.ndarray, weight: np.ndarray,
                  m: np.ndarray, motion: str, iterations: int, tol: float
                  ) -> tuple[np.ndarray, bool]:
    """Robust weighted Gauss-Newton on one level; ``m`` maps centred reference coordinates
    to centred moving ones. A gain and an offset of the moving image's grey levels are fitted
    with the warp, so lighting changes do not pull it (as ECC's correlation does not)."""
    h, w = reference.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = np.nonzero(weight > 0)
    x, y = xs - cx, ys - cy
    wgt = weight[ys, xs].astype(np.float64)
    ref = reference[ys, xs].astype(np.float64)
    gx_img = cv2.Sobel(moving, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy_img = cv2.Sobel(moving, cv2.CV_32F, 0, 1, ksize=3) / 8
    params, gain, offset = _params(m, motion), 1.0, 0.0
    for _ in range(iterations):
        mm = _matrix(params, motion)
        mx = (mm[0, 0] * x + mm[0, 1] * y + mm[0, 2] + cx).astype(np.float32)[None]
        my = (mm[1, 0] * x + mm[1, 1] * y + mm[1, 2] + cy).astype(np.float32)[None]
        sample = [cv2.remap(im, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)[0]
                  .astype(np.float64) for im in (moving, gx_img, gy_img)]
        inside = (mx[0] >= 0) & (mx[0] <= w - 1) & (my[0] >= 0) & (my[0] <= h - 1)
        error = sample[0] - gain * ref - offset
        jac = np.stack([*_jacobian(sample[1], sample[2], x, y, params, motion), -ref,
                        -np.ones_like(ref)], axis=1)
        # Cauchy weights: pixels whose grey level disagrees far beyond the noise (an
        # expression reaching into the mask, a wire, a blink) lose their pull on the warp.
        spread = 1.4826 * np.median(np.abs(error[inside] - np.median(error[inside]))) + 1e-3
        ww = wgt * inside / (1 + (error / (ROBUST_SCALE * spread)) ** 2)
        hessian = jac.T @ (jac * ww[:, None])
        try:
            step = -np.linalg.solve(hessian, jac.T @ (ww * error))
        except np.linalg.LinAlgError:
            return _matrix(params, motion), False
        params = params + step[:-2]
        gain, offset = gain + step[-2], offset + step[-1]
        # stop once the warp moves no corner of the image by more than tol pixels
        moved = np.abs(_matrix(params, motion) - mm)
        if moved[:, 2].max() + (moved[:, 0].max() + moved[:, 1].max()) * max(cx, cy) < tol:
            return _matrix(params, motion), True
    return _matrix(params, motion), True


def estimate_warp(reference: np.ndarray, moving: np.ndarray, mask: np.ndarray, *,
                  motion: Motion = "euclidean", init: np.ndarray | None = None,
                  iterations: int = 40, tol: float = 1e-3, levels: int = 2
                  ) -> tuple[np.ndarray, bool]:
    """The warp ``(2, 3)`` float64 taking ``moving``'s pixels to ``reference``'s.

    Weighted Gauss-Newton (Lucas-Kanade) on the grey levels inside ``mask``, coarse to fine,
    with a gain and an offset of the grey levels fitted alongside (invariant to lighting, as
    ECC is). OpenCV's ``findTransformECC`` with a mask was measured biased here: a known shift
    of (0.30, 0.20) px of a real face crop came back as (0.18, 0.58) px with the stable-region
    mask, so the estimate is our own.

    Parameters
    ----------
    reference, moving : numpy.ndarray
        ``(H, W)`` float32 grey images of one size.
    mask : numpy.ndarray
        ``(H, W)`` uint8 weights (0..255) of ``reference``'s pixels (its stable regions).
    motion : {'translation', 'euclidean', 'affine'}
        The motion model.
    init : numpy.ndarray, optional
        Starting warp (moving → reference); identity when None.
    levels : int
        Pyramid levels (each halves the images), for motions of a few pixels.

    Returns
    -------
    (numpy.ndarray, bool)
        The warp, and whether the estimate converged (if not, ``init`` is returned).
    """
    h, w = reference.shape
    start = np.eye(2, 3) if init is None else np.asarray(init, dtype=np.float64)
    centre = np.array([[1.0, 0.0, (w - 1) / 2], [0.0, 1.0, (h - 1) / 2], [0.0, 0.0, 1.0]])
    # centred reference → centred moving coordinates (the inverse of the wanted warp)
    m = (np.linalg.inv(centre) @ np.linalg.inv(_as3(start)) @ centre)[:2]
    pyramid = [(cv2.GaussianBlur(reference, (0, 0), 1.0), cv2.GaussianBlur(moving, (0, 0), 1.0),
                mask.astype(np.float32) / 255)]
    for _ in range(levels - 1):
        r, mv, wt = pyramid[-1]
        if min(r.shape) < 32:
            break
        half = (r.shape[1] // 2, r.shape[0] // 2)
        pyramid.append(tuple(cv2.resize(a, half, interpolation=cv2.INTER_AREA)
                             for a in (r, mv, wt)))
    ok = True
    for level in range(len(pyramid) - 1, -1, -1):
        r, mv, wt = pyramid[level]
        k = 2.0 ** level  # centred coordinates scale exactly under area halving
        m = m.copy()
        m[:, 2] /= k
        m, ok = _gauss_newton(r, mv, wt, m, motion, iterations, tol / k)
        m[:, 2] *= k
        if not np.isfinite(m).all():
            return start, False
    if not ok:
        return start, False
    return (centre @ np.linalg.inv(_as3(m)) @ np.linalg.inv(centre))[:2], True


def register_frames(frames: np.ndarray | list[np.ndarray], *, mask: np.ndarray | None = None,
                    landmarks: np.ndarray | None = None, motion: Motion = "euclidean",
                    reference: int = 0, analysis_size: int = ANALYSIS_SIZE) -> Registration:
    """Register every frame of a clip onto one of its frames (the onset by default).

    Parameters
    ----------
    frames : numpy.ndarray or list of numpy.ndarray
        ``T`` frames ``(H, W)`` or ``(H, W, C)`` (BGR or grey) of one size, in temporal order.
    mask : numpy.ndarray, optional
        ``(H, W)`` uint8 stable regions of the reference frame; default from
        ``landmarks[reference]`` (:func:`stable_mask`), else the template's outline bands
        (:data:`CROPPED_REGIONS`, see :func:`register_cropped`).
    landmarks : numpy.ndarray, optional
        ``(T, 68, 2)`` landmarks in frame pixels (NaN where none): they give the starting warp
        of each frame (fitted on :data:`STABLE_POINTS`); identity without them.
    motion : {'translation', 'euclidean', 'affine'}
        The motion model (see the module notes).
    reference : int
        Position of the frame the others are registered onto.
    analysis_size : int
        Frames smaller than this (their shorter side) are scaled up to it for the estimate.

    Returns
    -------
    Registration
        The registered frames, the warps and where the estimate converged.
    """
    check_motion(motion)
    frames = [np.asarray(f) for f in frames]
    h, w = frames[0].shape[:2]
    if mask is None:
        have = landmarks is not None and np.isfinite(landmarks[reference]).all()
        mask = (stable_mask(landmarks[reference], (h, w)) if have
                else cv2.resize(template_mask(min(h, w), regions=CROPPED_REGIONS), (w, h),
                                interpolation=cv2.INTER_NEAREST))
    k = max(1.0, analysis_size / min(h, w))
    scale = np.diag([k, k, 1.0])
    ref = _scaled(_grey(frames[reference]), k)
    big_mask = _scaled(mask, k, cv2.INTER_NEAREST)
    matrices, converged, out = [], [], []
    for t, frame in enumerate(frames):
        if t == reference:
            matrices.append(np.eye(2, 3))
            converged.append(True)
            out.append(frame)
            continue
        init = None
        if landmarks is not None and np.isfinite(landmarks[[t, reference]]).all():
            points = list(STABLE_POINTS)
            init = _fit_points(landmarks[t][points] * k, landmarks[reference][points] * k, motion)
        warp, ok = estimate_warp(ref, _scaled(_grey(frame), k), big_mask, motion=motion,
                                 init=init)
        m = (np.linalg.inv(scale) @ _as3(warp) @ scale)[:2]
        matrices.append(m)
        converged.append(ok)
        warped = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        out.append(warped.reshape(frame.shape))  # OpenCV drops a single channel axis
    return Registration(np.stack(out), np.stack(matrices), np.array(converged))


def register_cropped(frames: np.ndarray | list[np.ndarray], reference: int = 0
                     ) -> Registration:
    """Register the frames of an already-cropped face clip (``data.register``): no
    landmarks, so the stable regions are the template's outline bands only
    (:data:`CROPPED_REGIONS`), and the motion a shift (:data:`CROPPED_MOTION`).

    Why not the whole stable mask: a crop's face need not sit where the template puts it, and
    on SynthME's faces the template's forehead band falls on the brows, so brow raises and
    lowerings (1.4 px) were taken for head motion (0.9-1.5 px warps at the apex of a still
    head); the outline bands at the crop's sides kept every warp within about 0.2 px
    (``tests/test_registration.py``).
    """
    return register_frames(frames, motion=CROPPED_MOTION, reference=reference)


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` matrix of applying ``inner`` then ``outer``."""
    return (_as3(outer) @ _as3(inner))[:2]
