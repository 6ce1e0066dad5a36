"""Face alignment: a similarity transform (rotation, uniform scale, shift) of the landmarks onto
a canonical template, then a warp of the image to a square crop.

Templates are in unit coordinates of a crop without margin (0..1 on both axes), image-left
first. ``"5point"``: the two eye centres, the nose tip and the two mouth corners, at the
positions used by the common 112x112 face-recognition crop. ``"68point"``: all 68 iBUG points,
the mean shape of frontal faces aligned with the 5-point template (centred on the same face
region, so both templates give nearly the same crop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from fervid.errors import FervidError, OptionError
from fervid.faces.detection import NUM_LANDMARKS
from fervid.faces.template68 import MEAN_SHAPE_68

#: Eye centres, nose tip, mouth corners (image-left first), in unit crop coordinates.
TEMPLATE_5POINT = np.array([
    [0.3419, 0.4616],
    [0.6565, 0.4598],
    [0.5002, 0.6405],
    [0.3710, 0.8247],
    [0.6315, 0.8232],
], dtype=np.float32)

#: iBUG 68-point indices of the eye contours (image-left eye first), nose tip, mouth corners.
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54

TemplateName = Literal["5point", "68point"]


class AlignmentError(FervidError, ValueError):
    """Landmarks that cannot be aligned (wrong shape, non-finite, degenerate)."""


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop ``(size, size[, 3])`` of the image's dtype and the ``(2, 3) float64``
    matrix that maps image pixels to crop pixels (``cv2.warpAffine`` convention)."""

    image: np.ndarray
    matrix: np.ndarray


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """``(5, 2) float32`` eye centres, nose tip and mouth corners of ``(68, 2)`` landmarks."""
    points = _check_landmarks(landmarks, NUM_LANDMARKS)
    return np.stack([points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0),
                     points[NOSE_TIP], points[MOUTH_LEFT], points[MOUTH_RIGHT]]).astype(np.float32)


def template_points(template: TemplateName = "5point", *, size: int = 112,
                    margin: float = 0.1) -> np.ndarray:
    """The template in crop pixels: ``(5, 2)`` or ``(68, 2) float32``.

    ``margin`` is the border added on each side, as a fraction of the face region: 0 gives the
    tight face-recognition crop, 0.25 a crop whose face region is 1 / 1.5 of its width.
    """
    if size < 8:
        raise OptionError(f"aligned crop size must be at least 8 pixels, got {size}")
    if not 0 <= margin < 2:
        raise OptionError(f"margin must be in [0, 2), got {margin}")
    if template == "5point":
        unit = TEMPLATE_5POINT
    elif template == "68point":
        unit = MEAN_SHAPE_68
    else:
        raise OptionError(f"unknown alignment template {template!r}: use '5point' or '68point'")
    return ((unit + margin) / (1 + 2 * margin) * size).astype(np.float32)


def similarity_matrix(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform ``(2, 3) float64`` taking ``source`` points to
    ``target`` points (both ``(N, 2)``, N >= 2)."""
    # Every point is an inlier (threshold far above any residual); the Levenberg-Marquardt
    # refinement then makes it the least-squares fit over all points.
    spread = float(np.ptp(target, axis=0).max()) + 1.0
    matrix, _ = cv2.estimateAffinePartial2D(
        source.astype(np.float32), target.astype(np.float32), method=cv2.RANSAC,
        ransacReprojThreshold=100 * spread, maxIters=10, refineIters=50)
    if matrix is None or not np.isfinite(matrix).all():
        raise AlignmentError("landmarks are degenerate: no similarity transform fits them")
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, *, size: int = 112,
               margin: float = 0.1, template: TemplateName = "5point",
               border: int = cv2.BORDER_REPLICATE) -> AlignedFace:
    """Warp ``image`` so the face's landmarks land on the template.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, C)`` frame.
    landmarks
        ``(68, 2)`` landmarks (x, y) in image pixels; for ``template="5point"`` a ``(5, 2)``
        array of eye centres, nose tip and mouth corners is accepted as well.
    size
        Side of the square output crop in pixels.
    margin
        Border around the face region on each side, as a fraction of it (see
        :func:`template_points`).
    template
        ``"5point"`` (fit on eyes, nose, mouth corners) or ``"68point"`` (fit on all points).
    border
        OpenCV border mode for pixels outside the frame.
    """
    points = np.asarray(landmarks, dtype=np.float32)
    if template == "5point" and points.shape != (5, 2):
        points = five_points(points)
    elif template == "68point":
        points = _check_landmarks(points, NUM_LANDMARKS)
    target = template_points(template, size=size, margin=margin)
    if template == "5point":
        points = _check_landmarks(points, 5)
    matrix = similarity_matrix(points, target)
    crop = cv2.warpAffine(np.asarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=border)
    return AlignedFace(crop, matrix)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(N, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def matrix_scale(matrix: np.ndarray) -> float:
    """The uniform scale of a similarity matrix (crop pixels per image pixel)."""
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


def _check_landmarks(landmarks: np.ndarray, count: int) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float32)
    if points.shape != (count, 2):
        raise AlignmentError(f"expected landmarks of shape ({count}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise AlignmentError("landmarks contain NaN or infinite values")
    return points
