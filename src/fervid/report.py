"""Merge a run's finished folds (from any number of shards) into its results.

``fervid report RUN_DIR`` and the end of ``fervid loso`` both call :func:`build_report`, which
writes ``predictions.csv``, ``metrics.json``, ``per_subject.csv`` and ``confusion.png``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from fervid.files import atomic_write
from fervid.metrics import save_confusion_png, score_predictions
from fervid.protocol.run_store import PREDICTION_COLUMNS, RunStore, read_run_meta


@dataclass(frozen=True)
class LosoReport:
    run_dir: Path
    metrics: dict
    per_subject: pd.DataFrame


def build_report(run_dir: Path) -> LosoReport:
    """Score every finished fold of ``run_dir`` and write the merged result files."""
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    classes = meta["classes"]
    store = RunStore(run_dir)
    frame = store.read_predictions().sort_values(["fold"], kind="stable")
    scores = score_predictions(frame, classes)
    whole = scores["whole"]
    wall = sum(json.loads(p.read_text())["wall_s"] for p in (run_dir / "wall").glob("*.json"))
    n_folds_done = int(frame["fold"].nunique())
    metrics = {
        "name": meta.get("name"), "seed": meta.get("seed"), "fingerprint": meta["fingerprint"],
        "classes": classes,
        "uf1": whole.uf1, "uar": whole.uar, "acc": whole.acc, "f1_macro": whole.f1_macro,
        "n_samples": whole.n_samples, "n_folds": n_folds_done,
        "n_folds_total": meta["n_folds"], "complete": n_folds_done == meta["n_folds"],
        "wall_s": round(wall, 2),
        "per_dataset": scores["per_dataset"],
        "per_class_recall": whole.per_class_recall, "per_class_f1": whole.per_class_f1,
    }
    per_subject = pd.DataFrame(scores["per_subject"]).sort_values(["acc", "n"],
                                                                  ascending=[True, False])
    atomic_write(run_dir / "predictions.csv",
                 lambda p: frame[PREDICTION_COLUMNS].to_csv(p, index=False))
    atomic_write(run_dir / "per_subject.csv", lambda p: per_subject.to_csv(p, index=False))
    atomic_write(run_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2)))
    save_confusion_png(frame["label"], frame["pred"], classes, run_dir / "confusion.png",
                       title=f"{meta.get('name')} seed {meta.get('seed')}: UF1 {whole.uf1:.4f}"
                             f"  UAR {whole.uar:.4f}")
    return LosoReport(run_dir, metrics, per_subject)


def results_table(report: LosoReport) -> Table:
    m = report.metrics
    done = "" if m["complete"] else f" ({m['n_folds']}/{m['n_folds_total']} folds done)"
    table = Table(title=f"{m['name']} seed {m['seed']}: {m['n_samples']} samples, "
                        f"{m['n_folds']} folds{done}, {m['wall_s']:.0f} s")
    for col in ("set", "n", "UF1", "UAR", "Acc", "macro-F1"):
        table.add_column(col, justify="left" if col == "set" else "right")
    table.add_row("all", str(m["n_samples"]), *(f"{m[k]:.4f}" for k in (
        "uf1", "uar", "acc", "f1_macro")), style="bold")
    if len(m["per_dataset"]) > 1:
        for name, d in m["per_dataset"].items():
            table.add_row(name, str(d["n_samples"]),
                          *(f"{d[k]:.4f}" for k in ("uf1", "uar", "acc", "f1_macro")))
    table.caption = "classes: " + ", ".join(m["classes"])
    return table


def print_report(report: LosoReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(results_table(report))
    console.print(f"results in {report.run_dir}: metrics.json, predictions.csv, "
                  f"per_subject.csv, confusion.png")


def seeds_table(reports: list[LosoReport]) -> Table:
    """Runs side by side (e.g. seeds of one config), with mean and standard deviation."""
    names = sorted({r.metrics["name"] for r in reports})
    table = Table(title=f"{len(reports)} runs of {', '.join(names)}")
    keys = ("uf1", "uar", "acc", "f1_macro")
    for col in ("run", "seed", "folds", "UF1", "UAR", "Acc", "macro-F1", "wall s"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for r in reports:
        m = r.metrics
        table.add_row(r.run_dir.name, str(m["seed"]), f"{m['n_folds']}/{m['n_folds_total']}",
                      *(f"{m[k]:.4f}" for k in keys), f"{m['wall_s']:.0f}")
    values = {k: [r.metrics[k] for r in reports] for k in keys + ("wall_s",)}
    table.add_row("mean", "", "", *(f"{statistics.fmean(values[k]):.4f}" for k in keys),
                  f"{statistics.fmean(values['wall_s']):.0f}", style="bold")
    table.add_row("std", "", "", *(f"{statistics.stdev(values[k]):.4f}" for k in keys), "")
    return table
