"""Still face images as model inputs: decoded once into memory, cropped and flipped per batch.

A face is stored as uint8 ``(C, R, R)`` (R = ``resize``, the side images are first resized to);
the model takes ``(C, S, S)`` with S = ``size`` <= R: a random S×S crop (and a random
horizontal flip) for training, the centre crop for evaluation. Each input is standardised on
its own (zero mean, unit variance), as fervid's dynamic images and apex frames are, so a
backbone trained on faces takes those inputs unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from fervid.progress import progress_bar
from fervid.representation.dynamic_image import standardize
from fervid.representation.frame_loading import FrameReadError
from fervid.representation.input_spec import (  # noqa: F401  (centre_crop: re-exported)
    centre_crop,
    face_input,
)
from fervid.samples import SampleTable


@dataclass(frozen=True)
class FaceTensors:
    """Decoded faces ``x`` ``(N, C, R, R)`` uint8 and labels ``y`` ``(N,)`` int64, in table
    order."""

    x: torch.Tensor
    y: torch.Tensor


def load_face_images(table: SampleTable, resize: int, *, gray: bool = True,
                     pixels: np.ndarray | None = None, show_progress: bool = True
                     ) -> FaceTensors:
    """Decode every sample's (last) frame, or take ``pixels`` ``(N, H, W)`` uint8 when the
    release stores them inline, and resize to ``resize``×``resize`` (area averaging when
    shrinking). Samples without a label get label -1.

    Raises
    ------
    FrameReadError
        An image cannot be decoded (names the file).
    """
    c = 1 if gray else 3
    x = np.empty((len(table), resize, resize, c), np.uint8)
    flag = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
    with progress_bar(show_progress and pixels is None and len(table) > 1000) as bar:
        task = bar.add_task("decoding faces", total=len(table), status="")
        for i, sample in enumerate(table):
            if pixels is not None:
                image = pixels[i]
                if not gray:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
            else:
                path = sample.frames[-1]
                image = cv2.imread(str(path), flag)
                if image is None:
                    raise FrameReadError(path, "not an image OpenCV can decode")
                if not gray:
                    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
            interp = cv2.INTER_AREA if min(image.shape[:2]) > resize else cv2.INTER_LINEAR
            x[i] = cv2.resize(image, (resize, resize), interpolation=interp).reshape(
                resize, resize, c)
            if i % 512 == 0:
                bar.update(task, completed=i + 1)
    y = torch.tensor([-1 if s.label is None else s.label for s in table], dtype=torch.int64)
    return FaceTensors(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), y)


def standardize_faces(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, S, S)`` any dtype → float32, each image to zero mean and unit variance (the
    standardisation of dynamic images, :func:`~fervid.representation.dynamic_image.standardize`).
    """
    return standardize(x)


def train_face_batches(faces: FaceTensors, index: torch.Tensor, batch_size: int, size: int,
                       generator: torch.Generator, *, hflip: bool = True
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled training batches ``((B, C, size, size) float32, (B,))``: ``index`` permuted
    with ``generator``; each face randomly cropped to ``size`` and, with ``hflip``, mirrored
    with probability 1/2 (all draws from ``generator``)."""
    r = faces.x.shape[-1]
    perm = index[torch.randperm(len(index), generator=generator)]
    for s in range(0, len(perm), batch_size):
        idx = perm[s:s + batch_size]
        xb = faces.x[idx]
        offsets = torch.randint(r - size + 1, (len(idx), 2), generator=generator).tolist()
        flips = (torch.rand(len(idx), generator=generator) < 0.5).tolist() if hflip else []
        crops = torch.empty((len(idx), xb.shape[1], size, size), dtype=xb.dtype)
        for j, (top, left) in enumerate(offsets):
            crop = xb[j, :, top:top + size, left:left + size]
            crops[j] = crop.flip(-1) if hflip and flips[j] else crop
        yield standardize_faces(crops), faces.y[idx]


def eval_face_batches(faces: FaceTensors, index: torch.Tensor, batch_size: int, size: int,
                      scaling: str = "standardize") -> Iterator[torch.Tensor]:
    """Centre crops of ``faces.x[index]`` in order, standardised (or scaled as the model's
    input spec says, ``scaling``), in batches
    (:func:`~fervid.representation.input_spec.face_input`, as ``fervid predict`` builds a frame
    model's input)."""
    for s in range(0, len(index), batch_size):
        yield face_input(faces.x[index[s:s + batch_size]], size, scaling)
