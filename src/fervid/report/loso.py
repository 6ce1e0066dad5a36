"""Terminal tables of LOSO runs (their results are merged by :mod:`fervid.runs.results`)."""

from __future__ import annotations

import statistics

from rich.console import Console
from rich.table import Table

from fervid.report.provenance import print_provenance
from fervid.runs.results import LosoReport


def results_table(report: LosoReport) -> Table:
    m = report.metrics
    done = "" if m["complete"] else f" ({m['n_folds']}/{m['n_folds_total']} folds done)"
    held = " (one dataset held out each)" if m.get("group") == "dataset" else ""
    table = Table(title=f"{m['name']} seed {m['seed']}: {m['n_samples']} samples, "
                        f"{m['n_folds']} folds{held}{done}, {m['wall_s']:.0f} s")
    for col in ("set", "n", "UF1", "UAR", "Acc", "macro-F1"):
        table.add_column(col, justify="left" if col == "set" else "right")
    table.add_row("all", str(m["n_samples"]), *(f"{m[k]:.4f}" for k in (
        "uf1", "uar", "acc", "f1_macro")), style="bold")
    if len(m["per_dataset"]) > 1:
        for name, d in m["per_dataset"].items():
            table.add_row(name, str(d["n_samples"]),
                          *(f"{d[k]:.4f}" for k in ("uf1", "uar", "acc", "f1_macro")))
    selected = m.get("test_selected")
    if selected:  # beside the honest figure, never instead of it
        table.add_row(selected["label"], str(selected["n_samples"]),
                      *(f"{selected[k]:.4f}" for k in ("uf1", "uar", "acc", "f1_macro")),
                      style="red")
    table.caption = "classes: " + ", ".join(m["classes"])
    return table


def print_report(report: LosoReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(results_table(report))
    print_provenance(console, report.run_dir)
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
