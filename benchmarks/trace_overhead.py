"""What ``run.trace_every`` costs: the same LOSO run with and without traces, side by side.

Tracing keeps each fold's test predictions every N epochs for the report's test-selected row
(it never chooses anything). Each engine runs its shipped config, shortened, twice without and
twice with traces, in alternating order (so drifting machine load hits both alike); the
ratio of the mean wall times is printed. The issue's bound: at most 1.10.

    python benchmarks/trace_overhead.py [--data-root ../shared/data/megc2019_flow]
        [--epochs 40] [--trace-every 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fervid.config import load_config
from fervid.protocol.loso import load_precomputed_data, run_loso

ROOT = Path(__file__).resolve().parents[1]
#: (label, config, extra overrides, folds): the fold-batched STSTNet over every fold, and the
#: sequential OFF-ApexNet over the first eight (a fold at a time, so eight show the rate).
CASES = [("fold_batched (STSTNet)", "configs/ststnet_megc2019.yaml", [], None),
         ("sequential (OFF-ApexNet)", "configs/off_apexnet_megc2019.yaml", [], "0-7")]


def timed(cfg, data, folds: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_loso(cfg, data, Path(tmp) / "run", folds_spec=folds, progress=False)
        return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared/data/megc2019_flow")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--trace-every", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.epochs} epochs, "
          f"trace every {args.trace_every} ({args.epochs // args.trace_every} traces per fold)")
    for label, config, extra, folds in CASES:
        base = [f"train.epochs={args.epochs}", *extra]
        plain = load_config(ROOT / config, base)
        traced = load_config(ROOT / config, [*base, f"run.trace_every={args.trace_every}"])
        data = load_precomputed_data(plain, args.data_root)
        times: dict[str, list[float]] = {"plain": [], "traced": []}
        for r in range(args.repeats):
            order = [("plain", plain), ("traced", traced)]
            for name, cfg in order if r % 2 == 0 else order[::-1]:
                times[name].append(timed(cfg, data, folds))
        a, b = statistics.fmean(times["plain"]), statistics.fmean(times["traced"])
        runs = ", ".join(f"{k} " + "/".join(f"{t:.1f}" for t in v) for k, v in times.items())
        print(f"{label}: without traces {a:.1f} s, with {b:.1f} s; ratio {b / a:.3f} "
              f"({'ok' if b / a <= 1.10 else 'over'} against 1.10) [{runs} s]")


if __name__ == "__main__":
    main()
