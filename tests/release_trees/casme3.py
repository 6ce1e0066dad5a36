"""A CAS(ME)³ Part A release tree from the real v2 sheet: ``<root>/spNO.N/<letter>/color/<N>.jpg``
for every sheet row's onset..offset (the sheet's wrong cells taken as the errata table corrects
them), and the release's ``exception/`` lists copied into ``<root>/exception``. Frames are hard
links to empty files: the reader lists names only."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from conftest import shared_path

SHEET_PARTS = ("annotations", "casme3", "partA", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
#: ext4 allows 65,000 links to one file; a new blank file is started well before.
LINKS_PER_BLANK = 60_000


class FrameLinker:
    """Creates frame files as hard links to a few empty files kept in ``store``."""

    def __init__(self, store: Path):
        self.store = store
        store.mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.blank = store / "blank0"
        self.blank.touch()

    def frames(self, folder: Path, names: Iterable[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            if self.count and self.count % LINKS_PER_BLANK == 0:
                self.blank = self.store / f"blank{self.count // LINKS_PER_BLANK}"
                self.blank.touch()
            self.count += 1
            target = folder / name
            if target.exists():
                continue
            try:
                os.link(self.blank, target)
            except OSError:
                target.touch()


def sheet_rows(path: Path, sheet: str, first_row: int = 2) -> list[tuple]:
    """``(excel_row, values)`` of the non-blank rows of ``sheet`` (openpyxl, not the reader)."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = [(i, r) for i, r in enumerate(workbook[sheet].iter_rows(min_row=first_row,
                                                                   values_only=True), first_row)
            if any(v is not None for v in r)]
    workbook.close()
    return rows


def corrected_rows(sheet: Path) -> list[dict]:
    """The sheet's rows as dicts (frame numbers as ints), with the errata table's values."""
    from fervid.datasets.errata import ERRATA

    fixes = {(e.excel_row, e.field): e.corrected for e in ERRATA
             if e.sheet.lower() == sheet.name.lower()}
    header = ("Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class",
              "emotion")
    out = []
    for excel_row, values in sheet_rows(sheet, "label"):
        row = dict(zip(header, values, strict=False))
        for field in ("Onset", "Apex", "Offset"):
            row[field] = int(fixes.get((excel_row, field), row[field]))
        out.append(row)
    return out


def build(tmp: Path) -> dict:
    """The tree under ``tmp``: ``{"root", "sheet", "protocol"}``."""
    sheet = shared_path(*SHEET_PARTS)
    root = tmp / "casme3_partA"
    linker = FrameLinker(tmp / "casme3_blanks")
    for row in corrected_rows(sheet):
        folder = root / row["Subject"] / row["Filename"] / "color"
        linker.frames(folder, (f"{n}.jpg" for n in range(row["Onset"], row["Offset"] + 1)))
    exception = shared_path("annotations", "casme3", "exception")
    (root / "exception").mkdir()
    for name in ("error_info_damaged_image_partA.txt", "image_with_bad_quality_partA.txt"):
        shutil.copy(exception / name, root / "exception" / name)
    return {"root": root, "sheet": sheet, "protocol": "7class"}
