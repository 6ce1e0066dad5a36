"""A CASME (I) release: no real sheet exists here, so a sheet in the release's form (header
``Subject | Filename | | OnsetF | ApexF1 | ApexF2 | OffsetF | | Onset | Total | AU | Emotion``,
saved as .xlsx) is written with made-up rows, and zero-byte frames at the paths it names:
``CASME_raw_selected/subNN/<clip>/<clip>-<N>.jpg``."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames

HEADER = ["Subject", "Filename", None, "OnsetF", "ApexF1", "ApexF2", "OffsetF", None, "Onset",
          "Total", "AU", "Emotion"]

#: (subject, clip, onset, apex1, apex2, offset, AU, emotion); made up in the release's form.
ROWS = [
    (1, "EP01_12", 73, 81, None, 91, 4, "tense"),
    (1, "EP01_5", 113, 121, 125, 133, 12, "happiness"),
    (1, "EP03_1", 79, 91, 95, 105, "4+17", "repression"),
    (2, "EP02_3", 40, 46, None, 52, "9", "disgust"),
    (2, "EP05_2", 60, "\\", None, 70, "1+2", "surprise"),
    (3, "EP07_1", 15, 20, 22, 30, "4+7", "disgust"),
    (3, "EP08_4", 101, 107, None, 118, "15", "sadness"),
    (4, "EP09_1", 200, 204, None, 212, "1+2+5", "surprise"),
    (4, "EP10_2", 33, 38, 40, 44, "14", "contempt"),
    (4, "EP11_3", 5, 9, None, 16, "4+7+10", "fear"),
]


def write_sheet(path: Path, rows=ROWS, header=HEADER) -> Path:
    """``rows`` as a CASME coding sheet (durations in ms at 60 fps, as the release has them)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(header)
    def ms(start, end):
        return (end - start) * 1000 / 60 if isinstance(start, int) and isinstance(end, int) \
            else None

    for subject, clip, onset, apex1, apex2, offset, au, emotion in rows:
        sheet.append([subject, clip, None, onset, apex1, apex2, offset, None, ms(onset, apex1),
                      ms(onset, offset), au, emotion])
    workbook.save(path)
    return path


def write_frames(root: Path, rows=ROWS, name="{clip}-{n}.jpg", blank: Path | None = None) -> Path:
    """Frames onset..offset of each row under ``root/subNN/<clip>/``."""
    blank = blank or root.parent / "blank"
    for subject, clip, onset, *_, offset, _au, _emotion in rows:
        _touch_frames(root / f"sub{subject:02d}" / clip,
                      (name.format(clip=clip, n=n) for n in range(onset, offset + 1)), blank)
    return root


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}`` of a generated CASME release (10 samples, 4 subjects)."""
    tmp.mkdir(parents=True, exist_ok=True)
    sheet = write_sheet(tmp / "CASME-coded-20190721.xlsx")
    root = write_frames(tmp / "CASME_raw_selected")
    return {"root": root, "sheet": sheet, "protocol": "all"}
