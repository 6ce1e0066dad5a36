"""Long videos with ground-truth expression intervals: what the spotting releases hold.

A spotting release (CAS(ME)²'s ``rawpic``, SAMM Long Videos) is a set of long videos, each a
folder of numbered frames, and a sheet of the intervals coded in them. Its reader returns an
:class:`IntervalRelease`: every video with its subject, frame folder, frame rate, frame count
(when the frames are there) and its :class:`GroundTruthInterval` s, in sheet order. The
spotting metric (:mod:`fervid.metrics.spotting`) and ``fervid data check`` read only this.

Uncoded values are kept as None, never guessed here: an offset the sheet leaves at 0, an apex
at 0 or -1. :meth:`GroundTruthInterval.end` says where an open interval is taken to end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fervid.datasets.frames import NUMBERED_IMAGE, index_frames
from fervid.samples import DatasetFormatError

#: Interval types, as every spotting reader writes them.
KINDS = ("micro", "macro")


@dataclass(frozen=True)
class GroundTruthInterval:
    """One coded expression of a long video (frame numbers of the release's frame files).

    ``apex`` and ``offset`` are None where the sheet does not code them; ``row`` is the
    sheet's own row number (Excel's, 1-based), for messages.
    """

    onset: int
    apex: int | None
    offset: int | None
    kind: str
    au: str = ""
    row: int = 0

    def end(self, n_frames: int | None = None) -> int:
        """The last frame of the interval: its offset, or for an uncoded offset the apex
        mirrored about itself (``2·apex − onset``; onset + 1 without an apex), capped at the
        video's last frame. A choice of ours: the sheets say nothing of where such an
        expression ends."""
        if self.offset is not None:
            return self.offset
        apex = self.apex if self.apex is not None else self.onset
        end = max(2 * apex - self.onset, self.onset + 1)
        return min(end, n_frames) if n_frames else end


@dataclass(frozen=True)
class LongVideo:
    """One long video: ``video`` its id (``15_0401``, ``006_1``), ``folder`` its frames
    (None when read from the sheet alone), ``n_frames`` their count (None: unknown)."""

    subject: str
    video: str
    fps: float
    intervals: tuple[GroundTruthInterval, ...]
    folder: Path | None = None
    n_frames: int | None = None


@dataclass(frozen=True)
class IntervalRelease:
    """What a spotting reader returns.

    ``uncoded_offsets`` / ``uncoded_apexes``: intervals whose offset or apex the sheet does
    not code; ``missing``: videos of the sheet whose frame folder is absent (read with
    ``skip_missing``: left out).
    """

    dataset: str
    videos: tuple[LongVideo, ...]
    root: Path | None = None
    missing: tuple[str, ...] = field(default=())

    @property
    def intervals(self) -> list[GroundTruthInterval]:
        return [i for v in self.videos for i in v.intervals]

    @property
    def subjects(self) -> list[str]:
        return list(dict.fromkeys(v.subject for v in self.videos))

    def counts(self) -> dict[str, int]:
        """``intervals, subjects, videos, micro, macro, uncoded_offsets, uncoded_apexes``."""
        kinds = Counter(i.kind for i in self.intervals)
        return {"intervals": len(self.intervals), "subjects": len(self.subjects),
                "videos": len(self.videos), "micro": kinds["micro"], "macro": kinds["macro"],
                "uncoded_offsets": sum(i.offset is None for i in self.intervals),
                "uncoded_apexes": sum(i.apex is None for i in self.intervals)}


def read_table_file(path: Path) -> pd.DataFrame:
    """A sheet as cells without a header (``dtype=object``): ``.csv`` or an Excel workbook's
    first worksheet; a :class:`DatasetFormatError` when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, ["sheet file does not exist"])
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path, header=None, dtype=object, encoding_errors="replace",
                               skip_blank_lines=False)
        return pd.read_excel(path, header=None, dtype=object, engine="openpyxl")
    except Exception as err:  # pandas and openpyxl raise many types for a damaged file
        raise DatasetFormatError(path, [f"cannot read as a sheet: {err}"]) from err


def attach_frames(dataset: str, videos: Sequence[LongVideo], root: Path | None,
                  folder_of: Callable[[Path, LongVideo], Path | None], *,
                  skip_missing: bool = False) -> IntervalRelease:
    """The release with each video's frame folder and count found under ``root``.

    ``folder_of(root, video)`` names the folder (None: not found). With ``root`` None the
    sheet alone is returned. Every absent folder is listed in one
    :class:`DatasetFormatError` on ``root``, unless ``skip_missing`` (then left out and
    listed in ``missing``).
    """
    if root is None:
        return IntervalRelease(dataset, tuple(videos))
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, ["frame folder does not exist"])
    found, missing = [], []
    for video in videos:
        folder = folder_of(root, video)
        index = index_frames(folder, NUMBERED_IMAGE) if folder is not None else None
        if not index:
            missing.append(video.video)
            continue
        found.append(LongVideo(video.subject, video.video, video.fps, video.intervals,
                               folder, max(index)))
    if missing and not skip_missing:
        raise DatasetFormatError(root, [f"video {m}: no folder of numbered frames"
                                        for m in missing])
    return IntervalRelease(dataset, tuple(found), root, tuple(missing))
