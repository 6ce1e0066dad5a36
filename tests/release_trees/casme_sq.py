"""CAS(ME)²'s cut samples from the real code sheet (``annotations/spotting/casme_sq``): zero-byte
frames ``selectedpic/<sNN>/<expression id>/img{N}.jpg`` for onset..offset of all 357 rows, read
from the sheet with openpyxl (not the reader). A row whose offset is not coded (0) ends ten
frames after its apex."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames, shared_path

#: Frames written past the apex of a sample whose offset the sheet does not code.
OPEN_FRAMES = 10


def real_sheet() -> Path:
    return shared_path("annotations", "spotting", "casme_sq", "CASME_sq_gt.xlsx")


def sheet_rows(sheet: Path) -> list[tuple]:
    """``(folder, expression id, onset, apex, offset, class, type)`` of every code-sheet row."""
    workbook = openpyxl.load_workbook(sheet, read_only=True)
    folders = {p: f for _, f, p in workbook["naming rule1"].iter_rows(values_only=True)}
    rows = [(folders[r[0]], r[1], r[2], r[3], r[4], r[6], r[7])
            for r in workbook["CASFEcode_final"].iter_rows(values_only=True) if r[0]]
    workbook.close()
    return rows


def write_frames(root: Path, rows: list[tuple], name: str = "img{n}.jpg",
                 folder_of=lambda subject: subject) -> Path:
    """Frames of ``rows`` (as :func:`sheet_rows` gives them) under ``root``."""
    for subject, clip, onset, apex, offset, *_ in rows:
        last = offset or (apex or onset) + OPEN_FRAMES
        _touch_frames(root / folder_of(subject) / clip,
                      (name.format(n=n, i=n - onset + 1) for n in range(onset, last + 1)),
                      root.parent / "blank")
    return root


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}``: the whole selectedpic tree, the real sheet in place."""
    sheet = real_sheet()
    tmp.mkdir(parents=True, exist_ok=True)
    root = write_frames(tmp / "selectedpic", sheet_rows(sheet))
    return {"root": root, "sheet": sheet, "protocol": "4class"}
