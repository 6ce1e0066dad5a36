"""CAS(ME)³ Part A (and Part C's micro-expressions), as released.

Part A frames: ``<root>/spNO.1/a/color/355.jpg`` (``<subject>/<task letter>/color/<index>.jpg``;
depth maps in ``depth/`` are not read), coded in ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``
(sheet ``label``: ``Subject, Filename, Onset, Apex, Offset, AU, Objective class, emotion``;
860 micro-expressions of 94 subjects, 30 fps). ``Filename`` is the task letter, and one task
holds several micro-expressions, so the letter repeats within a subject.

Ids: dataset ``'casme3'``, subject the sheet's ``spNO.1``, clip the task letter made unique
within its subject in sheet order: the first ``a`` is ``'a'``, the second ``'a_2'``, the third
``'a_3'`` (letters compared ignoring case; a sheet in the same order gives the same ids). The
task folder is looked up as written, then ignoring case (the sheet writes ``J`` once).

Sheet errors: the v2 sheet's wrong cells are corrected from :mod:`fervid.datasets.errata` (each
with an :class:`~fervid.datasets.sheets.AnnotationWarning`), so all 860 rows are read.

Exception lists: the release's ``exception/`` folder is looked for in ``<root>/exception``, then
beside the sheet, then beside the sheet's folder (the authors' repository keeps the sheet in
``annotation/partA/`` and the lists in ``exception/``); without it nothing is skipped.
Frames listed in ``error_info_damaged_image_partA.txt`` (they cannot be opened) are not read:
each is replaced by its clip's nearest intact frame (the earlier one on a tie), so the clip keeps
its length and ``frames[apex - onset]`` stays the apex position; a damaged apex is replaced the
same way, and the warning says so. Frames in ``image_with_bad_quality_partA.txt`` open fine and
are kept; one warning counts the clips holding them.

Part C (``CAS(ME)3_part_C_ME.xlsx``, sheet ``mockCrimeME``: ``sub, count, onset, offset, au,
emotion``; 165 micro-expressions of 30 subjects, all micro) is read when that sheet is passed
instead: frames ``<root>/<sub, 2 digits>/<count>/color/<index>.jpg`` as MEB reads them, subject
``'01'``, clip the count; it codes no apex (the middle frame is used) and only the grouped
emotions negative, positive, surprise, others, so it has the ``4class`` and ``3class``
protocols only.
"""

from __future__ import annotations

import re
import warnings
from functools import partial
from pathlib import Path

import openpyxl
import pandas as pd

from fervid.datasets.class_names import canonical_class
from fervid.datasets.errata import CASME3_PART_A_SHEET, CASME3_TITLE, apply_errata
from fervid.datasets.frames import (
    index_frames,
    missing_frames_problem,
    protocol_labels,
    read_coded_release,
)
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    AnnotationWarning,
    check_known,
    clean_text,
    padded_number,
    read_sheet,
    tidy_clip_rows,
)
from fervid.errors import OptionError
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "casme3"
SHEET = CASME3_PART_A_SHEET
PART_C_SHEET = "CAS(ME)3_part_C_ME.xlsx"
#: Both parts were filmed at 30 fps (Li et al., TPAMI 2022).
FPS = 30.0

PART_A_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "Onset", "apex": "Apex",
                  "offset": "Offset", "emotion": "emotion"}
PART_C_COLUMNS = {"subject": "sub", "clip": "count", "onset": "onset", "apex": "apex",
                  "offset": "offset", "emotion": "emotion"}

#: The emotions as the sheets spell them (lower-cased; ``Others`` occurs three times).
PART_A_EMOTIONS = ("anger", "disgust", "fear", "happy", "sad", "surprise", "others")
PART_C_EMOTIONS = ("negative", "positive", "surprise", "others")

#: The paper's protocols: 7 emotions; negative (anger, disgust, fear, sadness), positive,
#: surprise, others; and the same without others (MEGC's three classes).
CASME3_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "7class": ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "others"),
    "4class": ("negative", "positive", "surprise", "others"),
    "3class": PROTOCOL_CLASSES["3class"],
}
TO_4CLASS = {"anger": "negative", "disgust": "negative", "fear": "negative",
             "sadness": "negative", "happiness": "positive", "surprise": "surprise",
             "others": "others", "negative": "negative", "positive": "positive"}
TO_3CLASS = {k: v for k, v in TO_4CLASS.items() if v != "others"}

FRAME = re.compile(r"(\d+)\.jpg", re.IGNORECASE)
DAMAGED_LIST = "error_info_damaged_image_partA.txt"
POOR_LIST = "image_with_bad_quality_partA.txt"
#: ``spNO.3 J 498.jpg  the image cannot open`` and ``.../spNO.138/a/color/1294.jpg``.
DAMAGED_LINE = re.compile(r"(\S+)\s+(\S+)\s+(\d+)\.jpg\b.*", re.IGNORECASE)
POOR_LINE = re.compile(r".*?([^/\\]+)[/\\]([^/\\]+)[/\\]color[/\\](\d+)\.jpg", re.IGNORECASE)

FrameSets = dict[tuple[str, str], set[int]]


def sheet_part(sheet: Path) -> str:
    """``'A'`` or ``'C'``: which part a sheet codes, from its worksheet names."""
    try:
        workbook = openpyxl.load_workbook(sheet, read_only=True)
    except Exception as err:  # missing, not a workbook, damaged: read_sheet words it
        if not Path(sheet).is_file():
            raise DatasetFormatError(sheet, ["sheet file does not exist"]) from err
        raise DatasetFormatError(sheet, [f"cannot read as an Excel sheet: {err}"]) from err
    names = workbook.sheetnames
    workbook.close()
    return "C" if "mockCrimeME" in names else "A"


def unique_clip_ids(subjects: pd.Series, letters: pd.Series) -> list[str | None]:
    """Task letters made unique within each subject, in order: ``a``, ``a_2``, ``a_3``."""
    seen: dict[tuple[str, str], int] = {}
    out: list[str | None] = []
    for subject, letter in zip(subjects, letters, strict=True):
        if pd.isna(letter):
            out.append(None)
            continue
        n = seen[(subject, letter.lower())] = seen.get((subject, letter.lower()), 0) + 1
        out.append(letter if n == 1 else f"{letter}_{n}")
    return out


def read_casme3_sheet(sheet: Path) -> pd.DataFrame:
    """A CAS(ME)³ sheet (Part A or Part C, told by its worksheet) as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, task, onset, apex, offset, emotion, au, part``, one row per
        micro-expression in sheet order; ``task`` is the frame folder (Part A's letter, Part C's
        count), ``emotion`` the canonical class name (``happy`` -> ``happiness``). The
        corrections applied are in ``rows.attrs['errata']``.

    Raises
    ------
    DatasetFormatError
        Naming the sheet and every blank or non-integer cell, bad frame order or unknown
        emotion, with its Excel row.
    """
    sheet = Path(sheet)
    part = sheet_part(sheet)
    if part == "C":
        columns, emotions = PART_C_COLUMNS, PART_C_EMOTIONS
        table = read_sheet(sheet, ["sub", "count", "onset", "offset", "au", "emotion"],
                           "mockCrimeME")
        applied: list = []
        # No apex is coded: the middle frame, written in so the frame checks cover it.
        onset, offset = (pd.to_numeric(table[c], errors="coerce") for c in ("onset", "offset"))
        table["apex"] = ((onset + offset) // 2).map(lambda v: "/" if pd.isna(v) else int(v))
        table["count"] = clean_text(table["count"])
        subject_id, au = padded_number(2), "au"
    else:
        columns, emotions, au = PART_A_COLUMNS, PART_A_EMOTIONS, "AU"
        names = [*PART_A_COLUMNS.values(), "AU"]
        try:
            table = read_sheet(sheet, names, "label")
        except DatasetFormatError:
            table = read_sheet(sheet, names)  # a sheet saved without the worksheet's name
        table, applied = apply_errata(CASME3_TITLE, sheet.name, table)
        subject_id = str
    task = clean_text(table[columns["clip"]])
    subjects = clean_text(table[columns["subject"]])
    table[columns["clip"]] = unique_clip_ids(subjects, task)
    rows = tidy_clip_rows(sheet, table, columns, subject_id, CASME3_TITLE)
    check_known(sheet, rows, "emotion", emotions, columns["emotion"])
    rows["emotion"] = rows["emotion"].map(canonical_class)
    rows["task"] = task.to_numpy()
    rows["au"] = clean_text(table[au]).fillna("").to_numpy()
    rows["part"] = part
    rows.attrs["errata"] = applied
    if part == "C":
        warnings.warn(f"{CASME3_TITLE} Part C codes no apex: the middle frame of each of its "
                      f"{len(rows)} micro-expressions is used", AnnotationWarning, stacklevel=2)
    return rows


def casme3_labels(rows: pd.DataFrame, protocol: str) -> list[int | None]:
    """Labels of tidy sheet rows under ``protocol`` (``None`` outside it).

    Raises
    ------
    OptionError
        ``7class`` for Part C, which codes only the grouped emotions.
    """
    if protocol == "7class" and (rows["part"] == "C").any():
        raise OptionError("CAS(ME)³ Part C codes only negative, positive, surprise and others: "
                          "use protocol 4class or 3class")
    to_class = {"7class": {c: c for c in CASME3_PROTOCOLS["7class"]}, "4class": TO_4CLASS,
                "3class": TO_3CLASS}[protocol]
    return protocol_labels(rows["emotion"], to_class, CASME3_PROTOCOLS[protocol])


def find_exception_dir(root: Path, sheet: Path | None) -> Path | None:
    """The release's ``exception/`` folder: in ``root``, beside the sheet, or one level up."""
    places = [Path(root)]
    if sheet is not None:
        places += [Path(sheet).parent, Path(sheet).parent.parent]
    return next((p / "exception" for p in places if (p / "exception").is_dir()), None)


def _read_list(path: Path, pattern: re.Pattern[str]) -> FrameSets:
    found: FrameSets = {}
    if not path.is_file():
        return found
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = pattern.fullmatch(line.strip())
        if match:
            subject, task, number = match.groups()
            found.setdefault((subject, task.lower()), set()).add(int(number))
        elif line.strip():
            bad += 1
    if bad:
        warnings.warn(f"{path}: {bad} line(s) name no frame and were ignored",
                      AnnotationWarning, stacklevel=3)
    return found


def read_exceptions(folder: Path | None) -> tuple[FrameSets, FrameSets]:
    """``(damaged, poor)``: frame numbers per ``(subject, lower-case task)`` from the release's
    two lists in ``folder``; empty when ``folder`` is None or a list is absent."""
    if folder is None:
        return {}, {}
    return (_read_list(folder / DAMAGED_LIST, DAMAGED_LINE),
            _read_list(folder / POOR_LIST, POOR_LINE))


def _task_dir(root: Path, subject: str, task: str, listings: dict[Path, list[Path]]) -> Path:
    exact = root / subject / task
    if exact.is_dir():
        return exact
    parent = root / subject
    if parent not in listings:
        listings[parent] = [p for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    return next((p for p in listings[parent] if p.name.lower() == task.lower()), exact)


def _nearest_intact(n: int, onset: int, offset: int, usable: set[int]) -> int | None:
    for step in range(1, offset - onset + 1):
        for m in (n - step, n + step):
            if onset <= m <= offset and m in usable:
                return m
    return None


def casme3_samples(root: Path, rows: pd.DataFrame, labels: list[int | None],
                   exceptions: tuple[FrameSets, FrameSets] = ({}, {}),
                   ) -> tuple[list[Sample], list[str]]:
    """Samples for tidy ``rows`` with their frames under ``root``, and the problems found
    (absent folders, absent frames that no list marks as damaged)."""
    damaged, poor = exceptions
    samples: list[Sample] = []
    problems: list[str] = []
    listings: dict[Path, list[Path]] = {}
    poor_clips = poor_frames = 0
    for row, label in zip(rows.itertuples(index=False), labels, strict=True):
        where = f"{row.subject}/{row.clip} (sheet row {row.excel_row})"
        ids = (DATASET, row.subject, row.clip)  # a problem of this clip alone
        folder = _task_dir(root, row.subject, row.task, listings) / "color"
        index = index_frames(folder, FRAME)
        if index is None:
            problems.append(ClipProblem(f"{where}: frame folder {row.subject}/{row.task}/color "
                                        f"missing", *ids))
            continue
        onset, apex, offset = int(row.onset), int(row.apex), int(row.offset)
        bad = damaged.get((row.subject, row.task.lower()), set())
        numbers = range(onset, offset + 1)
        missing = [n for n in numbers if n not in index and n not in bad]
        if missing:
            problems.append(ClipProblem(missing_frames_problem(where, missing, len(numbers),
                                                               "N.jpg"), *ids))
            continue
        usable = {n for n in numbers if n in index and n not in bad}
        hit = [n for n in numbers if n in bad]
        if hit and not usable:
            problems.append(ClipProblem(f"{where}: every frame is listed as damaged", *ids))
            continue
        use = {n: _nearest_intact(n, onset, offset, usable) if n in bad else n for n in numbers}
        if hit:
            apex_note = (f"; the apex {apex} is among them, its image is frame {use[apex]}"
                         if apex in bad else "")
            warnings.warn(f"{CASME3_TITLE} {where}: {len(hit)} frame(s) listed as damaged not "
                          f"read, each replaced by its nearest intact frame{apex_note}",
                          AnnotationWarning, stacklevel=2)
        low = poor.get((row.subject, row.task.lower()), set()) & set(numbers)
        poor_clips, poor_frames = poor_clips + bool(low), poor_frames + len(low)
        samples.append(Sample(DATASET, row.subject, row.clip, onset, apex, offset, row.emotion,
                              label, tuple(index[use[n]] for n in numbers), au=row.au,
                              fps=FPS))
    if poor_clips:
        warnings.warn(f"{CASME3_TITLE}: {poor_clips} clip(s) hold {poor_frames} frame(s) the "
                      f"release lists as poor quality ({POOR_LIST}); kept", AnnotationWarning,
                      stacklevel=2)
    return samples, problems


def read_casme3(root: Path, sheet: Path, protocol: str = "7class", *,
                skip_missing: bool = False) -> SampleTable:
    """Read CAS(ME)³ Part A (or Part C) as shipped.

    Parameters
    ----------
    root : Path
        The folder holding the ``spNO.N/`` subject folders (Part C: the ``NN/`` folders).
    sheet : Path
        ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx``, or Part C's ``CAS(ME)3_part_C_ME.xlsx``.
    protocol : {'7class', '4class', '3class'}
        ``7class``: anger, disgust, fear, happiness, sadness, surprise, others (all 860).
        ``4class``: negative (anger, disgust, fear, sadness), positive, surprise, others (860).
        ``3class``: negative, positive, surprise (699).
    skip_missing : bool
        Leave out the micro-expressions whose frame folders or frames are missing (or every
        frame listed as damaged), listed in ``skipped``.

    Returns
    -------
    SampleTable
        Every sheet row in order; ``au`` the sheet's AU text, ``fps`` 30.

    Raises
    ------
    OptionError
        Unknown protocol, or ``7class`` for Part C.
    DatasetFormatError
        The sheet's problems, or ``root`` listing every absent folder and frame.
    """
    sheet = Path(sheet)
    samples = partial(casme3_samples,
                      exceptions=read_exceptions(find_exception_dir(Path(root), sheet)))
    return read_coded_release(root, sheet, protocol, dataset=DATASET, what="CAS(ME)³",
                              protocols=CASME3_PROTOCOLS, read_sheet=read_casme3_sheet,
                              labels=casme3_labels, samples=samples,
                              skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_casme3(request.root, request.sheet, request.protocol,
                       skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="spNO.1", layouts=("raw",), protocols=("loso",), read=_read,
    classes=CASME3_PROTOCOLS, sheet=SHEET, fps=FPS))
