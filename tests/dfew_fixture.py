"""A small DFEW release in the official layout, built from the real split files.

The split rows and frame counts are read with the csv module (not the reader under test); the
frames are tiny generated JPEGs whose grey level encodes the frame number, so order is visible.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

PARTS = ("train", "test")


def real_rows(split_dir: Path, part: str, fold: int) -> list[tuple[int, int]]:
    """``(video_name, label)`` of a real split file, as ints."""
    with open(split_dir / f"{part}(single-labeled)" / f"set_{fold}.csv", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return [(int(name), int(label)) for name, label in reader]


def real_frame_counts(counts_csv: Path) -> dict[int, int]:
    with open(counts_csv, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        return {int(name): int(count) for name, count in reader}


def frame_image(number: int, size: int = 16) -> Image.Image:
    """A grey square whose level (``12 * number`` mod 256) identifies the frame."""
    level = (12 * number) % 256
    return Image.fromarray(np.full((size, size, 3), level, dtype=np.uint8))


def write_dfew_tree(root: Path, split_dir: Path, clip_numbers: set[int],
                    frame_counts: dict[int, int], *, max_frames: int = 20,
                    sources: tuple[str, ...] = ("clip_224x224_16f", "clip_224x224")) -> Path:
    """Write ``root/EmoLabel_DataSplit`` (the real rows of ``clip_numbers``, every fold) and the
    frame folders of ``sources`` for those clips. Returns ``root``.

    ``clip_224x224`` gets ``min(real count, max_frames)`` frames per clip; ``clip_224x224_16f``
    gets ``1.jpg..16.jpg``. Each frame is written once and hard-linked where it repeats.
    """
    cache = root.parent / f"{root.name}_frames"
    cache.mkdir(parents=True, exist_ok=True)

    def place(number: int, target: Path) -> None:
        stored = cache / f"{number}.jpg"
        if not stored.exists():
            frame_image(number).save(stored, quality=95)
        try:
            target.hardlink_to(stored)
        except OSError:
            target.write_bytes(stored.read_bytes())

    for fold in range(1, 6):
        for part in PARTS:
            folder = root / "EmoLabel_DataSplit" / f"{part}(single-labeled)"
            folder.mkdir(parents=True, exist_ok=True)
            rows = [r for r in real_rows(split_dir, part, fold) if r[0] in clip_numbers]
            lines = ["video_name,label"] + [f"{name},{label}" for name, label in rows]
            (folder / f"set_{fold}.csv").write_text("\n".join(lines) + "\n")
    for number in sorted(clip_numbers):
        clip_id = f"{number:05d}"
        if "clip_224x224_16f" in sources:
            folder = root / "Clip" / "clip_224x224_16f" / clip_id
            folder.mkdir(parents=True)
            for k in range(1, 17):
                place(k, folder / f"{k}.jpg")
        if "clip_224x224" in sources:
            folder = root / "Clip" / "clip_224x224" / clip_id
            folder.mkdir(parents=True)
            for k in range(1, min(frame_counts[number], max_frames) + 1):
                place(k, folder / f"{clip_id}_{k:05d}.jpg")
    return root


def fold1_release(root: Path, annotations: Path, *, n_train: int = 6, n_test: int = 3,
                  max_frames: int = 12) -> Path:
    """A tiny DFEW tree of fold 1's first ``n_train`` training and ``n_test`` test clips, from
    the real split files and frame counts in ``annotations`` (``../shared/data/annotations/
    dfew``)."""
    split_dir = annotations / "EmoLabel_DataSplit"
    counts = real_frame_counts(annotations / "clip_224x224_frame_counts.csv")
    train = [n for n, _ in real_rows(split_dir, "train", 1)][:n_train]
    test = [n for n, _ in real_rows(split_dir, "test", 1)][:n_test]
    return write_dfew_tree(root, split_dir, set(train + test), counts, max_frames=max_frames)
