"""``fervid demo``: SMA-STN against its ablations on SynthME, in minutes on a CPU.

SynthME (generated, CASME II layout) → CASME II reader → DSSI / global DI / apex inputs
(cached) → LOSO of each model (sequential engine, two worker processes) → comparison table,
``metrics.json`` per model and DSSI pictures with their temporal segment weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fervid.config import LosoConfig
from fervid.datasets import casme2
from fervid.samples import PROTOCOL_CLASSES

#: SynthME as the demo generates it: subjects × clips, frame side in pixels.
DEMO_SUBJECTS, DEMO_CLIPS, DEMO_FRAME_SIZE = 10, 8, 64
#: SynthME is written in the CASME II layout, coding sheet included, and read as CASME II.
SHEET = casme2.SHEET


@dataclass(frozen=True)
class DemoVariant:
    """One row of the ablation table: a name, what it tests, and its config overrides."""

    name: str
    description: str
    overrides: dict


#: The ablation table, SMA-STN first. Each row is the base config plus one change.
VARIANTS: tuple[DemoVariant, ...] = (
    DemoVariant("smastn", "SMA-STN: DSSI + STMA + DE-Loss", {}),
    DemoVariant("smastn_no_stma", "SMA-STN without STMA (no non-local, mean over segments)",
                {"model": {"spatial_attention": False, "temporal_attention": False}}),
    DemoVariant("smastn_no_de", "SMA-STN without DE-Loss (cross-entropy only)",
                {"train": {"feature_loss": "none"}}),
    DemoVariant("global_di", "one global dynamic image, ResNet-18",
                {"model": {"name": "global_di_resnet"}, "data": {"format": "global_di"},
                 "train": {"feature_loss": "none"}}),
    DemoVariant("apex", "apex frame only, ResNet-18",
                {"model": {"name": "apex_resnet"}, "data": {"format": "apex"},
                 "train": {"feature_loss": "none"}}),
)


def demo_config(variant: DemoVariant, *, epochs: int, seed: int = 0) -> LosoConfig:
    """The quick CPU config: 32 px grayscale inputs, DSSI ``phase`` with one segment per phase
    (K = 2: onset→apex, apex→offset, plus the global DI), ResNet-18 from scratch, fused Adam
    1e-3, batch 16, the last epoch's model."""
    from fervid.config import deep_merge

    base = {
        "name": f"synthme_{variant.name}",
        "seed": seed,
        "model": {"name": "smastn", "drop_rate": 0.3, "backbone": "resnet18"},
        "data": {"format": "dssi", "dataset": casme2.DATASET, "protocol": "5class",
                 "sheet": f"../{SHEET}", "classes": list(PROTOCOL_CLASSES["casme2_5class"]),
                 "size": 32, "dssi": {"mode": "gray", "segments_per_phase": 1},
                 "train_views": 4},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "epochs": epochs,
                  "fused_optimizer": True, "feature_loss": "de", "feature_loss_weight": 0.1},
        "run": {"engine": "sequential", "workers": 2},
    }
    return LosoConfig.model_validate(deep_merge(base, variant.overrides))


def run_demo(out: Path, *, epochs: int = 8, seed: int = 0, only: list[str] | None = None,
             console: Console | None = None, progress: bool = True,
             n_subjects: int = DEMO_SUBJECTS, clips_per_subject: int = DEMO_CLIPS) -> list[dict]:
    """Generate SynthME (once), run the ablation LOSOs into ``out``, print and save the table.

    ``n_subjects`` and ``clips_per_subject`` size the generated set (smaller for quick checks).
    """
    from fervid.protocol.loso import load_loso_data, run_loso
    from fervid.report.dssi_gallery import write_dssi_gallery
    from fervid.representation.dssi import DssiParams
    from fervid.synth import make_synthme
    from fervid.synth.casme2_like import FRAMES_DIR

    console = console or Console()
    out = Path(out)
    variants = [v for v in VARIANTS if only is None or v.name in only]
    unknown = sorted(set(only or []) - {v.name for v in VARIANTS})
    if unknown:
        raise ValueError(f"unknown demo variant(s) {unknown}; choose from "
                         f"{[v.name for v in VARIANTS]}")
    data_dir = out / "synthme"
    if not (data_dir / SHEET).exists():  # generated once, then reused
        console.print(f"generating SynthME: {n_subjects} subjects × {clips_per_subject} clips "
                      f"in {data_dir}")
        make_synthme(data_dir, n_subjects=n_subjects, clips_per_subject=clips_per_subject,
                     size=DEMO_FRAME_SIZE, seed=0)
    frames = data_dir / FRAMES_DIR
    cache = out / "cache"
    rows = []
    for variant in variants:
        cfg = demo_config(variant, epochs=epochs, seed=seed)
        console.print(f"[bold]{variant.name}[/]: {variant.description}")
        started = time.monotonic()
        data = load_loso_data(cfg, frames, cache_dir=cache, progress=progress)
        report = run_loso(cfg, data, out / variant.name, data_root=str(frames),
                          progress=progress)
        m = report.metrics
        rows.append({"model": variant.name, "description": variant.description,
                     "uf1": m["uf1"], "uar": m["uar"], "acc": m["acc"],
                     "f1_macro": m["f1_macro"], "n_samples": m["n_samples"],
                     "n_folds": m["n_folds"], "wall_s": round(time.monotonic() - started, 1)})
        if cfg.model.name == "smastn":
            write_dssi_gallery(out / variant.name, data.table,
                               DssiParams(**cfg.data.dssi.model_dump()), cache)
    (out / "ablation.json").write_text(json.dumps({"epochs": epochs, "seed": seed,
                                                   "rows": rows}, indent=2))
    console.print(ablation_table(rows, epochs))
    return rows


def ablation_table(rows: list[dict], epochs: int) -> Table:
    table = Table(title=f"SynthME, LOSO over {rows[0]['n_folds']} subjects, "
                        f"{rows[0]['n_samples']} clips, last epoch ({epochs})")
    for col in ("model", "UF1", "UAR", "Acc", "macro-F1", "wall s"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        table.add_row(r["model"], f"{r['uf1']:.4f}", f"{r['uar']:.4f}", f"{r['acc']:.4f}",
                      f"{r['f1_macro']:.4f}", f"{r['wall_s']:.0f}")
    return table
