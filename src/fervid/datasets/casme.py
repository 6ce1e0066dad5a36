"""CASME (I), as released: frames ``CASME_raw_selected/sub01/EP01_12/EP01_12-73.jpg`` (or the
two section folders ``CASME_A/Section A/sub01/...`` and ``CASME_B/Section B/sub08/...``, or the
cropped set ``Cropped/sub01/EP01_12/reg_EP01_12-73.jpg``) plus the coding sheet.

No real sheet was tried: this reader follows the release's sheet as read by others, in the
form ``CASME-coded-20190721.xls`` holds it (and each section's ``Section A.xls``/``Section
B.xls``): ``Subject | Filename | (blank) | OnsetF | ApexF1 | ApexF2 | OffsetF | (blank) | Onset |
Total | AU | Emotion``, 193 rows. Sources: MEB (github.com/tvaranka/meb,
``meb/datasets/datasets.py``, class ``Casme``: columns renamed ``OnsetF, ApexF1, OffsetF,
Emotion``, AUs from ``AU``, frames under ``sub{subject:02d}/{Filename}/``; 189 samples in its
copy); the release's sheet and notes as xvrgill/yt-emotion-detection shows them
(``notebooks/casme_overview.ipynb``: 193 rows; "Amusement (in FG2013 paper) was replaced with
happiness"; AU4 alone is labelled "tense"); and readers of the raw release's two sections
(``CASME_A/Section A/``, ``CASME_B/Section B/``; frames ``<clip>-<N>.jpg`` or ``img<N>.jpg``).

- The apex is ``ApexF1``, the first frame of the apex phase (as MEB reads it). ``ApexF2``, the
  last apex frame, is blank or ``\\`` in a third of the rows and is not used. An ``ApexF1``
  left blank, ``/`` or ``\\`` becomes the middle frame, with an :class:`AnnotationWarning`.
- Emotions: happiness, sadness, disgust, surprise, contempt, fear, repression, tense (a sheet's
  ``amusement`` reads as happiness).
- Ids: dataset ``'casme'``, subject ``'sub01'`` (the sheet's number, as the folders write it),
  clip the sheet's Filename. 60 fps.
- The sheet ships as an Excel 97-2003 ``.xls``; fervid reads ``.xlsx``, so save it as
  ``.xlsx`` first. Either section sheet alone reads that section.

MEB corrects the onset/offset of five rows of its copy against the frame folders; such rows
are reported here as missing frames (see :mod:`fervid.datasets.errata`).

The helpers :func:`coded_table`, :func:`read_coded_sheet`, :func:`class_labels` and
:func:`release_folder` are shared by
the other sheet-coded readers (4DME, MMEW, CAS(ME)²'s cut samples).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from fervid.datasets.clip_jobs import subdirs
from fervid.datasets.errata import apply_errata
from fervid.datasets.frames import (
    frame_run,
    index_frames,
    missing_frames_problem,
    protocol_labels,
    release_table,
)
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    AnnotationWarning,
    check_known,
    check_protocol,
    clean_text,
    padded_number,
    read_sheet,
    require_dir,
    tidy_clip_rows,
)
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "casme"
#: The release as people write it (in warnings and :data:`fervid.datasets.errata.ERRATA`).
TITLE = "CASME"
SHEET = "CASME-coded-20190721.xls"
FPS = 60.0

SHEET_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetF",
                 "apex": "ApexF1", "offset": "OffsetF", "emotion": "Emotion"}
AU_COLUMN = "AU"

#: The eight sheet emotions, the ``all`` protocol's classes.
CASME_EMOTIONS = ("happiness", "disgust", "repression", "surprise", "tense", "sadness", "fear",
                  "contempt")

#: MEGC's three classes, for every micro-expression set read here: negative = anger, contempt,
#: disgust, fear, sadness, repression (and a set's own ``negative``); positive = happiness;
#: surprise. Everything else (others, tense) is left out.
TO_3CLASS = {**dict.fromkeys(("anger", "contempt", "disgust", "fear", "sadness", "repression",
                              "negative"), "negative"),
             "happiness": "positive", "positive": "positive", "surprise": "surprise"}

#: Protocol name -> class names, in label order.
CASME_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "3class": PROTOCOL_CLASSES["3class"],
    "all": CASME_EMOTIONS,
}

#: ``EP01_12-73.jpg`` and ``EP01_5-073.jpg`` (raw), ``reg_EP01_12-73.jpg`` (cropped); some
#: copies name them ``img73.jpg``. The last number is the frame.
FRAME = re.compile(r"(?:reg_)?(?:.*-|img)(\d+)\.jpe?g", re.IGNORECASE)
SUBJECT_DIR = r"sub\d+"


# --- Shared by the sheet-coded readers -------------------------------------------------------

def release_folder(root: Path, inner: Sequence[str], holds_clips: Callable[[Path], bool],
                   what: str) -> Path:
    """``root`` when ``holds_clips(root)``, else the first of ``root/inner`` that does (the
    release folder given instead of its frame folder); ``root`` when none does, so the
    caller's problems name it."""
    root = require_dir(root, what)
    if holds_clips(root):
        return root
    return next((root / name for name in inner
                 if (root / name).is_dir() and holds_clips(root / name)), root)


def coded_table(rows: pd.DataFrame, folders: Sequence[Path | str], protocol: str,
                protocols: dict[str, tuple[str, ...]], *, root: Path, dataset: str, what: str,
                fps: float, pattern: re.Pattern[str], file_name: str,
                problems: Sequence[str] = (), skip_missing: bool = False) -> SampleTable:
    """The sample table of tidy sheet rows, each sample's frames onset..offset from its clip
    folder, labelled under ``protocol`` by :func:`class_labels`.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``subject, clip, onset, apex, offset, emotion, au`` per sample.
    folders : sequence of Path or str
        Each row's clip folder, or the problem text where none was found.
    protocol, protocols : str, dict
        The protocol read, and the release's protocols (name -> class names).
    root : Path
        The frame folder, named in the error.
    dataset, what : str
        The samples' dataset name; the release as people name it (in warnings).
    fps : float
        Frame rate of every sample.
    pattern, file_name : re.Pattern, str
        The frame file names (last group the frame number); how problems show them.
    problems : sequence of str
        Problems the caller found already, raised with these (a
        :class:`~fervid.samples.ClipProblem` drops its clip under ``skip_missing``).
    skip_missing : bool
        Leave out the clips without a folder or with frames missing, listed in ``skipped``
        (:func:`~fervid.datasets.frames.release_table`).

    Returns
    -------
    SampleTable
        One sample per row. A folder that lacks some of onset..offset but holds exactly that
        many consecutively numbered frames is the clip numbered its own way: its frames are
        taken in order, with one :class:`AnnotationWarning` for all such folders.

    Raises
    ------
    DatasetFormatError
        Naming ``root`` and listing every absent folder and frame.
    """
    labels = class_labels(rows, protocol, protocols, dataset)
    samples: list[Sample] = []
    problems = list(problems)
    renumbered: list[str] = []
    for row, folder, label in zip(rows.itertuples(index=False), folders, labels, strict=True):
        where = f"{row.subject}/{row.clip}"
        if isinstance(folder, str):
            problems.append(ClipProblem(f"{where}: {folder}", dataset, row.subject, row.clip))
            continue
        index = index_frames(folder, pattern)
        if index is None:
            problems.append(ClipProblem(f"{where}: clip folder missing ({folder.name})",
                                        dataset, row.subject, row.clip))
            continue
        onset, offset = int(row.onset), int(row.offset)
        frames, missing = frame_run(index, onset, offset)
        if missing and len(index) == offset - onset + 1 == max(index) - min(index) + 1:
            frames, missing = tuple(index[n] for n in sorted(index)), []
            renumbered.append(f"{where} ({min(index)}..{max(index)} for {onset}..{offset})")
        if missing:
            problems.append(ClipProblem(missing_frames_problem(
                where, missing, offset - onset + 1, file_name), dataset, row.subject, row.clip))
            continue
        samples.append(Sample(dataset, row.subject, row.clip, onset, int(row.apex), offset,
                              row.emotion, label, frames, au=row.au, fps=fps))
    if renumbered:
        warnings.warn(f"{what}: {len(renumbered)} clip folder(s) number their frames apart from "
                      f"the sheet, each holding exactly its onset..offset count, so their frames "
                      f"are taken in order: {', '.join(renumbered[:5])}"
                      + (" ..." if len(renumbered) > 5 else ""), AnnotationWarning, stacklevel=3)
    return release_table(root, samples, problems, protocols[protocol], protocol,
                         skip_missing=skip_missing)


def au_strings(column: pd.Series) -> pd.Series:
    """A sheet's AU cells as text (``4+7``, ``12`` for the number 12), ``''`` where blank."""
    return clean_text(column).fillna("").astype(object)


def read_coded_sheet(sheet: Path, title: str, columns: dict[str, str], au_column: str,
                     subject_id: Callable[[str], str] = str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A coding sheet with a header row, read, corrected by the errata table
    (:func:`fervid.datasets.errata.apply_errata`) and tidied (:func:`tidy_clip_rows`).

    An apex written ``\\`` (CASME's mark for one not coded) counts as not annotated, like a
    blank or ``/``.

    Returns
    -------
    table, rows : pandas.DataFrame, pandas.DataFrame
        The sheet as read (corrected), and its tidy rows with ``au`` the AU text.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: see :func:`~fervid.datasets.sheets.read_sheet` and
        :func:`~fervid.datasets.sheets.tidy_clip_rows`.
    """
    sheet = Path(sheet)
    table, _ = apply_errata(title, sheet.name, read_sheet(sheet, [*columns.values(), au_column]))
    table[columns["apex"]] = table[columns["apex"]].map(
        lambda v: "/" if isinstance(v, str) and v.strip() == "\\" else v)
    rows = tidy_clip_rows(sheet, table, columns, subject_id, title)
    rows["au"] = au_strings(table[au_column])
    return table, rows


def class_labels(rows: pd.DataFrame, protocol: str, protocols: dict[str, tuple[str, ...]],
                 dataset: str) -> list[int | None]:
    """Labels of tidy rows' emotions under ``protocol`` (one of ``protocols``): MEGC's grouping
    (:data:`TO_3CLASS`) for the ``3class`` protocols, the emotion itself for the others;
    ``None`` outside the protocol's classes."""
    check_protocol(protocol, protocols, dataset)
    classes = protocols[protocol]
    to_class = TO_3CLASS if protocol.startswith("3class") else {c: c for c in classes}
    return protocol_labels(rows["emotion"], to_class, classes)


# --- CASME ------------------------------------------------------------------------------------

def read_casme_sheet(sheet: Path) -> pd.DataFrame:
    """The CASME coding sheet (or one section's sheet) as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated, au``, one row
        per sample in sheet order, subjects ``'sub01'``.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: an ``.xls`` file, missing columns, blank or non-integer values,
        unknown emotions, apexes outside onset..offset, repeated clips.
    """
    sheet = Path(sheet)
    if sheet.suffix.lower() == ".xls" and sheet.is_file():
        raise DatasetFormatError(sheet, ["an Excel 97-2003 .xls workbook, which fervid does not "
                                         "read: open it and save it as .xlsx, then pass that"])
    _, rows = read_coded_sheet(sheet, TITLE, SHEET_COLUMNS, AU_COLUMN, padded_number(2, "sub"))
    rows["emotion"] = rows["emotion"].replace({"amusement": "happiness"})
    check_known(sheet, rows, "emotion", CASME_EMOTIONS, SHEET_COLUMNS["emotion"])
    return rows


def subject_folders(root: Path) -> tuple[dict[str, Path], list[str]]:
    """The ``subNN`` folders under ``root``, itself or up to two levels down (the section
    folders ``CASME_A/Section A/``), keyed ``'sub01'``; and the problems (a subject twice)."""
    levels = [[root]]
    for _ in range(2):
        levels.append([d for parent in levels[-1] for d in subdirs(parent)
                       if not re.fullmatch(SUBJECT_DIR, d.name, re.IGNORECASE)])
    found: dict[str, Path] = {}
    problems: list[str] = []
    for level in levels:
        for folder in (s for parent in level for s in subdirs(parent)
                       if re.fullmatch(SUBJECT_DIR, s.name, re.IGNORECASE)):
            key = f"sub{int(folder.name[3:]):02d}"
            if key in found:
                problems.append(f"subject {key} has two folders: {found[key]} and {folder}")
            found.setdefault(key, folder)
        if found:
            break
    return found, problems


def read_casme(root: Path, sheet: Path, protocol: str = "all", *,
               skip_missing: bool = False) -> SampleTable:
    """Read CASME (I) as shipped.

    Parameters
    ----------
    root : Path
        The folder holding the ``subNN/`` folders (``CASME_raw_selected/``, ``Cropped/``), or
        one holding the section folders (``CASME_A/Section A/subNN``, ``CASME_B/...``).
    sheet : Path
        The coding sheet saved as ``.xlsx`` (``CASME-coded-20190721``, or one section's).
    protocol : {'all', '3class'}
        ``all``: the eight sheet emotions (:data:`CASME_EMOTIONS`), every sample labelled.
        ``3class``: MEGC's negative (disgust, repression, sadness, fear, contempt), positive
        (happiness), surprise; tense is left out.
    skip_missing : bool
        Leave out the samples whose folders or frames are missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        One sample per sheet row, in sheet order; ``au`` the sheet's AU text, ``fps`` 60.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the sheet for its problems, or ``root`` listing every absent folder and frame.
    """
    check_protocol(protocol, CASME_PROTOCOLS, DATASET)
    root = require_dir(root, TITLE)
    rows = read_casme_sheet(sheet)
    subjects, problems = subject_folders(root)
    if not subjects:
        raise DatasetFormatError(root, ["no subNN/ subject folders here or two levels down: "
                                        "pass CASME_raw_selected/, Cropped/ or the folder "
                                        "holding CASME_A/ and CASME_B/"])
    folders = [subjects[s] / c if s in subjects else f"no {s}/ folder"
               for s, c in rows[["subject", "clip"]].itertuples(index=False)]
    return coded_table(rows, folders, protocol, CASME_PROTOCOLS, root=root, dataset=DATASET,
                       what=TITLE, fps=FPS, pattern=FRAME, file_name="<clip>-{N}.jpg",
                       problems=problems, skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_casme(request.root, request.sheet, request.protocol,
                      skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="sub01", layouts=("raw", "cropped"), protocols=("loso",), read=_read,
    classes=CASME_PROTOCOLS, sheet=SHEET, fps=FPS))
