"""The demo's SMA-STN ablation (``fervid demo``) with ``data.register`` on or off.

Same SynthME, same configs (:func:`fervid.cli.demo.demo_config`), same seed; the only change is
``data.register``: every frame of a clip registered onto its onset before the DSSI, the global
dynamic image or the apex frame is made (:func:`fervid.faces.register_cropped`).

    python scripts/demo_register.py --out runs/demo_register            # registered
    python scripts/demo_register.py --out runs/demo_plain --no-register  # as fervid demo
    python scripts/demo_register.py --out runs/demo_register_s1 --seed 1 --only smastn global_di
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fervid.cli.demo import (
    DEMO_CLIPS,
    DEMO_FRAME_SIZE,
    DEMO_SUBJECTS,
    SHEET,
    VARIANTS,
    ablation_table,
    demo_config,
)
from fervid.config import LosoConfig, deep_merge
from fervid.protocol.loso import load_loso_data, run_loso
from fervid.synth import make_synthme
from fervid.synth.casme2_like import FRAMES_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--register", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--only", nargs="+", metavar="MODEL",
                        help="rows to run (default all): " + " ".join(v.name for v in VARIANTS))
    args = parser.parse_args()

    data_dir = args.out / "synthme"
    if not (data_dir / SHEET).exists():
        make_synthme(data_dir, n_subjects=DEMO_SUBJECTS, clips_per_subject=DEMO_CLIPS,
                     size=DEMO_FRAME_SIZE, seed=0)
    frames = data_dir / FRAMES_DIR
    rows = []
    for variant in (v for v in VARIANTS if args.only is None or v.name in args.only):
        base = demo_config(variant, epochs=args.epochs, seed=args.seed).model_dump()
        cfg = LosoConfig.model_validate(deep_merge(base, {"data": {"register": args.register}}))
        started = time.monotonic()
        data = load_loso_data(cfg, frames, cache_dir=args.out / "cache", progress=False)
        m = run_loso(cfg, data, args.out / variant.name, data_root=str(frames),
                     progress=False).metrics
        rows.append({"model": variant.name, "uf1": m["uf1"], "uar": m["uar"], "acc": m["acc"],
                     "f1_macro": m["f1_macro"], "n_samples": m["n_samples"],
                     "n_folds": m["n_folds"], "wall_s": round(time.monotonic() - started, 1)})
        print(variant.name, {k: round(v, 4) for k, v in m.items() if k in ("uf1", "uar", "acc")},
              flush=True)
    (args.out / "ablation.json").write_text(json.dumps(
        {"epochs": args.epochs, "seed": args.seed, "register": args.register, "rows": rows},
        indent=2))
    from rich.console import Console

    Console().print(ablation_table(rows, args.epochs))


if __name__ == "__main__":
    main()
