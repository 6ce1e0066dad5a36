"""Still-face ("frame") models on video: every frame's face cropped as the model was trained.

A frame model (``InputSpec(representation="frame", size=S, resize=R)``, written by
``fervid fit``) was trained on faces resized to R×R, centre-cropped to S×S (at evaluation) and
standardised per image. A video face goes the same way:

1. the tracked, smoothed landmarks are warped onto the training set's face geometry
   (:func:`frame_target`) in a crop of ``max(R, 112)`` pixels: one warp at a resolution where
   bilinear sampling does not alias;
2. that crop is shrunk to R×R with area averaging, as ``load_face_images`` resizes training
   faces;
3. the centre S×S is cut and standardised with the training code itself
   (:func:`fervid.representation.input_spec.build_input`, whose ``face_input`` evaluation
   batches use too).

Face geometry: a release whose still faces are framed otherwise than fervid's 5-point template
registers its mean face (``DatasetSpec.face_points``), and a model trained on it gets that:
FER2013's faces are framed tighter and higher (eye distance 0.36 of the image against 0.26 at
margin 0.1), so a FER2013 model gets :data:`FER2013_FIVE_POINTS`. Any other training set gets
the 5-point template with ``margin``, as ``fervid prepare faces`` writes crops.
"""

from __future__ import annotations

import cv2
import numpy as np

from fervid.datasets.fer2013 import FER2013_FIVE_POINTS  # noqa: F401  (callers import it here)
from fervid.datasets.registry import UnknownDatasetError, dataset_spec
from fervid.faces import five_points, template_points
from fervid.faces.alignment import similarity_matrix
from fervid.representation.input_spec import InputSpec, build_input
from fervid.runs.checkpoint import Checkpoint

#: Side of the crop the face is warped into before the area resize to R.
WARP_SIZE = 112


def frame_target(ckpt: Checkpoint, margin: float) -> tuple[str, np.ndarray]:
    """The alignment a frame model's faces get: its name and the ``(5, 2)`` target points in
    unit crop coordinates (eyes, nose tip, mouth corners)."""
    dataset = ckpt.config.get("data", {}).get("dataset")
    try:
        points = dataset_spec(dataset).face_points
    except UnknownDatasetError:  # none named, or a reader of one's own not loaded here
        points = None
    if points is not None:
        return f"{dataset} mean face", points
    unit = template_points("5point", size=WARP_SIZE, margin=margin) / WARP_SIZE
    return f"5point, margin {margin:g}", unit


def frame_crop(frame: np.ndarray, landmarks: np.ndarray, target: np.ndarray,
               resize: int) -> np.ndarray:
    """The face of one frame as the model's training faces were stored.

    Parameters
    ----------
    frame
        ``(H, W)`` or ``(H, W, C)`` uint8 frame in the model's pixel mode.
    landmarks
        ``(68, 2)`` landmarks of the face, image pixels.
    target
        ``(5, 2)`` unit coordinates the five points are mapped to (:func:`frame_target`).
    resize
        R, the side training faces were resized to.

    Returns
    -------
    numpy.ndarray
        ``(R, R, C)`` uint8.
    """
    side = max(resize, WARP_SIZE)
    matrix = similarity_matrix(five_points(landmarks), target * side)
    crop = cv2.warpAffine(np.asarray(frame), matrix, (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    if side != resize:
        crop = cv2.resize(crop, (resize, resize), interpolation=cv2.INTER_AREA)
    return crop.reshape(resize, resize, -1)


def frame_inputs(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model inputs of stored faces: the centre crop, standardised per image.

    Parameters
    ----------
    crops
        ``(N, R, R, C)`` uint8 faces from :func:`frame_crop`.
    spec
        The checkpoint's frame :class:`~fervid.representation.input_spec.InputSpec`.

    Returns
    -------
    numpy.ndarray
        ``(N, C, S, S)`` float32.
    """
    return build_input(spec, crops).numpy()
