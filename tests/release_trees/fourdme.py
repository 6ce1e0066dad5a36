"""A 4DME micro-expression release: no real sheet exists here, so
``4DME_Labelling_Micro_release v1.xlsx`` is written in the form MEB reads (``sub_ID, fold_name,
Emotion, Onset, Apex, Offset, AUs`` and 0/1 AU columns) with made-up rows, and zero-byte frames
at ``gray_micro/<sub_ID>/<fold_name>/<fold_name>_<N>.jpg``."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames

AU_NUMBERS = (1, 2, 4, 7, 12, 14)
HEADER = ["sub_ID", "fold_name", "Emotion", "Onset", "Apex", "Offset", "AUs",
          *(f"AU{n}" for n in AU_NUMBERS)]

#: (sub_ID, fold_name, Emotion, onset, apex, offset, AUs text, AUs set in the 0/1 columns).
ROWS = [
    ("S01", "S01_0101", "Negative", 120, 126, 135, "AU4+AU7", (4, 7)),
    ("S01", "S01_0102", "Positive", 300, 305, 318, "AU12", (12,)),
    ("S01", "S01_0201", "Surprise", 50, 53, 61, "AU1+AU2", (1, 2)),
    ("S02", "S02_0101", "Repression", 10, 15, 22, "AU14(k)", (14,)),
    ("S02", "S02_0103", "Others", 700, 704, 712, "AU7", (7,)),
    ("S02", "S02_0301", "Negative+Surprise", 88, 92, 99, "AU1+AU4", (1, 4)),
    ("S03", "S03_0101", "Negative", 5, 9, 15, None, (4, 7)),
    ("S03", "S03_0202", "Positive", 400, 406, 414, "AU12+AU14", (12, 14)),
]


def write_sheet(path: Path, rows=ROWS) -> Path:
    """``rows`` as a 4DME labelling sheet."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for subject, clip, emotion, onset, apex, offset, aus, flags in rows:
        sheet.append([subject, clip, emotion, onset, apex, offset, aus,
                      *(int(n in flags) for n in AU_NUMBERS)])
    workbook.save(path)
    return path


def write_frames(root: Path, rows=ROWS, blank: Path | None = None) -> Path:
    """Frames onset..offset of each row under ``root/<sub_ID>/<fold_name>/``."""
    blank = blank or root.parent / "blank"
    for subject, clip, _emotion, onset, _apex, offset, *_ in rows:
        _touch_frames(root / subject / clip,
                      (f"{clip}_{n:04d}.jpg" for n in range(onset, offset + 1)), blank)
    return root


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}`` of a generated 4DME release (8 samples, 3 subjects)."""
    tmp.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(tmp / "4DME_Labelling_Micro_release v1.xlsx")
    root = write_frames(tmp / "gray_micro")
    return {"root": root, "sheet": sheet, "protocol": "5class"}
