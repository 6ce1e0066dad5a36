"""DFEW clip loading speed: ``load_clip`` beside the plain way, measured in one run.

A DFEW-like tree of 256x256 JPEG frames (the size of the release's ``clip_224x224`` images) is
built from the real face videos in ``../shared/data/videos``: each video is decoded with PyAV,
centre-cropped, resized to 256 and cut into clips of ``--frames-per-clip`` frames. Then 16
frames of every clip are loaded at 112x112, alternately by

- the plain way: PIL decodes every pixel of each frame, then resizes it, then ``np.stack``;
- ``fervid.representation.frame_loading.load_clip``: reduced-scale JPEG decoding into a
  preallocated array.

The median clips/s of each over the repeats and their ratio are printed (target: >= 1.8).

    python benchmarks/dfew_loader_speed.py [--clips 48] [--repeats 5] [--cache DIR]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from fervid.representation.frame_loading import load_clip
from fervid.representation.temporal_sampling import uniform_indices

VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
FRAME_SIZE = 256


def build_tree(root: Path, clips: int, frames_per_clip: int) -> list[list[Path]]:
    """``root/<id>/<id>_<NNNNN>.jpg`` cut from the real videos (reused when already there)."""
    existing = sorted(p for p in root.glob("*") if p.is_dir())
    if len(existing) >= clips:
        return [sorted(d.glob("*.jpg")) for d in existing[:clips]]
    videos = sorted(p for p in VIDEOS.glob("*") if p.suffix in {".mp4", ".mov"})
    if not videos:
        raise SystemExit(f"no videos in {VIDEOS}: this benchmark needs ../shared/data/videos")
    tree: list[list[Path]] = []
    while len(tree) < clips:
        before = len(tree)
        for video in videos:
            if len(tree) >= clips:
                break
            tree += _cut_video(video, root, len(tree), clips - len(tree), frames_per_clip)
        if len(tree) == before:
            raise SystemExit(f"the videos in {VIDEOS} are shorter than {frames_per_clip} frames")
    return tree


def _cut_video(video: Path, root: Path, first_id: int, wanted: int,
               frames_per_clip: int) -> list[list[Path]]:
    clips: list[list[Path]] = []
    current: list[Path] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if len(clips) == wanted:
                break
            clip_id = f"{first_id + len(clips) + 1:05d}"
            folder = root / clip_id
            folder.mkdir(parents=True, exist_ok=True)
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[:2]
            side = min(h, w)
            square = rgb[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            path = folder / f"{clip_id}_{len(current) + 1:05d}.jpg"
            Image.fromarray(square).resize((FRAME_SIZE, FRAME_SIZE),
                                           Image.Resampling.BILINEAR).save(path, quality=90)
            current.append(path)
            if len(current) == frames_per_clip:
                clips.append(current)
                current = []
    return clips


def plain_load(paths: list[Path], size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize(
        (size, size), Image.Resampling.BILINEAR)) for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--frames-per-clip", type=int, default=40)
    parser.add_argument("--num-frames", type=int, default=16, help="frames loaded per clip")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cache", type=Path, help="keep the frame tree here between runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.cache or Path(scratch) / "clip_224x224"
        start = time.perf_counter()
        tree = build_tree(root, args.clips, args.frames_per_clip)
        print(f"frame tree: {len(tree)} clips of {args.frames_per_clip} {FRAME_SIZE}x{FRAME_SIZE} "
              f"JPEGs under {root} ({time.perf_counter() - start:.1f} s)")
        chosen = [[paths[i] for i in uniform_indices(len(paths), args.num_frames)]
                  for paths in tree]
        candidates = {
            "plain (PIL full decode + resize)": lambda p: plain_load(p, args.size),
            "load_clip (reduced decode)": lambda p: load_clip(p, args.size),
        }
        error = np.mean([np.abs(plain_load(p, args.size).astype(np.int16)
                                - load_clip(p, args.size)).mean() for p in chosen[:4]])
        rates: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(args.repeats):  # interleaved, so load changes hit both alike
            for name, load in candidates.items():
                start = time.perf_counter()
                for paths in chosen:
                    load(paths)
                rates[name].append(len(chosen) / (time.perf_counter() - start))
    print(f"{len(chosen)} clips x {args.num_frames} frames -> {args.size}x{args.size}, "
          f"median of {args.repeats} repeats:")
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, rate in medians.items():
        print(f"  {name:<34} {rate:8.1f} clips/s")
    ratio = medians["load_clip (reduced decode)"] / medians["plain (PIL full decode + resize)"]
    print(f"  speed-up {ratio:.2f}x (target >= 1.8); mean abs pixel difference {error:.2f}")


if __name__ == "__main__":
    main()
