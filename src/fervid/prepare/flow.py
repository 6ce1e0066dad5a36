"""Write the STSTNet flow image of every clip of a table: parallel, resumable, atomic.

The output folder has the layout of the shipped ``megc2019_flow`` set, so the same reader
(``fervid.datasets.precomputed.read_precomputed``) loads both::

    out_dir/{sample.key}.png      28x28x3 uint8, see fervid.representation.ststnet_input
    out_dir/index.csv             dataset,subject,clip,label,file (table order)
    out_dir/prepare_flow.json     the pixel settings, so a resumed run cannot mix settings
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fervid.files import TMP_MARK, atomic_write_bytes
from fervid.prepare.pool import check_settings, map_clips
from fervid.progress import progress_bar
from fervid.representation.optical_flow import (
    MEGC2019_CHANNELS,
    TVL1Params,
    ststnet_input_from_files,
)
from fervid.samples import Sample, SampleTable

INDEX_NAME = "index.csv"
SETTINGS_NAME = "prepare_flow.json"
INDEX_COLUMNS = ["dataset", "subject", "clip", "label", "file"]


@dataclass
class PrepareFlowResult:
    """What :func:`prepare_flow` did.

    Attributes
    ----------
    written : int
        Images computed and written by this run.
    skipped : int
        Images already present and valid (a resumed run), left untouched.
    unlabelled : int
        Samples outside the protocol (``label is None``), not prepared.
    failed : list of (str, str)
        ``(sample key, message)`` for each clip that could not be prepared.
    index : Path
        The ``index.csv`` written (finished samples only).
    """

    written: int = 0
    skipped: int = 0
    unlabelled: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    index: Path = Path(INDEX_NAME)

    @property
    def ok(self) -> bool:
        """True when no clip failed."""
        return not self.failed


def is_valid_image(path: Path, size: int) -> bool:
    """True when ``path`` decodes to a ``(size, size, 3)`` uint8 image."""
    if not path.is_file():
        return False
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return image is not None and image.shape == (size, size, 3) and image.dtype == np.uint8


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes (lossless; same array, same bytes)."""
    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return data.tobytes()


def prepare_one(sample: Sample, out_path: Path, size: int, params: TVL1Params,
                channels: tuple[str, str, str]) -> None:
    """Compute and atomically write one clip's image. Errors name the clip or the frame file."""
    if not sample.frames:
        raise ValueError("the sample lists no frames")
    pos = sample.apex_position
    if not 0 <= pos < len(sample.frames):
        raise ValueError(f"apex position {pos} is outside the {len(sample.frames)} frames")
    image = ststnet_input_from_files(sample.frames[0], sample.frames[pos], size, params=params,
                                     channels=channels)
    atomic_write_bytes(out_path, encode_png(image))


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator:
    """Yield an ``advance()`` callable driving a clips bar (done / total, elapsed, ETA)."""
    with progress_bar(enabled) as progress:
        task = progress.add_task("flow", total=total, status="clips")
        yield lambda: progress.advance(task)


def prepare_flow(table: SampleTable, out_dir: Path, *, size: int = 28, workers: int | None = None,
                 progress: bool = True, flow_params: TVL1Params | None = None,
                 channels: tuple[str, str, str] = MEGC2019_CHANNELS) -> PrepareFlowResult:
    """Write the onset-to-apex STSTNet image of every labelled sample, and ``index.csv``.

    For each sample, the onset frame ``frames[0]`` and the apex frame
    ``frames[sample.apex_position]`` are read as grayscale and turned into
    :func:`~fervid.representation.ststnet_input`, written to ``out_dir/{sample.key}.png``.

    Parameters
    ----------
    table : SampleTable
        The clips; those with ``label is None`` are counted in ``unlabelled`` and left out.
    out_dir : Path
        Created if needed. Images already there and valid are kept (resume).
    size : int
        Image side.
    workers : int, optional
        Processes; ``os.cpu_count()`` when omitted; 1 computes in this process (debugging).
        Processes are started with ``spawn`` (a forked child of a process that already ran
        OpenCV's thread pool can deadlock), so a script calling this with ``workers > 1`` needs
        the usual ``if __name__ == "__main__":`` guard; the ``fervid`` command has it.
    progress : bool
        Show a progress bar (clips done / total, ETA).
    flow_params : TVL1Params, optional
        TV-L1 parameters (OpenCV defaults).
    channels : tuple of str
        Channel order, see :func:`~fervid.representation.ststnet_input`.

    Returns
    -------
    PrepareFlowResult
        A clip that fails (unreadable frame, bad annotation) does not stop the run: it is
        listed in ``failed`` and left out of the index; callers check ``result.ok``.

    Raises
    ------
    OutputFolderError
        ``out_dir`` holds images made with other settings.
    ValueError
        Two samples share a key (readers never give such a table: a bug of the caller).
    """
    out_dir = Path(out_dir)
    params = flow_params or TVL1Params()
    workers = max(1, workers or os.cpu_count() or 1)
    samples = [s for s in table if s.label is not None]
    keys = [s.key for s in samples]
    if len(set(keys)) != len(keys):
        dup = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"samples share a key (one image each is needed): {dup[:10]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    check_settings(out_dir / SETTINGS_NAME,
                   {"size": size, "tvl1": asdict(params), "channels": list(channels)}, "images")
    for stale in out_dir.glob(f".*{TMP_MARK}*"):  # left by a killed run
        stale.unlink(missing_ok=True)

    result = PrepareFlowResult(unlabelled=len(table) - len(samples), index=out_dir / INDEX_NAME)
    todo = []
    for sample in samples:
        if is_valid_image(out_dir / f"{sample.key}.png", size):
            result.skipped += 1
        else:
            todo.append(sample)

    def run(s: Sample) -> tuple:
        return (s, out_dir / f"{s.key}.png", size, params, tuple(channels))

    with _progress_bar(len(todo), progress and bool(todo)) as advance:
        _, errors = map_clips(prepare_one, [(s.key, run(s)) for s in todo], workers=workers,
                              advance=advance)

    result.failed = [(k, errors[k]) for k in keys if k in errors]  # table order
    result.written = len(todo) - len(errors)
    rows = [(s.dataset, s.subject, s.clip, int(s.label), f"{s.key}.png") for s in samples
            if s.key not in errors]
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    atomic_write_bytes(result.index, frame.to_csv(index=False, lineterminator="\n").encode())
    return result
