"""Listing clip frames on disk: only names are read, never pixels, so checks stay fast."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from fervid.datasets.sheets import check_protocol, require_dir
from fervid.errors import PathNotFoundError, path_error
from fervid.samples import ClipProblem, DatasetFormatError, Sample, SampleTable


def index_frames(clip_dir: Path, pattern: re.Pattern[str]) -> dict[int, Path] | None:
    """Map frame number to file for the names in ``clip_dir`` matching ``pattern``.

    ``pattern``'s last group is the frame number. Numbers are compared as ints, so ``img9`` comes
    before ``img10`` whatever the string order.

    Returns
    -------
    dict or None
        ``None`` when ``clip_dir`` is not a folder.

    Raises
    ------
    UserPathError
        ``clip_dir`` is a folder that cannot be listed (no permission).
    """
    try:
        entries = list(os.scandir(clip_dir))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise path_error(clip_dir, err, "frame folder") from err
    found: dict[int, Path] = {}
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match:
            found[int(match.group(match.lastindex or 0))] = Path(entry.path)
    return found


#: Any image file whose name ends in a frame number: ``img12.jpg``, ``006_05562.jpg``, ``001.png``.
NUMBERED_IMAGE = re.compile(r".*?(\d+)\.(?:jpe?g|png|bmp)", re.IGNORECASE)


def numbered_images(folder: Path) -> list[Path]:
    """The numbered image files of ``folder`` in numeric order (at least two).

    Raises
    ------
    PathNotFoundError
        ``folder`` is not a folder.
    DatasetFormatError
        It holds fewer than two numbered images.
    """
    index = index_frames(Path(folder), NUMBERED_IMAGE)
    if index is None:
        raise PathNotFoundError(f"{folder}: not a folder of frames")
    if len(index) < 2:
        raise DatasetFormatError(folder, [f"needs at least 2 numbered image files (e.g. "
                                          f"img1.jpg), found {len(index)}"])
    return [index[n] for n in sorted(index)]


def frame_run(index: dict[int, Path], onset: int,
              offset: int) -> tuple[tuple[Path, ...], list[int]]:
    """The files for ``onset..offset`` (inclusive) in temporal order, and the missing numbers."""
    numbers = range(onset, offset + 1)
    missing = [n for n in numbers if n not in index]
    if missing:
        return (), missing
    return tuple(index[n] for n in numbers), []


def describe_numbers(numbers: list[int], limit: int = 6) -> str:
    """Compact text for sorted frame numbers: ``'50-52, 60'``, cut after ``limit`` runs."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], n)
        else:
            runs.append((n, n))
    parts = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit]]
    if len(runs) > limit:
        parts.append("...")
    return ", ".join(parts)


def missing_frames_problem(clip: str, missing: list[int], total: int, name: str) -> str:
    """The problem line for a clip with absent frame files; ``name`` shows the file pattern."""
    return (f"{clip}: {len(missing)} of {total} frames missing ({name} for N in "
            f"{describe_numbers(missing)})")


def build_samples(root: Path, rows: pd.DataFrame, dataset: str, pattern: re.Pattern[str],
                  file_name: str, labels: Sequence[int | None]) -> tuple[list[Sample], list[str]]:
    """Samples for sheet rows whose frames live in ``root/subject/clip/``.

    Parameters
    ----------
    root : Path
        The release folder holding the subject folders.
    rows : pandas.DataFrame
        Tidy sheet rows: ``subject``, ``clip``, ``onset``, ``apex``, ``offset``, ``emotion``.
    dataset : str
        Dataset name for the samples.
    pattern : re.Pattern
        Frame file names; the last group is the frame number.
    file_name : str
        The pattern as people read it (``img{N}.jpg``), for problem messages.
    labels : sequence of int or None
        One label per row.

    Returns
    -------
    samples, problems : list of Sample, list of str
        Problems (absent clip folders, absent frames: each a :class:`ClipProblem`) are collected,
        not raised, so the caller reports all of them at once (:func:`release_table`).
    """
    samples: list[Sample] = []
    problems: list[str] = []
    for row, label in zip(rows.itertuples(index=False), labels, strict=True):
        where = f"{row.subject}/{row.clip}"
        index = index_frames(root / row.subject / row.clip, pattern)
        if index is None:
            problems.append(ClipProblem(f"{where}: clip folder missing", dataset, row.subject,
                                        row.clip))
            continue
        frames, missing = frame_run(index, int(row.onset), int(row.offset))
        if missing:
            total = int(row.offset) - int(row.onset) + 1
            problems.append(ClipProblem(missing_frames_problem(where, missing, total, file_name),
                                        dataset, row.subject, row.clip))
            continue
        samples.append(Sample(dataset, row.subject, row.clip, int(row.onset), int(row.apex),
                              int(row.offset), row.emotion, label, frames,
                              au=getattr(row, "au", "")))
    return samples, problems


def protocol_labels(emotions: pd.Series, to_class: dict[str, str],
                    classes: Sequence[str]) -> list[int | None]:
    """Class index per emotion through ``to_class`` (emotion -> class name); ``None`` outside."""
    index = {name: i for i, name in enumerate(classes)}
    mapped = emotions.map(to_class).map(index)
    return [None if pd.isna(v) else int(v) for v in mapped]


def release_table(root: Path, samples: Sequence[Sample], problems: Sequence[str],
                  classes: tuple[str, ...], protocol: str, *,
                  skip_missing: bool = False) -> SampleTable:
    """The table of a release's ``samples``, or the error listing every problem found.

    With ``skip_missing``, the clips with problems of their own (:class:`ClipProblem`: a
    folder or frames missing or damaged) are left out and listed in ``skipped``; problems of
    the release as a whole still raise.

    Raises
    ------
    DatasetFormatError
        Naming ``root``: every problem (without ``skip_missing``; its message then says how to
        leave the clips out); the release-wide ones (with it); or, with it, that no clip is
        left.
    """
    clip_problems = [p for p in problems if isinstance(p, ClipProblem)]
    if not skip_missing and problems:
        raise DatasetFormatError(root, problems)
    if len(clip_problems) < len(problems):
        raise DatasetFormatError(root, [p for p in problems if not isinstance(p, ClipProblem)])
    dropped = {(p.dataset, p.subject, p.clip) for p in clip_problems}
    kept = [s for s in samples if (s.dataset, s.subject, s.clip) not in dropped]
    if dropped and not kept:
        raise DatasetFormatError(root, [f"no clip left to read: all {len(dropped)} clip(s) "
                                        f"have missing or damaged frames (first: "
                                        f"{clip_problems[0]})"])
    first = {p.name: p for p in reversed(clip_problems)}  # one problem per clip: its first
    return SampleTable(kept, classes, protocol,
                       tuple(p for p in clip_problems if first[p.name] is p))


def read_coded_release(root: Path, sheet: Path, protocol: str, *, dataset: str, what: str,
                       protocols: dict[str, tuple[str, ...]],
                       read_sheet: Callable[[Path], pd.DataFrame],
                       labels: Callable[[pd.DataFrame, str], list[int | None]],
                       samples: Callable[..., tuple[list[Sample], list[str]]],
                       skip_missing: bool = False) -> SampleTable:
    """The sample table of a release coded in a sheet (CASME II, SAMM): the sheet is read with
    ``read_sheet``, labelled with ``labels(rows, protocol)``, and ``samples(root, rows,
    labels)`` builds one sample per row; every problem found is raised at once, or with
    ``skip_missing`` the clips with missing or damaged frames are left out
    (:func:`release_table`).

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the sheet for sheet problems, or ``root`` listing every absent clip folder and
        frame.
    """
    check_protocol(protocol, protocols, dataset)
    root = require_dir(root, what)
    rows = read_sheet(sheet)
    if rows.empty:
        raise DatasetFormatError(sheet, ["no clip rows below the header row"])
    found, problems = samples(root, rows, labels(rows, protocol))
    return release_table(root, found, problems, protocols[protocol], protocol,
                         skip_missing=skip_missing)
