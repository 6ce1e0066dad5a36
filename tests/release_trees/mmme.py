"""An MMME tree from the real coding file: ``<root>/<Subject>/<video stem>/<N:05d>.jpg`` for every
expression lasting at most 0.5 s, frames floor(onset x 150) .. ceil(offset x 150) + 1 (a frame
either side of any rounding), as hard links to empty files."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

from conftest import shared_path
from release_trees.casme3 import FrameLinker, sheet_rows

FPS = 150


def build(tmp: Path) -> dict:
    """The tree under ``tmp``: ``{"root", "sheet", "protocol"}``."""
    sheet = shared_path("annotations", "mmme", "coding_file.xlsx")
    root = tmp / "MMME"
    linker = FrameLinker(tmp / "mmme_blanks")
    for _, (subject, video, _, onset, _, offset, *_) in sheet_rows(sheet, "Sheet1"):
        onset, offset = Fraction(str(onset)), Fraction(str(offset))
        if offset - onset > Fraction(1, 2):
            continue
        first, last = math.floor(onset * FPS), math.ceil(offset * FPS) + 1
        linker.frames(root / subject / Path(video).stem,
                      (f"{n:05d}.jpg" for n in range(first, last + 1)))
    return {"root": root, "sheet": sheet, "protocol": "7class"}
