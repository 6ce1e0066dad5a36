"""An MMEW micro-expression release: no real sheet exists here, so ``MMEW_Micro_Exp.xlsx`` is
written in the form MEB reads (``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action
Units, Estimated Emotion, remarks``) with made-up rows, and zero-byte frames at
``MMEW_Final/Micro_Expression/<emotion>/<clip>/{N}.jpg``, numbered from 1 as the clip's first
frame (onset 1)."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames

HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
          "Estimated Emotion", "remarks"]

#: (Subject, Filename, onset, apex, offset, AUs, emotion, emotion folder).
ROWS = [
    ("S01", "S01_happiness_1", 1, 12, 30, "AU6+AU12", "happiness", "happiness"),
    ("S01", "S01_surprise_1", 1, 8, 21, "AU1+AU2", "surprise", "surprise"),
    ("S01", "S01_others_1", 1, 10, 25, "AU14", "others", "repression"),
    ("S02", "S02_disgust_1", 1, 15, 40, "AU4+AU9", "disgust", "disgust"),
    ("S02", "S02_fear_1", 1, 6, 18, "AU1+AU4+AU20", "fear", "fear"),
    ("S03", "S03_anger_1", 1, 9, 22, "AU4+AU7", "anger", "anger"),
    ("S03", "S03_sadness_1", 1, 11, 28, "AU15", "sadness", "sadness"),
    ("S03", "S03_happiness_2", 1, 7, 16, "AU12", "happiness", "happiness"),
]


def write_sheet(path: Path, rows=ROWS) -> Path:
    """``rows`` as an MMEW micro-expression sheet."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    for subject, clip, onset, apex, offset, aus, emotion, _folder in rows:
        sheet.append([subject, clip, onset, apex, offset, aus, emotion, None])
    workbook.save(path)
    return path


def write_frames(root: Path, rows=ROWS, blank: Path | None = None) -> Path:
    """Frames onset..offset of each row under ``root/<emotion folder>/<clip>/``."""
    blank = blank or root.parent / "blank"
    for _subject, clip, onset, _apex, offset, _aus, _emotion, folder in rows:
        _touch_frames(root / folder / clip, (f"{n}.jpg" for n in range(onset, offset + 1)), blank)
    return root


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}`` of a generated MMEW release (8 samples, 3 subjects)."""
    tmp.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(tmp / "MMEW_Micro_Exp.xlsx")
    root = write_frames(tmp / "MMEW_Final" / "Micro_Expression")
    return {"root": root, "sheet": sheet, "protocol": "all"}
