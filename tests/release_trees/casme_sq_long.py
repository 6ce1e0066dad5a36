"""CAS(ME)²'s long videos from the real code sheet (``annotations/spotting/casme_sq``): for each
video the sheet names, ``rawpic/sNN/NN_CCCC<title>/img1.jpg`` and its last frame (the latest
offset or apex of the video, plus ten), hard links to one tiny JPEG. The reader lists names
only, so two frames a video are enough to find it and count its frames."""

from __future__ import annotations

from pathlib import Path

import openpyxl

from conftest import _touch_frames, shared_path
from release_trees.tiny_jpeg import tiny_jpeg

#: Video code -> the title the release appends to its folder names.
TITLES = {101: "disgustingteeth", 102: "eatingworms", 401: "girlcrashing",
          402: "beatingpregnantwoman", 502: "funnyerrors", 503: "unnyfarting",
          505: "funnyinnovations", 507: "cutekids", 508: "shakehands"}


def real_sheet() -> Path:
    return shared_path("annotations", "spotting", "casme_sq", "CASME_sq_gt.xlsx")


def videos(sheet: Path) -> dict[tuple[str, str], int]:
    """``(subject folder, video folder) -> last frame`` of every video the sheet names, read
    with openpyxl (not the reader)."""
    book = openpyxl.load_workbook(sheet, read_only=True)
    folders = {p: f for _, f, p in book["naming rule1"].iter_rows(values_only=True)}
    codes = {name: code for code, name in book["naming rule2"].iter_rows(values_only=True)}
    last: dict[tuple[str, str], int] = {}
    for row in book["CASFEcode_final"].iter_rows(values_only=True):
        if not row[0]:
            continue
        folder = folders[row[0]]
        code = int(codes[row[1].rsplit("_", 1)[0]])
        key = (folder, f"{folder[1:]}_{code:04d}{TITLES[code]}")
        last[key] = max(last.get(key, 0), max(row[2], row[3], row[4]) + 10)
    book.close()
    return last


def build(tmp: Path) -> dict:
    """``{"root", "sheet", "protocol"}``: the rawpic tree, the real sheet in place."""
    tmp.mkdir(parents=True, exist_ok=True)
    sheet = real_sheet()
    root = tmp / "rawpic"
    jpeg = tiny_jpeg(tmp / "tiny.jpg")
    for (subject, video), last in videos(sheet).items():
        _touch_frames(root / subject / video, (f"img{n}.jpg" for n in (1, last)), jpeg)
    return {"root": root, "sheet": sheet, "protocol": "spotting"}
