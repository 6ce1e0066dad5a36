"""Terminal table of a k-fold run: WAR, UAR and per-class recall, pooled over the folds (the
DFEW paper) and as the mean of the folds (later papers); merged by :mod:`fervid.runs.results`."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from fervid.report.provenance import print_provenance
from fervid.runs.results import AVERAGES


def kfold_table(metrics: dict) -> Table:
    """WAR, UAR and per-class recall, pooled and mean of folds, with the label order."""
    classes = metrics["classes"]
    order = ", ".join(f"{i}={c}" for c, i in metrics["label_order"].items())
    table = Table(title=f"{metrics['name']}: folds {metrics['folds']}, "
                        f"{metrics['n_samples']} test clips\nlabel order: {order}")
    table.add_column("figure")
    for col in ("WAR", "UAR", *classes):
        table.add_column(col, justify="right")
    for key, label in AVERAGES.items():
        m = metrics[key]
        recall = [m["per_class_recall"].get(c, float("nan")) for c in classes]
        table.add_row(label, f"{100 * m['war']:.2f}", f"{100 * m['uar']:.2f}",
                      *(f"{100 * r:.2f}" for r in recall))
    return table


def print_kfold_report(metrics: dict, console: Console | None = None,
                       run_dir: Path | None = None) -> None:
    """The table, then the one-line summary of what made the run (read from ``run_dir``, or
    from ``metrics`` when it holds a ``provenance``)."""
    console = console or Console()
    console.print(kfold_table(metrics))
    print_provenance(console, run_dir, metrics if "provenance" in metrics else None)
