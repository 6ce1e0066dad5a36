"""CASME II, as released: raw frames ``CASME2_RAW_selected/`` or the cropped ``Cropped/`` set.

Ids: dataset ``'casme2'``, subject ``'sub01'`` (the sheet's text ``'01'`` with the folder's
``sub`` prefix), clip the sheet's Filename (``'EP02_01f'``), as in MEGC2019's ground truth.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from fervid.datasets.action_units import register_au_sheet, sheet_au_column
from fervid.datasets.clip_jobs import ClipJob, folder_job, subdirs
from fervid.datasets.frames import build_samples, protocol_labels, read_coded_release
from fervid.datasets.registry import DatasetSpec, PrepareHook, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    check_known,
    check_protocol,
    padded_number,
    read_sheet,
    tidy_clip_rows,
)
from fervid.samples import PROTOCOL_CLASSES, Sample, SampleTable

DATASET = "casme2"
SHEET = "CASME2-coding-20140508.xlsx"
FPS = 200.0

#: The sheet columns the reader needs (the two blank columns of the sheet are ignored).
SHEET_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame",
                 "apex": "ApexFrame", "offset": "OffsetFrame", "emotion": "Estimated Emotion"}

#: All seven sheet emotions; the ``all`` protocol's classes. The five-class ones come first, in
#: the same order, so their labels agree across the two protocols.
CASME2_EMOTIONS = ("happiness", "disgust", "repression", "surprise", "others", "sadness", "fear")

#: Protocol name -> class names, in label order.
CASME2_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "5class": PROTOCOL_CLASSES["casme2_5class"],
    "3class": PROTOCOL_CLASSES["3class"],
    "all": CASME2_EMOTIONS,
}

#: MEGC2019's grouping of CASME II emotions; sadness, fear and others are left out.
TO_3CLASS = {"disgust": "negative", "repression": "negative", "happiness": "positive",
             "surprise": "surprise"}

RAW_FRAME = re.compile(r"img(\d+)\.jpg")
CROPPED_FRAME = re.compile(r"reg_img(\d+)\.jpg")


def read_casme2_sheet(sheet: Path) -> pd.DataFrame:
    """The CASME II coding sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated, au``, one row
        per clip in sheet order (``au``: the ``Action Units`` text, ``""`` where blank);
        subjects ``'sub01'``; the ``/`` apex replaced by the middle frame (with a warning)
        and ``apex_annotated`` False there.

    Raises
    ------
    DatasetFormatError
        Naming the sheet and listing missing columns or bad values.
    """
    sheet = Path(sheet)
    table = read_sheet(sheet, list(SHEET_COLUMNS.values()))
    rows = tidy_clip_rows(sheet, table, SHEET_COLUMNS, padded_number(2, "sub"), "CASME II")
    check_known(sheet, rows, "emotion", CASME2_EMOTIONS, SHEET_COLUMNS["emotion"])
    rows["au"] = sheet_au_column(table, rows)
    return rows


def casme2_labels(rows: pd.DataFrame, protocol: str) -> list[int | None]:
    """Labels of tidy sheet rows under ``protocol`` (``None`` outside it).

    Under ``3class`` the clips whose apex is not annotated or equals the onset are also left out:
    MEGC2019 dropped exactly these two (sub04 EP12_01f, sub05 EP09_05f), both disgust, which is
    why its CASME II part has 88 negatives, not 90.
    """
    check_protocol(protocol, CASME2_PROTOCOLS, "casme2")
    classes = CASME2_PROTOCOLS[protocol]
    if protocol == "3class":
        usable = rows["apex_annotated"] & (rows["apex"] != rows["onset"])
        return protocol_labels(rows["emotion"].where(usable), TO_3CLASS, classes)
    return protocol_labels(rows["emotion"], {c: c for c in classes}, classes)


def detect_layout(root: Path, rows: pd.DataFrame) -> str | None:
    """``'raw'`` (``img{N}.jpg``) or ``'cropped'`` (``reg_img{N}.jpg``), from the first clip
    folder of the sheet that holds frames; ``None`` when none does."""
    for subject, clip in rows[["subject", "clip"]].itertuples(index=False):
        try:
            names = os.listdir(root / subject / clip)
        except OSError:
            continue
        if any(CROPPED_FRAME.fullmatch(n) for n in names):
            return "cropped"
        if any(RAW_FRAME.fullmatch(n) for n in names):
            return "raw"
    return None


def casme2_samples(root: Path, rows: pd.DataFrame,
                   labels: list[int | None]) -> tuple[list[Sample], list[str]]:
    """Samples for ``rows`` with their frames under ``root``, and the problems found."""
    layout = detect_layout(root, rows)
    problems = []
    if layout is None and len(rows):
        problems.append("no frames named img{N}.jpg (CASME2_RAW_selected) or reg_img{N}.jpg "
                        "(Cropped) in any clip folder the sheet lists")
    pattern, name = (CROPPED_FRAME, "reg_img{N}.jpg") if layout == "cropped" else \
        (RAW_FRAME, "img{N}.jpg")
    samples, more = build_samples(root, rows, DATASET, pattern, name, labels)
    return samples, problems + more


def read_casme2(root: Path, sheet: Path, protocol: str = "5class", *,
                skip_missing: bool = False) -> SampleTable:
    """Read CASME II as shipped.

    Parameters
    ----------
    root : Path
        ``CASME2_RAW_selected/`` (frames ``subXX/EPxx_yy[f]/img{N}.jpg``) or the cropped release
        ``Cropped/`` (``reg_img{N}.jpg``); which one is detected from the file names.
    sheet : Path
        ``CASME2-coding-20140508.xlsx``.
    protocol : {'5class', '3class', 'all'}
        ``5class``: happiness, disgust, repression, surprise, others (246 clips).
        ``3class``: MEGC2019's negative (disgust, repression), positive (happiness), surprise
        (145 clips; see :func:`casme2_labels` for the two clips it leaves out).
        ``all``: the seven sheet emotions (:data:`CASME2_EMOTIONS`), every clip labelled.
    skip_missing : bool
        Leave out the clips whose folders or frames are missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        All 255 clips in sheet order; those outside the protocol have ``label`` None (use
        ``table.labelled()``). Frames run onset..offset in numeric order.

    Raises
    ------
    OptionError, DatasetFormatError
        See :func:`~fervid.datasets.frames.read_coded_release`.
    """
    return read_coded_release(root, sheet, protocol, dataset="casme2", what="CASME II",
                              protocols=CASME2_PROTOCOLS, read_sheet=read_casme2_sheet,
                              labels=casme2_labels, samples=casme2_samples,
                              skip_missing=skip_missing)


def find_casme2_clips(root: Path, out_dir: Path) -> list[ClipJob | None]:
    """``root/subXX/<clip>/img{N}.jpg`` (raw) or ``reg_img{N}.jpg`` (cropped), for
    ``fervid prepare faces``; the output is named as the cropped release (``reg_img{N}.jpg``)."""
    jobs = []
    for clip in (c for s in subdirs(root, r"sub\d+") for c in subdirs(s)):
        raw = folder_job(root, out_dir, clip, RAW_FRAME, lambda n: "reg_" + n, FPS)
        jobs.append(raw or folder_job(root, out_dir, clip, CROPPED_FRAME, fps=FPS))
    return jobs


def _read(request: ReadRequest) -> SampleTable:
    return read_casme2(request.root, request.sheet, request.protocol,
                       skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="sub01", layouts=("raw", "cropped"), protocols=("loso",), read=_read,
    classes=CASME2_PROTOCOLS, sheet=SHEET, fps=FPS,
    prepare=PrepareHook(find_casme2_clips, "subXX/<clip>/img{N}.jpg")))
register_au_sheet(DATASET, SHEET, read_casme2_sheet)
