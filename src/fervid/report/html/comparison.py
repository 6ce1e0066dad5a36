"""Several runs side by side: their headline figures, differences from the first run, and the
mean ± std over seeds when the runs are seeds of one config."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from html import escape

from fervid.report.html.markup import METRIC_NAMES, delta, fmt, section, table
from fervid.report.html.run_data import LOSO, RunData
from fervid.runs.provenance import mixed

_LOSO = ("uf1", "uar", "acc", "f1_macro")
_KFOLD = ("war", "uar")


def headline(run: RunData) -> dict[str, float]:
    """The run's figures that are compared: LOSO scores, or k-fold WAR/UAR pooled over folds."""
    m = run.metrics
    if run.protocol == LOSO:
        return {k: m[k] for k in _LOSO}
    if "splits" in m:  # fit (its test split) or evaluate
        last = list(m["splits"].values())[-1]
        return {"acc": last["acc"], "uar": last["uar"]}
    return {k: m["pooled"][k] for k in _KFOLD}


def _folds_done(run: RunData) -> str:
    m = run.metrics
    if run.protocol == LOSO:
        return f"{m['n_folds']}/{m.get('n_folds_total', m['n_folds'])}"
    if "splits" in m:
        return "-"
    return f"{len(m['folds'])}/5"


def comparison_section(runs: Sequence[RunData]) -> str:
    """Runs side by side with differences from the first; mean ± std over seeds of one config.

    Only the figures every run has are compared (LOSO runs against k-fold runs share UAR).
    """
    figures = [headline(r) for r in runs]
    keys = [k for k in figures[0] if all(k in f for f in figures)]
    rows = []
    for i, (run, f) in enumerate(zip(runs, figures, strict=True)):
        cells = [escape(run.run_dir.name), fmt(run.meta.get("seed")), _folds_done(run)]
        cells += [f"{fmt(f[k])}{'' if i == 0 else delta(f[k] - figures[0][k])}" for k in keys]
        cells.append(f"{run.wall_seconds():.0f}")
        rows.append(cells)
    classes = [""] * len(runs)
    configs = {json.dumps(r.config_without_seed(), sort_keys=True) for r in runs}
    seeds = [r.meta.get("seed") for r in runs]
    if len(configs) == 1 and len(set(seeds)) == len(runs):
        rows.append(["<b>mean ± std</b>", f"{len(runs)} seeds", "", *(
            f"<b>{statistics.fmean(f[k] for f in figures):.4f}</b> ± "
            f"{statistics.stdev(f[k] for f in figures):.4f}" for k in keys), ""])
        classes.append("summary")
        note = f"<p>{len(runs)} runs: seeds {escape(', '.join(map(str, seeds)))} of one config.</p>"
    else:
        note = (f"<p>{len(runs)} runs of different configs (or repeated seeds): no mean is "
                "taken. Differences are from the first run.</p>")
    if any(r.protocol != LOSO for r in runs):
        note += "<p>K-fold runs show WAR and UAR pooled over their folds.</p>"
    different = mixed({r.run_dir.name: r.provenance for r in runs if r.provenance})
    if different:
        note += f'<p class="warn">{escape(different[0].upper() + different[1:])}.</p>'

    headers = ["run", "seed", "folds", *(METRIC_NAMES[k] for k in keys), "wall s"]
    return section("comparison", f"Comparison of {len(runs)} runs",
                   note + table(headers, rows, row_classes=classes), anchor="comparison")
