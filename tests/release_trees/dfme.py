"""A DFME release tree from the three real sheets: ``<root>/train_data/<Filename>/<N:05d>.png``,
``test_data_A/test_data_A/...`` (as unzipping into a folder of the same name leaves it) and
``test_data_B/...``. The clips hold 343,000 frames, too many to link quickly: each clip folder
is a symbolic link to a shared folder of frames 0..offset (empty files), a superset of its
onset..offset, which the reader lists as it lists a real folder."""

from __future__ import annotations

from pathlib import Path

from conftest import shared_path
from release_trees.casme3 import FrameLinker, sheet_rows

SHEETS = {"training_full_with_AU.xlsx": Path("train_data"),
          "testA_full_with_AU.xlsx": Path("test_data_A/test_data_A"),
          "testB_full_with_AU.xlsx": Path("test_data_B")}


def build(tmp: Path) -> dict:
    """The tree under ``tmp``: ``{"root", "sheet", "protocol"}``."""
    folder = shared_path("annotations", "dfme")
    root = tmp / "DFME"
    linker = FrameLinker(tmp / "dfme_blanks")
    pools = tmp / "dfme_frames"
    for name, split_dir in SHEETS.items():
        (root / split_dir).mkdir(parents=True)
        for _, (_, clip, _, _, offset, *_) in sheet_rows(folder / name, "Sheet1"):
            pool = pools / str(offset)
            if not pool.is_dir():
                linker.frames(pool, (f"{n:05d}.png" for n in range(offset + 1)))
            (root / split_dir / clip).symlink_to(pool, target_is_directory=True)
    return {"root": root, "sheet": folder / "training_full_with_AU.xlsx", "protocol": "7class"}
