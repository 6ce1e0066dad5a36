"""A map-style torch ``Dataset`` over a sample table: one model input per clip.

Inputs are built by fervid's one input builder
(:mod:`fervid.representation.input_spec`), the code ``fervid loso``, ``fervid kfold`` and
``fervid predict`` use, so a model trained here takes what ``fervid predict`` feeds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fervid.errors import OptionError, PathNotFoundError
from fervid.representation.clip_inputs import apex_image
from fervid.representation.dssi import DssiCache, DssiParams, dssi_from_sample
from fervid.representation.frame_loading import FrameReadError, load_clip
from fervid.representation.input_spec import InputSpec, build_input, dssi_input, rgb_to_mode
from fervid.representation.temporal_sampling import sample_indices
from fervid.samples import Sample as TableRow
from fervid.samples import SampleError, SampleTable


@dataclass(frozen=True)
class Sample:
    """One item of a :class:`ClipDataset`.

    ``input`` is float32 ``spec.example_shape()``: ``(K+1, C, S, S)`` for ``dssi``,
    ``(C, T, S, S)`` for ``clip``, ``(C, S, S)`` for the others; ``label`` the class index
    (``table.classes[label]``); ``subject``, ``clip`` and ``dataset`` the clip's ids.
    """

    input: torch.Tensor
    label: int
    subject: str
    clip: str
    dataset: str


@dataclass(frozen=True)
class Batch:
    """Samples collated by :func:`collate`: ``input`` ``(B, *example_shape)``, ``label``
    ``(B,)`` int64, and the ids as tuples of B strings."""

    input: torch.Tensor
    label: torch.Tensor
    subject: tuple[str, ...]
    clip: tuple[str, ...]
    dataset: tuple[str, ...]


def collate(samples: Sequence[Sample]) -> Batch:
    """``DataLoader(dataset, collate_fn=collate)``: stack a list of :class:`Sample` into a
    :class:`Batch` (the default collate does not take dataclasses)."""
    return Batch(torch.stack([s.input for s in samples]),
                 torch.tensor([s.label for s in samples], dtype=torch.long),
                 tuple(s.subject for s in samples), tuple(s.clip for s in samples),
                 tuple(s.dataset for s in samples))


class ClipDataset(Dataset):
    """The model inputs of a table's clips, one :class:`Sample` per row, in table order.

    Parameters
    ----------
    table
        Labelled clips (``read_table(...).labelled()``); index ``i`` is ``table[i]``, so the
        indices of :func:`~fervid.data.loso_splits` select from it (``torch.utils.data.Subset``).
    spec
        What the model takes (:class:`~fervid.representation.input_spec.InputSpec`):

        * ``dssi`` / ``global_di`` / ``apex``: the inputs ``fervid loso`` trains on: DSSI of
          the clip's onset..offset frames at their own resolution with ``spec.dssi``'s
          protocol and the annotated apex, resized to ``spec.size`` and standardised
          (``(K+1, C, S, S)`` / ``(C, S, S)``); the apex frame alone (``(C, S, S)``).
        * ``clip`` (and DSSI with ``spec.num_frames``, k-fold style): ``num_frames`` frames
          (16 when None) sampled evenly, loaded at ``spec.size`` by
          :func:`~fervid.representation.frame_loading.load_clip`, then
          :func:`~fervid.representation.input_spec.build_input`: ``(C, T, S, S)`` in [-1, 1].
        * ``flow``: the image ``root/<sample key>.png`` that ``fervid prepare flow`` writes,
          channels as stored, ``(C, S, S)`` float32 pixel values.
    root
        ``flow`` only: the folder of the flow images.
    cache_dir
        DSSI results are kept here (:class:`~fervid.representation.dssi.DssiCache`), so later
        epochs decode no frame; None: computed on every access.

    Raises
    ------
    SampleError
        A clip without a label (pass ``table.labelled()``), or an empty table.
    OptionError
        ``flow`` without ``root``, or a ``frame`` spec (still faces: see ``fervid fit``).
    """

    def __init__(self, table: SampleTable, spec: InputSpec, root: Path | str | None = None, *,
                 cache_dir: Path | str | None = None):
        if len(table) == 0:
            raise SampleError("ClipDataset: the table holds no clips")
        unlabelled = [s.key for s in table if s.label is None]
        if unlabelled:
            raise SampleError(f"ClipDataset: {len(unlabelled)} clip(s) have no label under "
                              f"the protocol (first {unlabelled[0]}); pass table.labelled()")
        if spec.representation == "flow" and root is None:
            raise OptionError("ClipDataset: a flow spec reads root/<sample key>.png; pass root")
        if spec.representation == "frame":
            raise OptionError("ClipDataset takes clips; still-face (frame) inputs are built by "
                              "fervid.representation.face_images")
        self.table, self.spec = table, spec
        self.root = None if root is None else Path(root)
        self.cache = None if cache_dir is None else DssiCache(cache_dir)
        self.params = DssiParams(mode=spec.mode, **spec.dssi)

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> Sample:
        row = self.table[i]
        x = self._input(row)
        return Sample(x, int(row.label), row.subject, row.clip, row.dataset)

    def _input(self, row: TableRow) -> torch.Tensor:
        spec = self.spec
        if spec.representation == "flow":
            return self._flow(row)
        if spec.representation == "apex":
            return torch.from_numpy(apex_image(row, spec.size, spec.mode))
        if spec.representation in ("dssi", "global_di") and spec.num_frames is None:
            result = (self.cache.get_or_compute(row, self.params) if self.cache is not None
                      else dssi_from_sample(row, self.params))
            return torch.from_numpy(np.ascontiguousarray(dssi_input(result, spec)))
        # Sampled frames, as the DFEW clip dataset loads them (RGB at the model's size).
        num = spec.num_frames or 16
        frames = load_clip(row.frames, spec.size,
                           indices=sample_indices(len(row.frames), num, "uniform"))
        frames = rgb_to_mode(frames.astype(np.float32), spec.mode)
        return build_input(replace(spec, num_frames=num), frames)

    def _flow(self, row: TableRow) -> torch.Tensor:
        path = self.root / f"{row.key}.png"
        if not path.is_file():
            raise PathNotFoundError(f"clip {row.key}: flow image not found: {path}")
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise FrameReadError(path, "not an image OpenCV can decode", clip=row.key)
        image = image[..., None] if image.ndim == 2 else image
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()

