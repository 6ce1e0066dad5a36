"""A MAFW release tree in the official layout, built from the real fold lists.

``data/faces/<id>/`` gets ``frames`` hard links to one tiny JPEG per chosen clip, and
``Train & Test Set/single/no_caption/set_N/{train,test}.txt`` the release's form of the lists
(``<id>.mp4 <class>``), restricted to the chosen clips. The lists (labels in their project's
order) are read here with plain string splitting, not the reader under test.
"""

from __future__ import annotations

from pathlib import Path

from conftest import shared_path
from release_trees.ferv39k import FrameLinks

#: The lists' labels 0..10 (their project's order, not the release's).
LIST_CLASSES = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear",
                "contempt", "anxiety", "helplessness", "disappointment")
PARTS = ("train", "test")
FOLDS = (1, 2, 3, 4, 5)
SPLIT_DIR = Path("Train & Test Set") / "single" / "no_caption"


def real_rows(fold: int, part: str) -> list[tuple[str, int, int]]:
    """``(clip id, frame count, label)`` of a real list, in file order."""
    path = shared_path("annotations", "mafw", f"MAFW_set_{fold}_{part}.txt")
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            name, count, label = line.split()
            rows.append((name.rsplit("/", 1)[-1], int(count), int(label)))
    return rows


def _chosen(limit: int | None) -> set[str] | None:
    """``limit`` clips: fold 1's training and test clips, classes in turn, in the ratio of
    its lists (about 4 to 1); None: every clip."""
    if limit is None:
        return None
    chosen: set[str] = set()
    for part, share in (("train", limit - max(1, limit // 5)), ("test", max(1, limit // 5))):
        rows = real_rows(1, part)
        by_class = [[r[0] for r in rows if r[2] == k] for k in range(len(LIST_CLASSES))]
        turns = [c[turn] for turn in range(share) for c in by_class if turn < len(c)]
        chosen |= set(turns[:share])
    return chosen


def build(tmp: Path, limit: int | None = None, frames: int = 2) -> dict:
    """Write the tree under ``tmp/MAFW``: all 9,172 clips of the 5 folds, or ``limit`` clips
    chosen from fold 1 (every fold's files then list those of them it holds), each with
    ``min(frames, real count)`` frames ``00001.jpg``... (``frames=0``: the split files alone).
    Returns ``{"root", "sheet": None,
    "protocol": "11class"}``."""
    root = Path(tmp) / "MAFW"
    links = FrameLinks(Path(tmp) / "mafw_frames")
    chosen = _chosen(limit)
    counts: dict[str, int] = {}
    for fold in FOLDS:
        folder = root / SPLIT_DIR / f"set_{fold}"
        folder.mkdir(parents=True, exist_ok=True)
        for part in PARTS:
            rows = [r for r in real_rows(fold, part) if chosen is None or r[0] in chosen]
            (folder / f"{part}.txt").write_text(
                "".join(f"{clip}.mp4 {LIST_CLASSES[label]}\n" for clip, _, label in rows))
            counts.update({clip: count for clip, count, _ in rows})
    for clip, count in counts.items() if frames else []:
        faces = links.folder_of(root / "data" / "faces" / clip)
        for k in range(1, min(frames, count) + 1):
            links.place(faces / f"{k:05d}.jpg")
    return {"root": root, "sheet": None, "protocol": "11class"}
