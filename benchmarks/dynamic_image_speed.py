"""Dynamic image speed: ``dynamic_image`` beside a plain float32 cast-and-sum, measured in one run.

The target (``docs/methods.md`` §1 brief): on a 64x224x224x3 uint8 clip, approximate rank pooling
takes at most 2x the time of ``frames.astype(np.float32).sum(0)``, the cheapest way to touch
every pixel as float. Both run alternately on the same clip; the median of the repeats is
printed with the ratio. With ``--torch`` the CPU tensor path is timed too.

    python benchmarks/dynamic_image_speed.py [--frames 64] [--size 224] [--repeats 9] [--torch]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fervid.representation.dynamic_image import dynamic_image


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64)
    parser.add_argument("--size", type=int, default=224, help="height and width")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--torch", action="store_true", help="also time a CPU torch tensor")
    args = parser.parse_args()

    clip = np.random.default_rng(0).integers(0, 256, (args.frames, args.size, args.size, 3),
                                             dtype=np.uint8)
    candidates = {"dynamic_image (numpy uint8)": lambda: dynamic_image(clip),
                  "astype(float32).sum(0)": lambda: clip.astype(np.float32).sum(0)}
    if args.torch:
        import torch

        tensor = torch.from_numpy(clip)
        candidates["dynamic_image (torch uint8, CPU)"] = lambda: dynamic_image(tensor)
    for fn in candidates.values():  # warm-up: first-call allocations and caches
        fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):  # interleaved, so load changes hit every candidate alike
        for name, fn in candidates.items():
            times[name].append(timed(fn))

    print(f"clip {clip.shape} uint8, median of {args.repeats} repeats")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, m in medians.items():
        print(f"  {name:34s} {m * 1e3:9.2f} ms")
    base = medians["astype(float32).sum(0)"]
    for name, m in medians.items():
        if name.startswith("dynamic_image"):
            print(f"  ratio {name} / astype-sum: {m / base:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
