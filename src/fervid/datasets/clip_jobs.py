"""The clips of a raw release as ``fervid prepare faces`` reads them: one :class:`ClipJob` each.

Each reader file's prepare hook (``DatasetSpec.prepare``) builds these from its layout; the
aligned faces go to the same path relative to the output folder as the clip has relative to
the release, so the dataset readers load the output as they load the release.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fervid.datasets.frames import index_frames
from fervid.errors import path_error


@dataclass(frozen=True)
class ClipJob:
    """One clip: where its frames come from and where they go."""

    key: str                                  # 'sub01/EP02_01f', '00001': names the clip
    source: Path                              # the frame folder or the video
    out_dir: Path                             # its finished folder
    frames: tuple[Path, ...] | None = None    # folder clips: input files in temporal order
    names: tuple[str, ...] | None = None      # folder clips: output file names
    fps: float = 0.0
    #: (source folder, output folder) pairs copied with the clip (CK+: its Emotion/ and FACS/
    #: folders), so a finished clip always has its labels and a failed one has none.
    copies: tuple[tuple[Path, Path], ...] = ()
    #: CK+: the release's landmark file per frame (None where absent), rewritten in crop pixels
    #: into ``landmarks_out``.
    landmarks: tuple[Path | None, ...] | None = None
    landmarks_out: Path | None = None


def _natural(path: Path) -> tuple:
    # sub2 before sub10, s2_ne_3 before s2_ne_10.
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name))


def subdirs(folder: Path, pattern: str | None = None) -> list[Path]:
    """The visible subfolders of ``folder`` (matching ``pattern``), in natural order."""
    try:
        dirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    except OSError as err:  # no permission to list it
        raise path_error(folder, err, "data folder") from err
    return sorted((p for p in dirs if pattern is None or re.fullmatch(pattern, p.name)),
                  key=_natural)


def folder_job(root: Path, out: Path, clip: Path, pattern: re.Pattern[str],
               rename: Callable[[str], str] = lambda name: name,
               fps: float = 0.0) -> ClipJob | None:
    """The job of the frame folder ``clip`` (frames matching ``pattern``), or None without
    frames; its output folder is ``out`` / (``clip`` relative to ``root``)."""
    index = index_frames(clip, pattern)
    if not index:
        return None
    frames = tuple(index[n] for n in sorted(index))
    rel = clip.relative_to(root)
    return ClipJob(rel.as_posix(), clip, out / rel, frames,
                   tuple(rename(f.name) for f in frames), fps)
