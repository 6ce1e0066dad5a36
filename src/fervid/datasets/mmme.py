"""MMME: micro- and macro-expressions timed in seconds within each trial video.

Sheet ``coding_file.xlsx`` (``Sheet1``: ``Subject, Filename, Marker, OnsetTime, ApexTime,
OffsetTime, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion, Date, dif``):
944 expressions of 16 subjects (Excel shows 947 rows below the header: the last 3 are blank).
``Filename`` is the trial video (``angry_1_146_wangxiaomin_20230718.avi``); ``*Time`` are
seconds from its start. The ``*Frame`` columns are wall-clock stamps (``16-00-31-433-685``),
not frame numbers, and are not read; ``dif`` is not read either (it is the onset-to-apex
distance, in frames in some rows and in milliseconds in others).

Micro or macro: the sheet has no column saying which, so the field's definition is applied: a
micro-expression lasts at most 0.5 s, ``OffsetTime - OnsetTime <= 0.5`` (exact decimal
arithmetic; the release's own sample micro-expression clips all satisfy it). The 434 such rows
are read; the 510 macro-expressions are left out with one
:class:`~fervid.datasets.sheets.AnnotationWarning` giving the count.

Frames: ``<root>/<Subject>/<video stem>/<N>.jpg`` (or ``<root>/<video stem>/``): the trial
video's frames numbered from 0 (``ffmpeg -i angry_1_146_x.avi -start_number 0 %05d.jpg``); any
image whose name ends in N is accepted, and only the clip's frames need be on disk. Frame
numbers are ``round(time * fps)`` with ``fps`` = :data:`FPS`, 150: the camera's rate as the
coding file itself gives it (``dif`` / (``ApexTime - OnsetTime``) has median 151 over the rows
coded in frames, and the release's sample clips, ``codes/data/MEs/*_<rate>.avi`` in
github.com/Mac0504/MMME, name rates of 139-150). Some videos ran slower (one sample names 98):
pass ``fps`` to :func:`read_mmme` for a copy extracted at another rate.

Ids: dataset ``'mmme'``, subject the sheet's name (``'wangxiaomin'``), clip
``<video stem>_<onset frame>`` (``'angry_1_146_wangxiaomin_20230718_1814'``; a second row with
the same video and onset frame would get ``_2``; the released file has none). The sheet seems to
hold two coding passes: 52 pairs of micro-expressions of one video overlap with IoU >= 0.5; all
are kept, and a warning counts them. Emotions: angry, disgust, fear, happy, sad,
surprise, tense.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import pandas as pd

from fervid.datasets.class_names import canonical_class
from fervid.datasets.frames import (
    NUMBERED_IMAGE,
    frame_run,
    index_frames,
    missing_frames_problem,
    protocol_labels,
    release_table,
)
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    AnnotationWarning,
    bad_values,
    check_known,
    check_protocol,
    clean_text,
    read_sheet,
    require_dir,
)
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "mmme"
SHEET = "coding_file.xlsx"
#: Frames per second of the trial videos (see the module docstring for the source).
FPS = 150.0
#: The longest micro-expression, in seconds.
MICRO_SECONDS = Fraction(1, 2)

TEXT_COLUMNS = {"subject": "Subject", "video": "Filename", "emotion": "Estimated Emotion"}
TIME_COLUMNS = {"onset": "OnsetTime", "apex": "ApexTime", "offset": "OffsetTime"}
AU_COLUMN = "Action Units"

#: The sheet's spellings.
MMME_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "tense")

MMME_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "7class": ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "tense"),
    "3class": PROTOCOL_CLASSES["3class"],
}
#: MEGC's grouping; ``tense`` is none of its classes and is left out, as ``others`` is.
TO_3CLASS = {"anger": "negative", "disgust": "negative", "fear": "negative",
             "sadness": "negative", "happiness": "positive", "surprise": "surprise"}


def _seconds(value: object) -> Fraction | None:
    # Exact: 24.33 s is 2433/100 s, so 0.5 s durations and .5 frame boundaries compare exactly.
    if value is None or isinstance(value, bool) or pd.isna(value):
        return None
    try:
        seconds = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        return None
    return seconds if seconds >= 0 else None


def frame_number(seconds: Fraction, fps: float) -> int:
    """``round(seconds * fps)``, halves rounded up."""
    return int(seconds * Fraction(str(fps)) + Fraction(1, 2))


def read_mmme_sheet(sheet: Path) -> pd.DataFrame:
    """Every row of the MMME coding file, checked.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, video, emotion, au, onset_s, apex_s, offset_s, micro``, one row per
        expression in sheet order; times as exact ``Fraction`` seconds, ``video`` the file's
        stem, ``emotion`` the canonical class name (``angry`` -> ``anger``; ``tense`` kept).

    Raises
    ------
    DatasetFormatError
        Naming the sheet and every blank cell, time that is not a non-negative number, bad
        order (onset <= apex <= offset) or unknown emotion, with its Excel row.
    """
    sheet = Path(sheet)
    table = read_sheet(sheet, [*TEXT_COLUMNS.values(), *TIME_COLUMNS.values(), AU_COLUMN])
    rows = pd.DataFrame({"excel_row": table["excel_row"]})
    problems: list[str] = []
    for key, column in TEXT_COLUMNS.items():
        rows[key] = clean_text(table[column])
        problems += [f"row {r}: {column} is blank" for r in rows.excel_row[rows[key].isna()]]
    for key, column in TIME_COLUMNS.items():
        rows[f"{key}_s"] = table[column].map(_seconds)
        problems += bad_values(table, column, rows[f"{key}_s"], "a time in seconds (>= 0)")
    if problems:
        raise DatasetFormatError(sheet, problems)
    order = [(r.onset_s <= r.apex_s <= r.offset_s) for r in rows.itertuples()]
    problems += [f"row {r.excel_row}: needs OnsetTime <= ApexTime <= OffsetTime, got "
                 f"{float(r.onset_s)}, {float(r.apex_s)}, {float(r.offset_s)}"
                 for r, ok in zip(rows.itertuples(), order, strict=True) if not ok]
    if problems:
        raise DatasetFormatError(sheet, problems)
    rows["emotion"] = rows["emotion"].str.lower()
    check_known(sheet, rows, "emotion", MMME_EMOTIONS, TEXT_COLUMNS["emotion"])
    rows["emotion"] = rows["emotion"].map(lambda e: canonical_class(e) or e)
    rows["video"] = rows["video"].map(lambda v: Path(v).stem)
    rows["au"] = clean_text(table[AU_COLUMN]).fillna("").to_numpy()
    rows["micro"] = [r.offset_s - r.onset_s <= MICRO_SECONDS for r in rows.itertuples()]
    return rows.reset_index(drop=True)


def micro_rows(rows: pd.DataFrame, fps: float = FPS) -> pd.DataFrame:
    """The micro-expression rows with frame numbers (``onset, apex, offset``) and clip ids,
    warning once with the count of macro-expressions left out."""
    macro = int((~rows["micro"]).sum())
    if macro:
        warnings.warn(f"MMME: {macro} of {len(rows)} rows left out: macro-expressions "
                      f"(OffsetTime - OnsetTime > {float(MICRO_SECONDS)} s)", AnnotationWarning,
                      stacklevel=2)
    out = rows[rows["micro"]].copy()
    for key in TIME_COLUMNS:
        out[key] = [frame_number(s, fps) for s in out[f"{key}_s"]]
    seen: dict[str, int] = {}
    clips = []
    for video, onset in zip(out["video"], out["onset"], strict=True):
        base = f"{video}_{onset}"
        seen[base] = seen.get(base, 0) + 1
        clips.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    out["clip"] = clips
    twice = overlapping_pairs(out)
    if twice:
        warnings.warn(f"MMME: {twice} pairs of micro-expressions of one video overlap (IoU >= "
                      f"0.5), perhaps one expression coded twice; all kept", AnnotationWarning,
                      stacklevel=2)
    return out.reset_index(drop=True)


def overlapping_pairs(rows: pd.DataFrame) -> int:
    """Pairs of rows of one video whose onset..offset frames overlap with IoU >= 0.5."""
    count = 0
    for _, group in rows.groupby("video"):
        spans = list(zip(group["onset"], group["offset"], strict=True))
        for i, (a0, a1) in enumerate(spans):
            for b0, b1 in spans[i + 1:]:
                shared = min(a1, b1) - max(a0, b0) + 1
                count += shared > 0 and 2 * shared >= max(a1, b1) - min(a0, b0) + 1
    return count


def mmme_labels(rows: pd.DataFrame, protocol: str) -> list[int | None]:
    """Labels of rows under ``protocol`` (``None`` outside it: ``tense`` under ``3class``)."""
    classes = MMME_PROTOCOLS[protocol]
    to_class = {c: c for c in classes} if protocol == "7class" else TO_3CLASS
    return protocol_labels(rows["emotion"], to_class, classes)


def mmme_samples(root: Path, rows: pd.DataFrame, labels: list[int | None],
                 fps: float = FPS) -> tuple[list[Sample], list[str]]:
    """Samples for micro ``rows`` with their frames under ``root``, and the problems found."""
    samples: list[Sample] = []
    problems: list[str] = []
    for row, label in zip(rows.itertuples(index=False), labels, strict=True):
        where = f"{row.subject}/{row.clip} (sheet row {row.excel_row})"
        places = (root / row.subject / row.video, root / row.video)
        folder = next((p for p in places if p.is_dir()), None)
        index = None if folder is None else index_frames(folder, NUMBERED_IMAGE)
        if index is None:
            problems.append(ClipProblem(f"{where}: frame folder {row.subject}/{row.video} "
                                        f"missing", DATASET, row.subject, row.clip))
            continue
        frames, missing = frame_run(index, int(row.onset), int(row.offset))
        if missing:
            total = int(row.offset) - int(row.onset) + 1
            problems.append(ClipProblem(missing_frames_problem(where, missing, total, "N.jpg"),
                                        DATASET, row.subject, row.clip))
            continue
        samples.append(Sample(DATASET, row.subject, row.clip, int(row.onset), int(row.apex),
                              int(row.offset), row.emotion, label, frames, au=row.au, fps=fps))
    return samples, problems


def read_mmme(root: Path, sheet: Path, protocol: str = "7class", fps: float = FPS, *,
              skip_missing: bool = False) -> SampleTable:
    """Read MMME's micro-expressions.

    Parameters
    ----------
    root : Path
        The folder holding ``<Subject>/<video stem>/`` frame folders.
    sheet : Path
        ``coding_file.xlsx``.
    protocol : {'7class', '3class'}
        ``7class``: anger, disgust, fear, happiness, sadness, surprise, tense (434 clips).
        ``3class``: negative (anger, disgust, fear, sadness), positive, surprise (tense left
        out).
    fps : float
        Frame rate of the extracted frames.
    skip_missing : bool
        Leave out the micro-expressions whose folders or frames are missing, listed in
        ``skipped``.

    Returns
    -------
    SampleTable
        The micro-expressions in sheet order; ``au`` the sheet's ``Action Units``.

    Raises
    ------
    OptionError
        Unknown protocol.
    DatasetFormatError
        The sheet's problems, or ``root`` listing every absent folder and frame.
    """
    check_protocol(protocol, MMME_PROTOCOLS, DATASET)
    root = require_dir(root, "MMME")
    rows = micro_rows(read_mmme_sheet(sheet), fps)
    samples, problems = mmme_samples(root, rows, mmme_labels(rows, protocol), fps)
    return release_table(root, samples, problems, MMME_PROTOCOLS[protocol], protocol,
                         skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_mmme(request.root, request.sheet, request.protocol,
                     skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="wangxiaomin", layouts=("raw",), protocols=("loso",), read=_read,
    classes=MMME_PROTOCOLS, sheet=SHEET, fps=FPS))
