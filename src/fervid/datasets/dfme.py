"""DFME (MEGC's micro-expression set since 2023): training, test A and test B, as released.

Sheets: ``training_full_with_AU.xlsx``, ``testA_full_with_AU.xlsx`` and
``testB_full_with_AU.xlsx`` side by side (``Sheet1``: ``Subject, Filename, OnsetFrame,
ApexFrame, OffsetFrame, Emotion, EmotionId, Fps, AU``; 1,856 / 474 / 299 clips of 176 / 42 / 41
subjects, none shared). The training sheet is the one passed; the two test sheets are read from
its folder, and a missing one is left out with an
:class:`~fervid.datasets.sheets.AnnotationWarning` (test labels may be released later).

Frames: one folder per clip named by ``Filename`` inside the split's folder, as the release's
archives unpack: ``<root>/train_data/sub0003_01/00109.png`` (also
``train_data/train_data/...``, which unzipping into a folder of the same name gives), and
``test_data_A/``, ``test_data_B/`` for the test splits; or every clip folder directly in
``<root>``. Frame N is any image file whose name ends in N (``00109.png``, ``109.jpg``); the
sheets count from 0.

Ids: dataset ``'dfme'``, subject ``'sub0003'``, clip ``'sub0003_01'``; ``Sample.split`` is
``'train'``, ``'testA'`` or ``'testB'``, ``Sample.fps`` the clip's ``Fps`` (200, 300 or 500).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

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
    as_ints,
    bad_values,
    check_known,
    check_protocol,
    clean_text,
    read_sheet,
    require_dir,
    tidy_clip_rows,
)
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "dfme"
SHEET = "training_full_with_AU.xlsx"

#: Split -> (sheet file, frame folder).
SPLITS: dict[str, tuple[str, str]] = {
    "train": (SHEET, "train_data"),
    "testA": ("testA_full_with_AU.xlsx", "test_data_A"),
    "testB": ("testB_full_with_AU.xlsx", "test_data_B"),
}

SHEET_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame",
                 "apex": "ApexFrame", "offset": "OffsetFrame", "emotion": "Emotion"}

#: The seven emotions in ``EmotionId`` order (0..6), the ``7class`` protocol's classes.
DFME_EMOTIONS = ("anger", "contempt", "disgust", "fear", "happiness", "sadness", "surprise")

DFME_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "7class": DFME_EMOTIONS,
    "3class": PROTOCOL_CLASSES["3class"],
}
TO_3CLASS = {"anger": "negative", "contempt": "negative", "disgust": "negative",
             "fear": "negative", "sadness": "negative", "happiness": "positive",
             "surprise": "surprise"}


def read_dfme_sheet(sheet: Path, split: str = "train") -> pd.DataFrame:
    """One DFME sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, fps, au, split``, one row per
        clip in sheet order.

    Raises
    ------
    DatasetFormatError
        Naming the sheet and every bad cell with its Excel row: blank or non-integer values,
        bad frame order, unknown emotions, an ``EmotionId`` that disagrees with ``Emotion``, a
        frame rate that is not a positive whole number.
    """
    sheet = Path(sheet)
    table = read_sheet(sheet, [*SHEET_COLUMNS.values(), "EmotionId", "Fps", "AU"])
    rows = tidy_clip_rows(sheet, table, SHEET_COLUMNS, str, "DFME")
    check_known(sheet, rows, "emotion", DFME_EMOTIONS, "Emotion")
    ids, fps = as_ints(table["EmotionId"]), as_ints(table["Fps"])
    problems = bad_values(table, "EmotionId", ids, "a whole number")
    problems += bad_values(table, "Fps", fps.where((fps > 0).fillna(False)),
                          "a positive whole number")
    expected = rows["emotion"].map({e: i for i, e in enumerate(DFME_EMOTIONS)})
    disagree = ids.notna() & (ids != expected).fillna(True)
    problems += [f"row {r}: EmotionId {i} disagrees with Emotion {e!r} (its id is "
                 f"{DFME_EMOTIONS.index(e)})" for r, i, e in
                 zip(rows.excel_row[disagree], ids[disagree], rows.emotion[disagree],
                     strict=True)]
    if problems:
        raise DatasetFormatError(sheet, problems)
    rows["fps"] = fps.astype(float).to_numpy()
    rows["au"] = clean_text(table["AU"]).fillna("").to_numpy()
    rows["split"] = split
    return rows


def read_dfme_sheets(sheet: Path) -> pd.DataFrame:
    """The training sheet ``sheet`` and the test sheets beside it, as one table of tidy rows
    (see :func:`read_dfme_sheet`), training first; absent test sheets are left out with a
    warning. Every sheet is checked before one error lists all their problems."""
    sheet = Path(sheet)
    tables, problems, absent = [], [], []
    for split, (name, _) in SPLITS.items():
        path = sheet if split == "train" else sheet.parent / name
        if split != "train" and not path.is_file():
            absent.append(name)
            continue
        try:
            tables.append(read_dfme_sheet(path, split))
        except DatasetFormatError as err:
            problems += [f"{err.path.name} {p}" for p in err.problems]
    if problems:
        raise DatasetFormatError(sheet.parent, problems)
    if absent:
        warnings.warn(f"DFME: {', '.join(absent)} not found beside {sheet.name}: read without "
                      f"{'that split' if len(absent) == 1 else 'those splits'}",
                      AnnotationWarning, stacklevel=2)
    rows = pd.concat(tables, ignore_index=True)
    clash = rows[rows.duplicated("clip", keep="first")]
    if len(clash):
        raise DatasetFormatError(sheet.parent, [f"{r.split} row {r.excel_row}: clip {r.clip} is "
                                                f"also in an earlier sheet"
                                                for r in clash.itertuples()])
    return rows


def dfme_labels(rows: pd.DataFrame, protocol: str) -> list[int | None]:
    """Labels of tidy rows under ``protocol`` (every clip is labelled under both)."""
    to_class = {e: e for e in DFME_EMOTIONS} if protocol == "7class" else TO_3CLASS
    return protocol_labels(rows["emotion"], to_class, DFME_PROTOCOLS[protocol])


def clip_folder(root: Path, split: str, clip: str) -> Path | None:
    """The frame folder of ``clip``: ``root/<split folder>[/<split folder>]/<clip>`` or
    ``root/<clip>``; None when none exists."""
    folder = SPLITS[split][1]
    places = (root / folder / folder / clip, root / folder / clip, root / clip)
    return next((p for p in places if p.is_dir()), None)


def dfme_samples(root: Path, rows: pd.DataFrame,
                 labels: list[int | None]) -> tuple[list[Sample], list[str]]:
    """Samples for tidy ``rows`` with their frames under ``root``, and the problems found."""
    samples: list[Sample] = []
    problems: list[str] = []
    for row, label in zip(rows.itertuples(index=False), labels, strict=True):
        where = f"{row.split} {row.clip}"
        folder = clip_folder(root, row.split, row.clip)
        index = None if folder is None else index_frames(folder, NUMBERED_IMAGE)
        if index is None:
            name = SPLITS[row.split][1]
            problems.append(ClipProblem(f"{where}: clip folder missing (looked in {name}/, "
                                        f"{name}/{name}/ and the root)", DATASET, row.subject,
                                        row.clip))
            continue
        frames, missing = frame_run(index, int(row.onset), int(row.offset))
        if missing:
            total = int(row.offset) - int(row.onset) + 1
            problems.append(ClipProblem(missing_frames_problem(where, missing, total, "N.png"),
                                        DATASET, row.subject, row.clip))
            continue
        samples.append(Sample(DATASET, row.subject, row.clip, int(row.onset), int(row.apex),
                              int(row.offset), row.emotion, label, frames, split=row.split,
                              au=row.au, fps=float(row.fps)))
    return samples, problems


def read_dfme(root: Path, sheet: Path, protocol: str = "7class", *,
              skip_missing: bool = False) -> SampleTable:
    """Read DFME as shipped: every split whose sheet is present.

    Parameters
    ----------
    root : Path
        The folder holding ``train_data/``, ``test_data_A/`` and ``test_data_B/`` (or the clip
        folders themselves).
    sheet : Path
        ``training_full_with_AU.xlsx``; the test sheets are read from its folder.
    protocol : {'7class', '3class'}
        ``7class``: the seven emotions, label = ``EmotionId``. ``3class``: negative (anger,
        contempt, disgust, fear, sadness), positive (happiness), surprise. Every clip is
        labelled under both.
    skip_missing : bool
        Leave out the clips whose folders or frames are missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        Training, then test A, then test B clips, in sheet order; ``split`` set.

    Raises
    ------
    OptionError
        Unknown protocol.
    DatasetFormatError
        The sheets' problems, or ``root`` listing every absent folder and frame.
    """
    check_protocol(protocol, DFME_PROTOCOLS, DATASET)
    root = require_dir(root, "DFME")
    rows = read_dfme_sheets(sheet)
    samples, problems = dfme_samples(root, rows, dfme_labels(rows, protocol))
    return release_table(root, samples, problems, DFME_PROTOCOLS[protocol], protocol,
                         skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_dfme(request.root, request.sheet, request.protocol,
                     skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="sub0003", layouts=("raw",), protocols=("loso",), read=_read,
    classes=DFME_PROTOCOLS, sheet=SHEET))
