"""Face detection and 68-point landmarks, offline: dlib (HOG or MMOD CNN) or an OpenCV Haar cascade.

The dlib model files come from the ``face-recognition-models`` distribution. Its package
``__init__`` does not import on current setuptools, so the files are found through the import
system's search path (:func:`dlib_model_path`) without importing the package.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import cv2
import dlib
import numpy as np

from fervid.errors import FervidError, OptionError

#: Number of points of dlib's iBUG 300-W landmark model.
NUM_LANDMARKS = 68


class FaceModelMissingError(FervidError, FileNotFoundError):
    """A detector or landmark model file is absent."""


class FaceImageError(FervidError, ValueError):
    """An image handed to a detector is not an 8-bit grayscale, RGB or BGR array."""


def dlib_model_path(name: str) -> Path:
    """Path of a model file shipped by ``face-recognition-models``, e.g.
    ``shape_predictor_68_face_landmarks.dat`` or ``mmod_human_face_detector.dat``."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FaceModelMissingError(
            f"dlib model {name} not found: the package face-recognition-models is not installed "
            "(pip install face-recognition-models)")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / name
        if path.is_file():
            return path
    raise FaceModelMissingError(
        f"dlib model {name} not found under {list(spec.submodule_search_locations)}/models")


@dataclass(frozen=True)
class FaceBox:
    """An axis-aligned face box in pixels, ``x1``/``y1`` exclusive, with the detector's score."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 0.0

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2

    def scaled(self, factor: float) -> FaceBox:
        """The box with every coordinate multiplied by ``factor`` (score kept)."""
        return FaceBox(self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor,
                       self.score)

    def shifted(self, dx: float, dy: float) -> FaceBox:
        return FaceBox(self.x0 + dx, self.y0 + dy, self.x1 + dx, self.y1 + dy, self.score)

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with ``other`` (0 when disjoint)."""
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        inter = max(w, 0.0) * max(h, 0.0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def as_array(self) -> np.ndarray:
        """``(4,) float32``: x0, y0, x1, y1."""
        return np.array([self.x0, self.y0, self.x1, self.y1], dtype=np.float32)

    def to_dlib(self) -> dlib.rectangle:
        return dlib.rectangle(int(round(self.x0)), int(round(self.y0)),
                              int(round(self.x1)) - 1, int(round(self.y1)) - 1)

    @classmethod
    def from_dlib(cls, rect: dlib.rectangle, score: float = 0.0) -> FaceBox:
        return cls(float(rect.left()), float(rect.top()), float(rect.right() + 1),
                   float(rect.bottom() + 1), float(score))


@dataclass(frozen=True)
class FaceDetection:
    """One face: its box and, when the detector has a landmark model, ``(68, 2) float32``
    landmarks (x, y) in the iBUG 300-W order."""

    box: FaceBox
    landmarks: np.ndarray | None = None


class FaceDetector(Protocol):
    def detect_faces(self, image: np.ndarray) -> list[FaceDetection]: ...


def as_gray_or_color(image: np.ndarray) -> np.ndarray:
    """Check an image is ``(H, W)`` or ``(H, W, 3)`` uint8 and return it C-contiguous.

    RGB and BGR are both accepted: dlib's HOG features and the landmark model use intensity
    gradients, which the channel order hardly changes.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (
            image.ndim == 3 and image.shape[2] != 3) or min(image.shape[:2]) < 1:
        raise FaceImageError(
            f"expected an 8-bit image of shape (H, W) or (H, W, 3), got {image.dtype} "
            f"{image.shape}")
    return np.ascontiguousarray(image)


class LandmarkPredictor:
    """dlib's 68-point shape predictor, run inside a face box.

    Parameters
    ----------
    path
        The ``.dat`` model; default ``shape_predictor_68_face_landmarks.dat`` from
        ``face-recognition-models``.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else dlib_model_path("shape_predictor_68_face_landmarks.dat")
        if not self.path.is_file():
            raise FaceModelMissingError(f"landmark model {self.path} does not exist")
        try:
            self._model = dlib.shape_predictor(str(self.path))
        except RuntimeError as err:
            raise FaceModelMissingError(
                f"landmark model {self.path} is not a dlib shape predictor: {err}") from err

    def __call__(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        """Landmarks ``(68, 2) float32`` of the face in ``box``."""
        shape = self._model(as_gray_or_color(image), box.to_dlib())
        if shape.num_parts != NUM_LANDMARKS:
            raise FaceModelMissingError(
                f"landmark model {self.path} gives {shape.num_parts} points, expected "
                f"{NUM_LANDMARKS}")
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)


def _downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The image shrunk so its longer side is at most ``max_side``, and the factor applied."""
    longest = max(image.shape[:2])
    if not max_side or longest <= max_side:
        return image, 1.0
    factor = max_side / longest
    small = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    return small, factor


class DlibFaceDetector:
    """dlib face detector with 68-point landmarks.

    Parameters
    ----------
    model
        ``"hog"``: ``dlib.get_frontal_face_detector()`` (fast, frontal faces of 80 px and more
        at ``upsample=0``). ``"cnn"``: the MMOD CNN (``mmod_human_face_detector.dat``), which
        also finds turned and partly covered faces, about 50 times slower on a CPU.
    upsample
        How many times dlib doubles the image before detecting; each doubling halves the
        smallest face found and roughly quadruples the time.
    max_side
        Shrink the frame so its longer side is at most this many pixels before detecting
        (boxes are mapped back to the full frame; landmarks are computed at full size).
    landmarks
        Compute landmarks (``True``), or boxes only.
    min_score
        Boxes scoring below this are dropped (HOG scores are around 0 to 3; CNN ones around 1).
    """

    def __init__(self, *, model: Literal["hog", "cnn"] = "hog", upsample: int = 0,
                 max_side: int | None = None, landmarks: bool = True,
                 min_score: float = 0.0) -> None:
        if model == "hog":
            self._detector = dlib.get_frontal_face_detector()
        elif model == "cnn":
            self._detector = dlib.cnn_face_detection_model_v1(
                str(dlib_model_path("mmod_human_face_detector.dat")))
        else:
            raise OptionError(f"unknown dlib face model {model!r}: use 'hog' or 'cnn'")
        if upsample < 0:
            raise OptionError(f"upsample must be >= 0, got {upsample}")
        self.model = model
        self.upsample = upsample
        self.max_side = max_side
        self.min_score = min_score
        self.predictor = LandmarkPredictor() if landmarks else None

    def detect_boxes(self, image: np.ndarray) -> list[FaceBox]:
        """Face boxes in full-frame pixels, largest first."""
        image = as_gray_or_color(image)
        small, factor = _downscale(image, self.max_side)
        if self.model == "hog":
            rects, scores, _ = self._detector.run(small, self.upsample, self.min_score)
            found = [FaceBox.from_dlib(r, s) for r, s in zip(rects, scores, strict=True)]
        else:
            found = [FaceBox.from_dlib(d.rect, d.confidence)
                     for d in self._detector(small, self.upsample)
                     if d.confidence >= self.min_score]
        boxes = [b.scaled(1 / factor) for b in found]
        return sorted(boxes, key=lambda b: b.area, reverse=True)

    def detect_faces(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (``(H, W)`` or ``(H, W, 3)`` uint8, RGB or BGR), largest first."""
        image = as_gray_or_color(image)
        return [FaceDetection(box, self.predictor(image, box) if self.predictor else None)
                for box in self.detect_boxes(image)]


class HaarCascadeMissingError(FaceModelMissingError):
    """The Haar cascade file is absent or unreadable."""


def default_haar_cascade() -> Path:
    """``haarcascade_frontalface_default.xml`` in OpenCV's data folder (may not exist: some
    OpenCV wheels ship no cascades)."""
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    return Path(folder) / "haarcascade_frontalface_default.xml"


class HaarFaceDetector:
    """OpenCV Haar cascade: a fallback for when dlib's detector misses; boxes only, no landmarks.

    Parameters
    ----------
    cascade_path
        The cascade XML; default :func:`default_haar_cascade`.
    scale_factor, min_neighbors, min_size
        Passed to ``cv2.CascadeClassifier.detectMultiScale``.
    """

    def __init__(self, cascade_path: Path | str | None = None, *, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 40) -> None:
        path = Path(cascade_path) if cascade_path else default_haar_cascade()
        if not path.is_file():
            hint = ("" if cascade_path else
                    "; the installed OpenCV ships no Haar cascades (cv2.data.haarcascades is "
                    "missing or empty): pass cascade_path to a haarcascade_frontalface_*.xml")
            raise HaarCascadeMissingError(f"Haar cascade {path} does not exist{hint}")
        try:
            classifier = cv2.CascadeClassifier(str(path))
        except (cv2.error, SystemError) as err:  # OpenCV reports some parse errors as SystemError
            raise HaarCascadeMissingError(f"Haar cascade {path} could not be read: {err}") from err
        if classifier.empty():
            raise HaarCascadeMissingError(f"Haar cascade {path} is not a valid cascade file")
        self.path = path
        self._classifier = classifier
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect_faces(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image``, largest first, without landmarks."""
        image = as_gray_or_color(image)
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        rects = self._classifier.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size))
        boxes = [FaceBox(float(x), float(y), float(x + w), float(y + h), 1.0)
                 for x, y, w, h in np.asarray(rects).reshape(-1, 4)]
        return [FaceDetection(b) for b in sorted(boxes, key=lambda b: b.area, reverse=True)]


def detect_faces(image: np.ndarray, detector: FaceDetector | None = None) -> list[FaceDetection]:
    """Faces in an RGB or BGR image, largest first; ``detector`` defaults to
    :class:`DlibFaceDetector` (HOG, upsampled once, with landmarks)."""
    return (detector or DlibFaceDetector(upsample=1)).detect_faces(image)
