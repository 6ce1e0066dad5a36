"""Model inputs computed from a release's frames: DSSI stacks, one global DI, or the apex frame.

A :class:`~fervid.samples.SampleTable` goes in; tensors ready for a LOSO engine come out.
Dynamic images are computed at the frames' resolution (through :class:`DssiCache`, so a clip's
JPEGs are decoded once per protocol and view, never again in later epochs, folds or runs),
then resized to the model's square input and standardised per image (methods.md §1) by the
pieces of :func:`fervid.representation.input_spec.build_input`, as ``fervid predict`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from fervid.progress import NoProgress, ProgressLike
from fervid.representation.dssi import DssiCache, DssiParams, _read_frame
from fervid.representation.input_spec import (  # noqa: F401  (dssi_stack: re-exported)
    InputSpec,
    apex_input,
    dssi_input,
    dssi_stack,
)
from fervid.samples import Sample, SampleError, SampleTable

InputFormat = Literal["dssi", "global_di", "apex"]


@dataclass(frozen=True)
class ClipInputs:
    """Inputs of every clip of a table, in table order.

    ``x`` holds the evaluation inputs: ``(N, K+1, C, S, S)`` for ``dssi`` (K local dynamic
    images in temporal order, then the global one), ``(N, C, S, S)`` for ``global_di`` and
    ``apex``. ``train_views`` is ``(V, *x.shape)``: V jittered DSSI views per clip for training,
    or None. Both are float16 (standardised values; halves memory), cast per batch.
    """

    x: torch.Tensor
    train_views: torch.Tensor | None


def apex_image(sample: Sample, size: int, mode: str, register: bool = False) -> np.ndarray:
    """The apex frame as a standardised ``(C, size, size)`` input; ``register``: first
    registered onto the onset frame (:func:`fervid.faces.register_cropped`)."""
    apex = _read_frame(sample.frames[sample.apex_position], mode, sample.key)
    if register and sample.apex_position > 0:
        from fervid.faces.registration import register_cropped

        onset = _read_frame(sample.frames[0], mode, sample.key)
        apex = register_cropped([onset, apex]).frames[1]
    return apex_input(apex, size)


def build_clip_inputs(table: SampleTable, input_format: InputFormat, *, size: int,
                      params: DssiParams, cache_dir: Path, train_views: int = 0,
                      seed: int = 0, di_scaling: str = "image",
                      progress: ProgressLike | None = None) -> ClipInputs:
    """Compute (or read from the cache) the model inputs of every clip in ``table``.

    Parameters
    ----------
    table : SampleTable
        Clips with their frame paths.
    input_format : {"dssi", "global_di", "apex"}
        What the model sees (see :class:`ClipInputs`).
    size : int
        Side of the square input.
    params : DssiParams
        DSSI protocol and frame read mode (``mode`` also applies to the apex frame).
    cache_dir : Path
        Root of the :class:`DssiCache`.
    train_views : int
        Jittered DSSI views per clip for training (``dssi`` only; 0: none).
    seed : int
        Seeds the views' jitter (with the view number and clip key).
    di_scaling : {"image", "clip"}
        How the local dynamic images are standardised (:func:`dssi_stack`).
    progress : ProgressLike, optional
        A rich progress display (one task over the clips).

    Raises
    ------
    PathNotFoundError, FrameReadError, SampleError
        A frame is missing or unreadable, or a clip's annotation is invalid; the message names
        the clip. :class:`SampleError` also when the table holds no clips.
    """
    if len(table) == 0:
        raise SampleError("no clips to compute inputs for (the table is empty)")
    progress = progress or NoProgress()
    cache = DssiCache(cache_dir)
    spec = InputSpec(input_format, size, params.mode, di_scaling=di_scaling)
    views = train_views if input_format == "dssi" else 0
    task = progress.add_task(f"{input_format} inputs", total=len(table), status="")
    xs, vs = [], []
    for sample in table:
        if input_format == "apex":
            xs.append(apex_image(sample, size, params.mode, params.register))
        else:
            xs.append(dssi_input(cache.get_or_compute(sample, params), spec))
            vs.append([dssi_stack(cache.get_or_compute(sample, params, view=v, seed=seed),
                                  size, di_scaling) for v in range(views)])
        progress.update(task, advance=1, status=sample.key)
    progress.remove_task(task)
    x = torch.from_numpy(np.stack(xs)).half()
    train = torch.from_numpy(np.stack(vs, axis=1)).half() if views else None
    return ClipInputs(x, train)
