"""Terminal tables of LOSO runs (their results are merged by :mod:`fervid.runs.results`)."""

from __future__ import annotations

import statistics

from rich.console import Console
from rich.table import Table

from fervid.report.provenance import print_provenance
from fervid.runs.results import LosoReport


def results_table(report: LosoReport) -> Table:
    m = report.metrics
    if m.get("task") == "au":
        return au_table(report)
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
    aid = m.get("au_aid")
    if aid:  # trained with an AU head beside the emotion head: say so under the scores
        without = ", ".join(f"{d} {n}" for d, n in (aid.get("without_aus") or {}).items())
        table.caption += (f"\nAU aid: + {aid['weight']:g} x AU loss over {len(aid['aus'])} "
                          f"AUs on the {aid['n_with_aus']} samples with AU labels"
                          + (f" (none for {without})" if without else ""))
    return table


def au_table(report: LosoReport) -> Table:
    """An AU run: binary F1 per AU (overall and per dataset), positives, the constant
    "always present" reference, and the means, with MEB's macro variant labelled apart."""
    m = report.metrics
    done = "" if m["complete"] else f" ({m['n_folds']}/{m['n_folds_total']} folds done)"
    held = " (one dataset held out each)" if m.get("group") == "dataset" else ""
    table = Table(title=f"{m['name']} seed {m['seed']}: AU detection, {m['n_samples']} samples, "
                        f"{m['n_folds']} folds{held}{done}, {m['wall_s']:.0f} s")
    sets = list(m["per_dataset"]) if len(m["per_dataset"]) > 1 else []
    for col in ("AU", "positives", "F1", *(f"F1 {d}" for d in sets), "always present"):
        table.add_column(col, justify="left" if col == "AU" else "right")
    for au in m["classes"]:
        table.add_row(au, str(m["positives"][au]), f"{m['au_f1'][au]:.4f}",
                      *(f"{m['per_dataset'][d]['au_f1'][au]:.4f}" for d in sets),
                      f"{m['au_f1_constant'][au]:.4f}")
    table.add_row("mean (binary F1)", "", f"{m['au_f1_mean']:.4f}",
                  *(f"{m['per_dataset'][d]['au_f1_mean']:.4f}" for d in sets),
                  f"{m['au_f1_constant_mean']:.4f}", style="bold")
    table.add_row("macro F1 (MEB's other variant)", "", f"{m['au_f1_macro_mean']:.4f}",
                  *(f"{m['per_dataset'][d]['au_f1_macro_mean']:.4f}" for d in sets), "")
    left = m.get("left_out_without_aus") or {}
    counts = m.get("au_counts") or {}
    # An ensemble's metrics carry no counts of its own (its members' run.json hold them).
    table.caption = (f"present: p >= {m['threshold']}; pooled over folds"
                     + (". AU counts: " + ", ".join(f"{a} {n}" for a, n in counts.items())
                        if counts else "")
                     + (". Left out without AU labels: "
                        + ", ".join(f"{d} {n}" for d, n in left.items()) if left else ""))
    return table


def print_report(report: LosoReport, console: Console | None = None) -> None:
    console = console or Console()
    console.print(results_table(report))
    print_provenance(console, report.run_dir)
    files = ("metrics.json, predictions.csv" if report.metrics.get("task") == "au"
             else "metrics.json, predictions.csv, per_subject.csv, confusion.png")
    console.print(f"results in {report.run_dir}: {files}")


def seeds_table(reports: list[LosoReport]) -> Table:
    """Runs side by side (e.g. seeds of one config), with mean and standard deviation (AU
    runs: :func:`au_seeds_table`, when every run is one)."""
    au = [r for r in reports if r.metrics.get("task") == "au"]
    if au and len(au) == len(reports):
        return au_seeds_table(reports)
    reports = [r for r in reports if r.metrics.get("task") != "au"]
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


def au_seeds_table(reports: list[LosoReport]) -> Table:
    """AU runs side by side: binary F1 per AU, its mean, per-dataset means and the macro
    variant, one column per run, then mean ± sd over the runs."""
    aus = list(dict.fromkeys(a for r in reports for a in r.metrics["classes"]))
    sets = sorted({d for r in reports for d in r.metrics["per_dataset"]})
    names = sorted({r.metrics["name"] for r in reports})
    groups = {r.metrics.get("group", "subject") for r in reports}
    # Runs that hold out subjects and runs that hold out datasets are told apart, not pooled
    # silently.
    held = ("" if groups == {"subject"} else " (one dataset held out each)"
            if groups == {"dataset"} else " (mixed protocols: see each run's column)")
    table = Table(title=f"{len(reports)} AU runs of {', '.join(names)} (binary F1){held}")
    table.add_column("AU")
    for r in reports:
        lodo = ", datasets held out" if len(groups) > 1 and r.metrics.get("group") == "dataset" \
            else ""
        table.add_column(f"{r.run_dir.name} (seed {r.metrics['seed']}{lodo})", justify="right")
    table.add_column("mean ± sd", justify="right")

    def row(label: str, values: list[float | None], **style) -> None:
        got = [v for v in values if v is not None]
        spread = (f"{statistics.fmean(got):.4f} ± {statistics.stdev(got):.4f}" if len(got) > 1
                  else f"{got[0]:.4f}" if got else "")
        table.add_row(label, *("–" if v is None else f"{v:.4f}" for v in values), spread,
                      **style)

    for au in aus:
        row(au, [r.metrics["au_f1"].get(au) for r in reports])
    row("mean", [r.metrics["au_f1_mean"] for r in reports], style="bold")
    for d in sets:
        row(f"mean, {d}", [r.metrics["per_dataset"].get(d, {}).get("au_f1_mean")
                           for r in reports])
    row("macro F1 (not comparable)", [r.metrics["au_f1_macro_mean"] for r in reports])
    row("always present", [r.metrics["au_f1_constant_mean"] for r in reports])
    return table
