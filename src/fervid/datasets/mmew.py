"""MMEW's micro-expressions, as released: ``MMEW_Final/Micro_Expression/<emotion>/<clip>/1.jpg``
plus ``MMEW_Micro_Exp.xlsx``.

No real sheet was tried: this reader follows MEB (github.com/tvaranka/meb,
``meb/datasets/datasets.py``, class ``MMEW``): columns ``Subject, Filename, OnsetFrame,
ApexFrame, OffsetFrame, Action Units, Estimated Emotion`` (and ``remarks``), frames
``Micro_Expression/{emotion}/{Filename}/``; 300 samples in its copy. Frames are numbered
images (``{N}.jpg``), 90 fps (the MMEW paper).

- A clip folder is looked up by its name in every emotion folder, so a release whose folder
  names an emotion differently from the sheet (MEB reads the sheet's ``others`` from a
  ``repression`` folder) still reads; a clip in two emotion folders is a problem.
- Emotions: happiness, surprise, disgust, fear, sadness, anger, others (spelled as
  :func:`~fervid.datasets.class_names.canonical_class` spells them). MEB relabels ``others``
  as repression; here ``others`` stays others and is left out of ``3class``.
- Ids: dataset ``'mmew'``, subject the sheet's Subject text, clip its Filename.

MEB replaces the apex and offset of 16 rows of its copy (0-based 33, 35-42, 142, 143, 145, 146,
148, 154, 156); such rows are reported here as missing frames or an apex outside onset..offset
(see :mod:`fervid.datasets.errata`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fervid.datasets.casme import coded_table, read_coded_sheet, release_folder
from fervid.datasets.class_names import canonical_class
from fervid.datasets.clip_jobs import subdirs
from fervid.datasets.frames import NUMBERED_IMAGE
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import check_known, check_protocol
from fervid.samples import PROTOCOL_CLASSES, SampleTable

DATASET = "mmew"
#: The release as people write it (in warnings and :data:`fervid.datasets.errata.ERRATA`).
TITLE = "MMEW"
SHEET = "MMEW_Micro_Exp.xlsx"
FPS = 90.0

SHEET_COLUMNS = {"subject": "Subject", "clip": "Filename", "onset": "OnsetFrame",
                 "apex": "ApexFrame", "offset": "OffsetFrame", "emotion": "Estimated Emotion"}
AU_COLUMN = "Action Units"

#: The seven sheet emotions, the ``all`` protocol's classes.
MMEW_EMOTIONS = ("happiness", "surprise", "disgust", "fear", "sadness", "anger", "others")

MMEW_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "all": MMEW_EMOTIONS,
    "3class": PROTOCOL_CLASSES["3class"],
}


def read_mmew_sheet(sheet: Path) -> pd.DataFrame:
    """The MMEW micro-expression sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated, au``, one row
        per sample in sheet order, emotions canonical.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: missing columns, blank or non-integer values, unknown emotions,
        apexes outside onset..offset, repeated clips.
    """
    sheet = Path(sheet)
    _, rows = read_coded_sheet(sheet, TITLE, SHEET_COLUMNS, AU_COLUMN)
    rows["emotion"] = rows["emotion"].map(lambda e: canonical_class(e) or e)
    check_known(sheet, rows, "emotion", MMEW_EMOTIONS, SHEET_COLUMNS["emotion"])
    return rows


def clip_folders(root: Path) -> dict[str, list[Path]]:
    """Every ``<emotion>/<clip>/`` folder under ``root``, by clip name."""
    found: dict[str, list[Path]] = {}
    for emotion in subdirs(root):
        for clip in subdirs(emotion):
            found.setdefault(clip.name, []).append(clip)
    return found


def read_mmew(root: Path, sheet: Path, protocol: str = "all", *,
              skip_missing: bool = False) -> SampleTable:
    """Read MMEW's micro-expressions as shipped.

    Parameters
    ----------
    root : Path
        ``Micro_Expression/`` (``<emotion>/<clip>/{N}.jpg``), or ``MMEW_Final/`` holding it.
    sheet : Path
        ``MMEW_Micro_Exp.xlsx``.
    protocol : {'all', '3class'}
        ``all``: the seven sheet emotions (:data:`MMEW_EMOTIONS`). ``3class``: MEGC's negative
        (anger, disgust, fear, sadness), positive (happiness), surprise; others left out.
    skip_missing : bool
        Leave out the clips whose folders are missing (or doubled) or whose frames are
        missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        One sample per sheet row in sheet order; ``au`` the sheet's AU text, ``fps`` 90.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the sheet for its problems, or the frame folder listing every absent, doubled
        or incomplete clip.
    """
    check_protocol(protocol, MMEW_PROTOCOLS, DATASET)
    rows = read_mmew_sheet(sheet)
    clips = set(rows["clip"])
    root = release_folder(root, ("Micro_Expression",),
                          lambda p: not clips.isdisjoint(clip_folders(p)), TITLE)
    found = clip_folders(root)

    def folder(clip: str) -> Path | str:
        places = found.get(clip, [])
        if len(places) == 1:
            return places[0]
        return (f"clip folder in two emotion folders ({', '.join(p.parent.name for p in places)})"
                if places else f"no <emotion>/{clip}/ folder")

    return coded_table(rows, [folder(c) for c in rows["clip"]], protocol, MMEW_PROTOCOLS,
                       root=root, dataset=DATASET, what=TITLE, fps=FPS, pattern=NUMBERED_IMAGE,
                       file_name="{N}.jpg", skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_mmew(request.root, request.sheet, request.protocol,
                     skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="S01", layouts=("raw",), protocols=("loso",), read=_read,
    classes=MMEW_PROTOCOLS, sheet=SHEET, fps=FPS))
