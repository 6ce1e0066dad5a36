"""A FERV39k release tree in the official layout, built from the real split lists.

``2_ClipsforFaceCrop/<Scene>/<Emotion>/<id>/`` gets ``frames`` hard links to one tiny JPEG per
listed clip, and ``4_setups/All_scenes/{train,test}_All.csv`` the official form of the lists
(``<Scene>/<Emotion>/<id> <Emotion>``). The lists are read here with plain string splitting,
not the reader under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from conftest import shared_path

#: The lists' labels 0..6 name these emotion folders.
EMOTIONS = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
PARTS = ("train", "test")


def real_rows(part: str) -> list[tuple[str, int, int]]:
    """``(Scene/Emotion/id, frame count, label)`` of a real list, in file order."""
    path = shared_path("annotations", "ferv39k", f"FERV39K_{part}.txt")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            name, count, label = line.split()
            rows.append(("/".join(name.split("/")[-3:]), int(count), int(label)))
    return rows


def _subset(rows: list[tuple[str, int, int]], limit: int | None) -> list[tuple[str, int, int]]:
    """The first ``limit`` rows taking each class in turn (all rows when ``limit`` is None)."""
    if limit is None:
        return rows
    by_class = [[r for r in rows if r[2] == k] for k in range(len(EMOTIONS))]
    picked = [r for turn in range(limit) for r in [c[turn] for c in by_class if turn < len(c)]]
    return picked[:limit]


class FrameLinks:
    """Hard links to tiny 16 x 16 mid-grey JPEGs kept in ``folder``: a new copy every
    ``LINKS_PER_FILE`` links (a file system caps the links to one file, ext4 at 65,000)."""

    LINKS_PER_FILE = 50_000

    def __init__(self, folder: Path):
        self.folder, self.count, self.parents = Path(folder), 0, set()
        self.folder.mkdir(parents=True, exist_ok=True)

    def _source(self) -> Path:
        path = self.folder / f"frame_{self.count // self.LINKS_PER_FILE}.jpg"
        if not path.exists():
            Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(path, quality=90)
        return path

    def folder_of(self, folder: Path) -> Path:
        """``folder`` created (its parents once: creating folders is the slow part)."""
        if folder.parent not in self.parents:
            folder.parent.mkdir(parents=True, exist_ok=True)
            self.parents.add(folder.parent)
        folder.mkdir(exist_ok=True)
        return folder

    def place(self, target: Path) -> None:
        if not target.exists():
            target.hardlink_to(self._source())
            self.count += 1


def build(tmp: Path, limit: int | None = None, frames: int = 2) -> dict:
    """Write the tree under ``tmp/FERV39k``: all 38,935 listed clips, or the first ``limit``
    training and ``limit`` test clips (classes in turn), each with ``min(frames, real count)``
    frames ``0000.jpg``... (``frames=0``: the split files alone). Returns ``{"root", "sheet":
    None, "protocol": "7class"}``."""
    root = Path(tmp) / "FERV39k"
    links = FrameLinks(Path(tmp) / "ferv39k_frames")
    setups = root / "4_setups" / "All_scenes"
    setups.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        rows = _subset(real_rows(part), limit)
        (setups / f"{part}_All.csv").write_text(
            "".join(f"{clip} {EMOTIONS[label]}\n" for clip, _, label in rows))
        for clip, count, _ in rows if frames else []:
            folder = links.folder_of(root / "2_ClipsforFaceCrop" / clip)
            for k in range(min(frames, count)):
                links.place(folder / f"{k:04d}.jpg")
    return {"root": root, "sheet": None, "protocol": "7class"}
