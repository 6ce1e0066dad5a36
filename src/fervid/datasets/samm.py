"""SAMM, as released: ``SAMM/006/006_1_2/006_05562.jpg`` plus ``SAMM_Micro_FACS_Codes_v2.xlsx``.

Ids: dataset ``'samm'``, subject the sheet's three-digit text (``'006'``, also the folder name),
clip the sheet's Filename (``'006_1_2'``). MEGC2019's ``combined_3class_gt.csv`` writes the
subject unpadded (``6``); :func:`fervid.datasets.megc2019.read_megc2019` pads it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fervid.datasets import sheets
from fervid.datasets.action_units import register_au_sheet, sheet_au_column
from fervid.datasets.clip_jobs import ClipJob, folder_job, subdirs
from fervid.datasets.frames import build_samples, protocol_labels, read_coded_release
from fervid.datasets.registry import DatasetSpec, PrepareHook, ReadRequest, register_dataset
from fervid.samples import PROTOCOL_CLASSES, Sample, SampleTable

DATASET = "samm"
SHEET = "SAMM_Micro_FACS_Codes_v2.xlsx"
FPS = 200.0

#: The sheet columns the reader needs; the header is on Excel row 14, below 13 preamble rows.
SHEET_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "Onset Frame",
                 "apex": "Apex Frame", "offset": "Offset Frame", "emotion": "Estimated Emotion"}

#: The eight sheet emotions, lower-cased (the sheet capitalizes them: ``Anger``); the ``all``
#: protocol's classes, five-class ones first in the same order.
SAMM_EMOTIONS = ("anger", "contempt", "happiness", "surprise", "other", "disgust", "fear",
                 "sadness")

#: Protocol name -> class names, in label order.
SAMM_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "5class": PROTOCOL_CLASSES["samm_5class"],
    "3class": PROTOCOL_CLASSES["3class"],
    "all": SAMM_EMOTIONS,
}

#: MEGC2019's grouping of SAMM emotions; ``other`` is left out.
TO_3CLASS = {"anger": "negative", "contempt": "negative", "disgust": "negative",
             "fear": "negative", "sadness": "negative", "happiness": "positive",
             "surprise": "surprise"}

#: ``{subject:03}_{frame:05}.jpg``; the frame number is parsed, so any padding is accepted.
FRAME = re.compile(r"\d+_(\d+)\.jpg")


def read_samm_sheet(sheet: Path) -> pd.DataFrame:
    """The SAMM sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated, au``, one row
        per clip in sheet order (``au``: the ``Action Units`` text), subjects ``'006'``,
        emotions lower-cased.

    Raises
    ------
    DatasetFormatError
        Naming the sheet and listing missing columns or bad values.
    """
    sheet = Path(sheet)
    table = sheets.read_sheet(sheet, list(SHEET_COLUMNS.values()))
    rows = sheets.tidy_clip_rows(sheet, table, SHEET_COLUMNS, sheets.padded_number(3), "SAMM")
    sheets.check_known(sheet, rows, "emotion", SAMM_EMOTIONS, SHEET_COLUMNS["emotion"])
    rows["au"] = sheet_au_column(table, rows)
    return rows


def samm_labels(rows: pd.DataFrame, protocol: str) -> list[int | None]:
    """Labels of tidy sheet rows under ``protocol`` (``None`` outside it).

    As for CASME II, ``3class`` also leaves out clips without a usable apex (not annotated, or
    equal to the onset); the v2 sheet has none, so all 133 negative/positive/surprise clips stay.
    """
    sheets.check_protocol(protocol, SAMM_PROTOCOLS, "samm")
    classes = SAMM_PROTOCOLS[protocol]
    if protocol == "3class":
        usable = rows["apex_annotated"] & (rows["apex"] != rows["onset"])
        return protocol_labels(rows["emotion"].where(usable), TO_3CLASS, classes)
    return protocol_labels(rows["emotion"], {c: c for c in classes}, classes)


def samm_samples(root: Path, rows: pd.DataFrame,
                 labels: list[int | None]) -> tuple[list[Sample], list[str]]:
    """Samples for ``rows`` with their frames under ``root``, and the problems found."""
    return build_samples(root, rows, DATASET, FRAME, "{subject}_{N:05}.jpg", labels)


def read_samm(root: Path, sheet: Path, protocol: str = "5class", *,
             skip_missing: bool = False) -> SampleTable:
    """Read SAMM as shipped.

    Parameters
    ----------
    root : Path
        The ``SAMM/`` folder (``006/006_1_2/006_05562.jpg``).
    sheet : Path
        ``SAMM_Micro_FACS_Codes_v2.xlsx``.
    protocol : {'5class', '3class', 'all'}
        ``5class``: anger, contempt, happiness, surprise, other (136 clips).
        ``3class``: MEGC2019's negative (anger, contempt, disgust, fear, sadness), positive
        (happiness), surprise (133 clips).
        ``all``: the eight sheet emotions (:data:`SAMM_EMOTIONS`), every clip labelled.
    skip_missing : bool
        Leave out the clips whose folders or frames are missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        All 159 clips in sheet order; those outside the protocol have ``label`` None.

    Raises
    ------
    OptionError, DatasetFormatError
        See :func:`~fervid.datasets.frames.read_coded_release`.
    """
    return read_coded_release(root, sheet, protocol, dataset="samm", what="SAMM",
                              protocols=SAMM_PROTOCOLS, read_sheet=read_samm_sheet,
                              labels=samm_labels, samples=samm_samples,
                              skip_missing=skip_missing)


def find_samm_clips(root: Path, out_dir: Path) -> list[ClipJob | None]:
    """``root/NNN/<clip>/NNN_{N}.jpg``, for ``fervid prepare faces`` (names kept)."""
    return [folder_job(root, out_dir, clip, FRAME, fps=FPS)
            for s in subdirs(root, r"\d+") for clip in subdirs(s)]


def _read(request: ReadRequest) -> SampleTable:
    return read_samm(request.root, request.sheet, request.protocol,
                     skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="006", layouts=("raw",), protocols=("loso",), read=_read,
    classes=SAMM_PROTOCOLS, sheet=SHEET, fps=FPS,
    prepare=PrepareHook(find_samm_clips, "NNN/<clip>/NNN_{N}.jpg")))
register_au_sheet(DATASET, SHEET, read_samm_sheet)
