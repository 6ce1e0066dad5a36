"""SAMM Long Videos from the real sheet (``annotations/spotting/samm_lv``): for each video the
sheet names, ``<video>/<video>_0001.jpg`` and its last frame (the latest offset plus ten),
hard links to one tiny JPEG; the reader lists names only."""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import _touch_frames, shared_path
from release_trees.tiny_jpeg import tiny_jpeg


def real_sheet() -> Path:
    return shared_path("annotations", "spotting", "samm_lv", "SAMM_LongVideos_V2_Release.csv")


def videos(sheet: Path) -> dict[str, int]:
    """``video -> last frame`` of every video the sheet names (read with ``csv``)."""
    last: dict[str, int] = {}
    with open(sheet, newline="", encoding="utf-8", errors="replace") as f:
        rows = list(csv.reader(f))
    header = next(i for i, r in enumerate(rows) if r[:2] == ["Subject", "Filename"])
    for row in rows[header + 1:]:
        if row and row[1]:
            video = row[1].rsplit("_", 1)[0]
            last[video] = max(last.get(video, 0), int(row[5]) + 10)
    return last


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}``: the video folders, the real sheet in place."""
    tmp.mkdir(parents=True, exist_ok=True)
    root = tmp / "SAMM_longvideos"
    jpeg = tiny_jpeg(tmp / "tiny.jpg")
    for video, last in videos(real_sheet()).items():
        _touch_frames(root / video, (f"{video}_{n:04d}.jpg" for n in (1, last)), jpeg)
    return {"root": root, "sheet": real_sheet(), "protocol": "spotting"}
