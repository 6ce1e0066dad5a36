"""The learned spotter's inputs: for every frame of a long video, the optical flow of its
aligned face against the frame ``k`` before, as three small images (u, v, optical strain),
written to disk as the video streams by.

The face is tracked and cut as the training-free spotter does (:func:`face_crops`: a
``crop``-pixel grey square around the 68 landmarks, following the head). For each ``k`` of
``ks`` (one per expression kind: about half its mean length), Farnebäck flow from the crop
``k`` frames back to this one; the mean flow around the nose ridge is subtracted (the head's
own motion, as SOFTNet does) and the eyes are masked out (blinks are no expressions). Optical
strain ``√(u_x² + v_y² + ½(u_y + v_x)²)`` is computed at the crop's size, then the three
are resized to ``size`` × ``size`` (42: SOFTNet's). Frames without a face, or whose frame ``k``
before has none (or does not exist), are zeros and marked invalid.

Memory is bounded: the tracker's few frames and the last ``max(ks) + 1`` crops. The images
go to ``PATH.f16``: raw float16 ``(T, K, 3, size, size)``, ``K = len(ks)``, read back as a
memory map (:meth:`FlowImages.open`); ``PATH.json`` (written last: its presence marks the
file complete) holds the shape, the ``ks``, the frame rate and the valid-frame mask.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.faces import FaceTracker
from fervid.files import atomic_write
from fervid.predict.sources import Source, open_frames
from fervid.predict.spotting import REFERENCE_POINTS, face_crops

#: dlib's 68 landmarks (0-based) of the right and left eye outlines.
EYES = (tuple(range(36, 42)), tuple(range(42, 48)))


@dataclass(frozen=True)
class FlowImages:
    """One video's flow images on disk: ``(n_frames, len(ks), 3, size, size)`` float16."""

    path: Path
    n_frames: int
    ks: tuple[int, ...]
    size: int
    fps: float
    valid: np.ndarray  # (n_frames, len(ks)) bool

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_frames, len(self.ks), 3, self.size, self.size)

    def open(self) -> np.ndarray:
        """The images as a read-only memory map (nothing read until indexed)."""
        return np.memmap(self.path.with_suffix(".f16"), np.float16, "r", shape=self.shape)

    @classmethod
    def load(cls, path: Path) -> FlowImages | None:
        """The complete file at ``path`` (no suffix), or None."""
        meta = Path(path).with_suffix(".json")
        if not meta.exists():
            return None
        d = json.loads(meta.read_text())
        return cls(Path(path), d["n_frames"], tuple(d["ks"]), d["size"], d["fps"],
                   np.array(d["valid"], bool).reshape(d["n_frames"], len(d["ks"])))


def flow_image(before: np.ndarray, after: np.ndarray, points: np.ndarray, size: int,
               region: int) -> np.ndarray:
    """``(3, size, size)`` float32: u, v (crop pixels, the nose ridge's mean flow taken away,
    the eyes zeroed) and optical strain, from grey crops ``before`` → ``after`` ``(H, W)``
    with ``after``'s landmarks ``points`` ``(68, 2)``; ``region`` the nose square's half
    side."""
    flow = cv2.calcOpticalFlowFarneback(before, after, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    h, w = after.shape
    x, y = points[list(REFERENCE_POINTS)].mean(0)
    x0, y0 = int(np.clip(x - region, 0, w - 1)), int(np.clip(y - region, 0, h - 1))
    flow -= flow[y0:y0 + 2 * region + 1, x0:x0 + 2 * region + 1].reshape(-1, 2).mean(0)
    mask = np.zeros((h, w), np.uint8)
    for eye in EYES:
        hull = cv2.convexHull(np.round(points[list(eye)]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 1)
    mask = cv2.dilate(mask, np.ones((2 * region + 1, 2 * region + 1), np.uint8))
    flow[mask > 0] = 0.0
    u, v = flow[..., 0], flow[..., 1]
    u_y, u_x = np.gradient(u)
    v_y, v_x = np.gradient(v)
    strain = np.sqrt(u_x ** 2 + v_y ** 2 + 0.5 * (u_y + v_x) ** 2)
    return np.stack([cv2.resize(np.ascontiguousarray(c), (size, size),
                                interpolation=cv2.INTER_AREA) for c in (u, v, strain)])


def extract_flow_images(source: Source, path: Path, *, ks: tuple[int, ...], size: int = 42,
                        crop: int = 128, fps: float | None = None, detect_every: int = 5,
                        tracker: FaceTracker | None = None) -> FlowImages:
    """Write ``source``'s flow images to ``path`` (``.f16`` and ``.json``), streaming.

    Raises
    ------
    NoFaceFoundError
        No frame has a face.
    """
    path = Path(path)
    frames = open_frames(source, fps)
    tracker = tracker if tracker is not None else FaceTracker(detect_every=detect_every,
                                                               refine=False)
    region = max(2, int(round(0.08 * crop)))
    crops: deque = deque(maxlen=max(ks) + 1)
    valid: list[list[bool]] = []
    empty = np.zeros((3, size, size), np.float16)
    data = path.with_suffix(".f16")
    data.parent.mkdir(parents=True, exist_ok=True)
    tmp = data.with_name(f".{data.name}.partial")
    with open(tmp, "wb") as f:
        for face, points in face_crops(frames, tracker, crop):
            crops.append(None if face is None else face)
            row = []
            for k in ks:
                ok = face is not None and len(crops) > k and crops[-1 - k] is not None
                image = (flow_image(crops[-1 - k], face, points, size, region).astype(
                    np.float16) if ok else empty)
                f.write(image.tobytes())
                row.append(ok)
            valid.append(row)
    tmp.replace(data)
    meta = {"n_frames": len(valid), "ks": list(ks), "size": size, "fps": frames.fps,
            "valid": np.array(valid, bool).ravel().astype(int).tolist()}
    atomic_write(path.with_suffix(".json"), lambda p: p.write_text(json.dumps(meta)))
    return FlowImages.load(path)
