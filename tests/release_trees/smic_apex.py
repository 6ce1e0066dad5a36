"""SMIC-HS with the third-party apex sheet (``annotations/smic/smic_apex_third_party.xlsx``):
zero-byte frames ``SMIC_all_raw/HS/s<N>/micro/<emotion>/<clip>/image<6 digits>.bmp`` for the
sheet's onset..offset of each of its 164 clips (folder names unpadded, as released), read from
the sheet with openpyxl (not the reader). A row without an offset ends ten frames after its
apex."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames, shared_path

EMOTIONS = ("negative", "positive", "surprise")
#: Frames written past the apex of a clip whose offset the sheet leaves blank.
OPEN_FRAMES = 10


def real_sheet() -> Path:
    return shared_path("annotations", "smic", "smic_apex_third_party.xlsx")


def sheet_rows(sheet: Path) -> list[tuple]:
    """``(subject, clip, label, onset, apex, offset)`` of every sheet row, as written."""
    workbook = openpyxl.load_workbook(sheet, read_only=True)
    rows = [r[1:7] for r in workbook.active.iter_rows(min_row=2, values_only=True) if r[0]]
    workbook.close()
    return rows


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}``: the 164 clips at the sheet's frames, the real sheet."""
    sheet = real_sheet()
    root = tmp / "SMIC_all_raw"
    for subject, clip, label, onset, apex, offset in sheet_rows(sheet):
        last = offset or apex + OPEN_FRAMES
        _touch_frames(root / "HS" / f"s{subject}" / "micro" / EMOTIONS[label] / clip,
                      (f"image{n:06d}.bmp" for n in range(onset, last + 1)), tmp / "blank")
    return {"root": root, "sheet": sheet, "protocol": "3class"}
