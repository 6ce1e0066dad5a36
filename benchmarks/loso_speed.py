"""LOSO training speed: fervid's engine beside the authors' way, measured in one run.

The reference is STSTNet's published training loop: one fold after another, a DataLoader over
the fold's tensors (batch 256, no shuffle), float32, and an evaluation pass on the test subject
after every epoch. fervid runs ``configs/ststnet_megc2019.yaml`` (every fold of a worker as one
batched model, two single-threaded workers, bfloat16 products). Both train the same number of
epochs on the same 442 MEGC2019 inputs; each is timed end to end and extrapolated to the full
recipe (68 folds × 800 epochs), printed with the ratio.

    python benchmarks/loso_speed.py [--data-root ../shared/data/megc2019_flow] [--epochs 40]
        [--ref-folds 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from fervid.config import load_config
from fervid.models.ststnet import STSTNet
from fervid.protocol.folds import LosoFolds
from fervid.protocol.loso import load_precomputed_data, run_loso

ROOT = Path(__file__).resolve().parents[1]
FULL_FOLDS, FULL_EPOCHS = 68, 800


def reference(data, folds: LosoFolds, n_folds: int, epochs: int) -> float:
    """Seconds per fold-epoch of the reference loop (first ``n_folds`` folds)."""
    start = time.perf_counter()
    for f in range(n_folds):
        tr, te = folds.train_index(f), folds.test_index(f)
        train_dl = DataLoader(TensorDataset(data.x[tr], data.y[tr]), batch_size=256)
        test_dl = DataLoader(TensorDataset(data.x[te], data.y[te]), batch_size=256)
        torch.manual_seed(f)
        model = STSTNet()
        opt = torch.optim.Adam(model.parameters(), lr=5e-5)
        for _ in range(epochs):
            model.train()
            for x, y in train_dl:
                opt.zero_grad()
                loss = F.cross_entropy(model(x).logits, y)
                loss.backward()
                opt.step()
            model.eval()
            with torch.no_grad():
                for x, y in test_dl:
                    F.cross_entropy(model(x).logits, y)
    return (time.perf_counter() - start) / (n_folds * epochs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", type=Path, default=ROOT.parent / "shared/data/megc2019_flow")
    ap.add_argument("--config", type=Path, default=ROOT / "configs/ststnet_megc2019.yaml")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--ref-folds", type=int, default=4)
    args = ap.parse_args()

    cfg = load_config(args.config, [f"train.epochs={args.epochs}"])
    data = load_precomputed_data(cfg, args.data_root)
    folds = LosoFolds.from_table(data.table)

    threads = torch.get_num_threads()
    ref = reference(data, folds, args.ref_folds, args.epochs)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_loso(cfg, data, Path(tmp) / "run", progress=False)
        ours_total = time.perf_counter() - start
    ours = ours_total / (len(folds) * args.epochs)

    full = FULL_FOLDS * FULL_EPOCHS
    print(f"torch {torch.__version__}, {threads} threads; {len(data.x)} samples, "
          f"{len(folds)} folds, {args.epochs} epochs")
    print(f"reference loop ({args.ref_folds} folds): {ref * 1e3:8.2f} ms per fold-epoch -> "
          f"{ref * full:7.0f} s for 68 folds x 800 epochs ({FULL_FOLDS / (ref * full):.4f} "
          "folds/s)")
    print(f"fervid loso ({len(folds)} folds, incl. start-up): {ours * 1e3:8.2f} ms per "
          f"fold-epoch -> {ours * full:7.0f} s ({FULL_FOLDS / (ours * full):.4f} folds/s); "
          f"this run {ours_total:.1f} s")
    print(f"speed-up: {ref / ours:.2f}x")


if __name__ == "__main__":
    main()
