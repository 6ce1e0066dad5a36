"""The HTML report's article of an AU detection run: binary F1 per AU, overall and per
dataset, beside the "always present" reference, and the means with MEB's macro variant
labelled apart (:mod:`fervid.metrics.au`)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from fervid.report.html.markup import fmt, section, table


def au_article(run_dir: Path, metrics: dict, index: int) -> str:
    """One AU run as an ``<article>``: its per-AU table and what it was scored on."""
    m = metrics
    sets = list(m["per_dataset"]) if len(m["per_dataset"]) > 1 else []
    headers = ["AU", "positives", "binary F1", *(f"F1 {d}" for d in sets), "always present"]
    rows = [[escape(au), str(m["positives"][au]), fmt(m["au_f1"][au]),
             *(fmt(m["per_dataset"][d]["au_f1"][au]) for d in sets),
             fmt(m["au_f1_constant"][au])] for au in m["classes"]]
    rows.append(["mean (binary F1)", "", fmt(m["au_f1_mean"]),
                 *(fmt(m["per_dataset"][d]["au_f1_mean"]) for d in sets),
                 fmt(m["au_f1_constant_mean"])])
    rows.append(["macro F1 (MEB's other variant; not comparable)", "",
                 fmt(m["au_f1_macro_mean"]),
                 *(fmt(m["per_dataset"][d]["au_f1_macro_mean"]) for d in sets), ""])
    left = m.get("left_out_without_aus") or {}
    note = (f"<p>{m['n_samples']} samples, {m['n_folds']}/{m['n_folds_total']} folds, "
            f"pooled over folds; present when p ≥ {m['threshold']}. "
            f"{escape(m['binary_label'])}. Left out without AU labels: "
            f"{escape(', '.join(f'{d} {n}' for d, n in left.items()) or 'none')}.</p>")
    body = note + table(headers, rows, sortable=True, kind="au",
                        row_classes=[""] * len(m["classes"]) + ["total", "total"])
    title = f"{m.get('name')} seed {m.get('seed')} ({run_dir.name})"
    return (f'<article class="run" id="run-{index}"><h2>{escape(title)}</h2>'
            f"{section('au', 'Action units: binary F1 per AU', body)}</article>")
