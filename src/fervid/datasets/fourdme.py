"""4DME's micro-expressions, as released: the grey frames ``gray_micro/<sub_ID>/<fold_name>/``
(or the cropped ``gray_micro_crop/``) plus ``4DME_Labelling_Micro_release v1.xlsx``.

No real sheet was tried: this reader follows MEB (github.com/tvaranka/meb,
``meb/datasets/datasets.py``, class ``Fourd``, and ``config/dataset_config.py``): columns
``sub_ID, fold_name, Emotion, Onset, Apex, Offset, AUs`` plus one 0/1 column per AU
(``AU1``, ``AU4``, ...); frames ``gray_micro/{sub_ID}/{fold_name}/``; 267 samples in its copy.

- Emotions are 4DME's five categories: positive, negative, surprise, repression, others. A cell
  naming several (``Negative+Surprise``) keeps them all in ``emotion`` and is left out of the
  single-label protocols.
- ``au`` is the ``AUs`` text as written (``(k)`` marks included); where it is blank, the AUs
  whose 0/1 column holds 1 (``AU4+AU7``).
- Frame files are any images whose names end in the frame number. A blank apex becomes the
  middle frame, with an :class:`~fervid.datasets.sheets.AnnotationWarning`.
- Ids: dataset ``'4dme'``, subject the ``sub_ID`` text (also its folder's name), clip the
  ``fold_name``. 60 fps (the grey texture videos of the 4DME paper).

MEB swaps the AU cells of two rows of its copy (0-based 144 and 145) and drops ``(k)`` AUs from
the 0/1 columns; neither changes what is read here (see :mod:`fervid.datasets.errata`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from fervid.datasets.casme import coded_table, read_coded_sheet, release_folder
from fervid.datasets.class_names import canonical_class
from fervid.datasets.frames import NUMBERED_IMAGE
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import as_ints, check_protocol
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError, SampleTable

DATASET = "4dme"
#: The release as people write it (in warnings and :data:`fervid.datasets.errata.ERRATA`).
TITLE = "4DME"
SHEET = "4DME_Labelling_Micro_release v1.xlsx"
FPS = 60.0

SHEET_COLUMNS = {"subject": "sub_ID", "clip": "fold_name", "onset": "Onset", "apex": "Apex",
                 "offset": "Offset", "emotion": "Emotion"}
AU_COLUMN = "AUs"
#: A 0/1 AU column: ``AU1``, ``AU 12``.
AU_FLAG = re.compile(r"AU\s*(\d+)", re.IGNORECASE)

#: 4DME's five emotion categories, the ``5class`` protocol's classes (MEGC's three first, in
#: their order).
FOURDME_EMOTIONS = ("negative", "positive", "surprise", "repression", "others")

FOURDME_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "5class": FOURDME_EMOTIONS,
    "3class": PROTOCOL_CLASSES["3class"],
}

#: How an Emotion cell separates several categories.
SEVERAL = re.compile(r"\s*(?:[+,/&;]|\band\b)\s*")


def _emotions(text: str) -> list[str | None]:
    """The canonical categories an Emotion cell names (None for an unknown one)."""
    names = [canonical_class(part) for part in SEVERAL.split(text) if part]
    return [n if n in FOURDME_EMOTIONS else None for n in names]


def _aus_from_flags(table: pd.DataFrame) -> pd.Series:
    """``AU4+AU7`` per row from the 0/1 AU columns (``''`` where none is set)."""
    flags = sorted(((int(m.group(1)), c) for c in table.columns
                    if (m := AU_FLAG.fullmatch(str(c)))), key=lambda t: t[0])
    if not flags:
        return pd.Series("", index=table.index, dtype=object)
    set_ = pd.DataFrame({n: as_ints(table[c]).fillna(0) > 0 for n, c in flags})
    return set_.apply(lambda row: "+".join(f"AU{n}" for n, on in row.items() if on), axis=1)


def read_fourdme_sheet(sheet: Path) -> pd.DataFrame:
    """The 4DME micro-expression sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated, au``, one row
        per sample in sheet order; ``emotion`` the canonical categories joined by ``+``.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: missing columns, blank or non-integer values, unknown emotions,
        apexes outside onset..offset, repeated clips.
    """
    sheet = Path(sheet)
    table, rows = read_coded_sheet(sheet, TITLE, SHEET_COLUMNS, AU_COLUMN)
    parsed = rows["emotion"].map(_emotions)
    bad = rows[parsed.map(lambda names: not names or None in names)]
    if len(bad):
        raise DatasetFormatError(sheet, [
            f"row {r}: Emotion {v!r} is not one of {', '.join(FOURDME_EMOTIONS)} (or several "
            f"joined by +)" for r, v in bad[["excel_row", "emotion"]].itertuples(index=False)])
    rows["emotion"] = parsed.map(lambda names: "+".join(dict.fromkeys(names)))
    rows["au"] = rows["au"].where(rows["au"] != "", _aus_from_flags(table))
    return rows


def read_fourdme(root: Path, sheet: Path, protocol: str = "5class", *,
                 skip_missing: bool = False) -> SampleTable:
    """Read 4DME's micro-expressions as shipped.

    Parameters
    ----------
    root : Path
        ``gray_micro/`` or ``gray_micro_crop/`` (``<sub_ID>/<fold_name>/`` frame folders), or
        the folder holding them (``gray_micro/`` is taken then).
    sheet : Path
        ``4DME_Labelling_Micro_release v1.xlsx``.
    protocol : {'5class', '3class'}
        ``5class``: negative, positive, surprise, repression, others. ``3class``: MEGC's
        negative (negative, repression), positive, surprise; others left out.
    skip_missing : bool
        Leave out the clips whose folders or frames are missing, listed in ``skipped``.

    Returns
    -------
    SampleTable
        One sample per sheet row in sheet order; ``au`` the sheet's AU text, ``fps`` 60.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the sheet for its problems, or the frame folder listing every absent clip and
        frame.
    """
    check_protocol(protocol, FOURDME_PROTOCOLS, DATASET)
    rows = read_fourdme_sheet(sheet)
    subjects = set(rows["subject"])
    root = release_folder(root, ("gray_micro", "gray_micro_crop"),
                          lambda p: any((p / s).is_dir() for s in subjects), TITLE)
    folders = [root / s / c for s, c in rows[["subject", "clip"]].itertuples(index=False)]
    return coded_table(rows, folders, protocol, FOURDME_PROTOCOLS, root=root, dataset=DATASET,
                       what=TITLE, fps=FPS, pattern=NUMBERED_IMAGE, file_name="<name>{N}.jpg",
                       skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_fourdme(request.root, request.sheet, request.protocol,
                        skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="S01", layouts=("raw", "cropped"), protocols=("loso",), read=_read,
    classes=FOURDME_PROTOCOLS, sheet=SHEET, fps=FPS))
