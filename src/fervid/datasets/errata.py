"""Known errors of the released coding sheets, corrected in one table.

Every correction is one :class:`Erratum`: which sheet, which row (Excel's row number, and the
cells that identify the row, so a re-sorted or fixed sheet is never corrected by mistake),
which field, the wrong value, the corrected one, and where the corrected value comes from. A
reader calls :func:`apply_errata` on the sheet as read; each correction it applies is returned
and announced as an :class:`~fervid.datasets.sheets.AnnotationWarning` starting ``corrected by
errata:``, so ``fervid data check`` lists it among the problems worked around. A cell that no
longer holds the wrong value (a later release fixed it) is left alone.

CAS(ME)³ Part A, ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (sheet ``label``; pandas rows
are 0-based below the header, so Excel row = pandas row + 2):

========  =========  =============  ======  =========  ======================================
pandas    subject    task letter    field   v2 value   corrected
========  =========  =============  ======  =========  ======================================
128       spNO.149   d              Apex    83         160 (apex before onset 112)
708       spNO.214   c              Offset  3460       34 (a 3,456-frame "micro-expression")
749       spNO.216   d              Onset   3647       2647 (onset after apex 2668)
750       spNO.216   e              Onset   0          1 (``0.jpg`` does not exist)
750       spNO.216   e              Apex    0          1
796       spNO.40    e              Offset  0          1845
798       spNO.40    e              Offset  0          2403
========  =========  =============  ======  =========  ======================================

All seven values are MEB's (tvaranka/meb, ``meb/datasets/datasets.py``, ``Casme3.data_frame``,
commit 0607d7d), the only published source of corrected values; row 750's is also the dataset
authors' own (``exception/casme3_partA_error_list_ZhouJu.xlsx``: "Onset and Apex frames do not
exist (0.jpg does not exist, 1.jpg does): both +1"). The authors' list of rows wrongly labelled
in v1 (``CAS(ME)3_part_A_wrongly_labeled_me_in_V1.xlsx``) names rows 128, 749, 796 and 798 as
wrong but gives no corrected values.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fervid.datasets.sheets import AnnotationWarning

#: Where MEB (github.com/tvaranka/meb) writes its CAS(ME)³ corrections: ``Casme3.data_frame``.
MEB_CASME3 = "MEB meb/datasets/datasets.py Casme3"
#: The CAS(ME)³ authors' exception list (github.com/jingtingEmmaLi/CAS-ME-3, exception/).
AUTHORS_CASME3 = "the authors' exception/casme3_partA_error_list_ZhouJu.xlsx"

CASME3_TITLE = "CAS(ME)³"
CASME3_PART_A_SHEET = "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx"


@dataclass(frozen=True)
class Erratum:
    """One corrected cell of a released sheet.

    Attributes
    ----------
    dataset : str
        The release as people write it (``'CAS(ME)³'``); readers pass the same title.
    sheet : str
        The sheet's file name as released (compared case-insensitively).
    excel_row : int
        The row as Excel numbers it (the header is row 1).
    key : tuple of (column, value)
        Cells that identify the row; the correction applies only when they match.
    field : str
        The column corrected.
    wrong, corrected : int or str
        The released value, and the value used instead.
    source : str
        Where the corrected value comes from, or the rule that gave it.
    """

    dataset: str
    sheet: str
    excel_row: int
    key: tuple[tuple[str, str], ...]
    field: str
    wrong: int | str
    corrected: int | str
    source: str

    @property
    def where(self) -> str:
        """``'row 130 (spNO.149 d)'``."""
        return f"row {self.excel_row} ({' '.join(v for _, v in self.key)})"

    def describe(self) -> str:
        """One line: ``"... row 130 (spNO.149 d): Apex 83 -> 160 (source: ...)"``."""
        return (f"{self.dataset} {self.sheet} {self.where}: {self.field} {self.wrong!r} -> "
                f"{self.corrected!r} (source: {self.source})")


def _casme3(pandas_row: int, subject: str, letter: str, field: str, wrong: int, corrected: int,
            source: str = MEB_CASME3) -> Erratum:
    return Erratum(CASME3_TITLE, CASME3_PART_A_SHEET, pandas_row + 2,
                   (("Subject", subject), ("Filename", letter)), field, wrong, corrected, source)


#: Every known correction, in sheet order.
ERRATA: tuple[Erratum, ...] = (
    _casme3(128, "spNO.149", "d", "Apex", 83, 160),
    _casme3(708, "spNO.214", "c", "Offset", 3460, 34),
    _casme3(749, "spNO.216", "d", "Onset", 3647, 2647),
    _casme3(750, "spNO.216", "e", "Onset", 0, 1, f"{MEB_CASME3}; {AUTHORS_CASME3}"),
    _casme3(750, "spNO.216", "e", "Apex", 0, 1, f"{MEB_CASME3}; {AUTHORS_CASME3}"),
    _casme3(796, "spNO.40", "e", "Offset", 0, 1845),
    _casme3(798, "spNO.40", "e", "Offset", 0, 2403),
)


def _same(cell: object, value: int | str) -> bool:
    # Sheets store frame numbers as numbers or as text ('112'): compare as text of an int.
    if cell is None or (isinstance(cell, float) and cell != cell):
        return False
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    return str(cell).strip() == str(value)


def errata_for(dataset: str, sheet_name: str) -> list[Erratum]:
    """The corrections listed for ``dataset``'s sheet named ``sheet_name`` (a file name)."""
    name = Path(sheet_name).name.lower()
    return [e for e in ERRATA if e.dataset == dataset and e.sheet.lower() == name]


def apply_errata(dataset: str, sheet_name: str,
                 rows: pd.DataFrame) -> tuple[pd.DataFrame, list[Erratum]]:
    """Correct the known errors of a sheet read by :func:`~fervid.datasets.sheets.read_sheet`.

    Parameters
    ----------
    dataset : str
        The release's title, as in :data:`ERRATA` (``'CAS(ME)³'``).
    sheet_name : str
        The sheet's file name (or path).
    rows : pandas.DataFrame
        The sheet's rows with their original column names and ``excel_row``.

    Returns
    -------
    rows, applied : pandas.DataFrame, list of Erratum
        A corrected copy (``rows`` itself is not changed), and the corrections applied, each
        also announced as an :class:`AnnotationWarning` (``corrected by errata: ...``).
    """
    out = rows.copy()
    applied: list[Erratum] = []
    for erratum in errata_for(dataset, sheet_name):
        if erratum.field not in out.columns:
            continue
        at = out.index[out["excel_row"] == erratum.excel_row]
        if len(at) != 1:
            continue
        i = at[0]
        if not all(c in out.columns and _same(out.at[i, c], v) for c, v in erratum.key):
            continue
        if not _same(out.at[i, erratum.field], erratum.wrong):
            continue
        out[erratum.field] = out[erratum.field].astype(object)
        out.at[i, erratum.field] = erratum.corrected
        applied.append(erratum)
        warnings.warn(f"corrected by errata: {erratum.describe()}", AnnotationWarning,
                      stacklevel=2)
    return out, applied
