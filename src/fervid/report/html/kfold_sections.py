"""HTML sections of a DFEW k-fold run: WAR and UAR pooled and as the mean of folds, per-class
recall, a per-fold table (worst first); training curves and metadata as for LOSO runs."""

from __future__ import annotations

from html import escape

import pandas as pd

from fervid.report.html.figures import confusion_uri, recall_bars_uri
from fervid.report.html.markup import (
    METRIC_NAMES,
    config_details,
    fmt,
    image,
    meta_table,
    provenance_rows,
    section,
    table,
)
from fervid.report.html.published import Benchmark
from fervid.report.html.run_data import RunData
from fervid.report.html.sections import training_curves
from fervid.runs.results import AVERAGES

KFOLD_METRICS = ("war", "uar")


def metrics_section(run: RunData, benchmark: Benchmark | None) -> str:
    m = run.metrics
    rows = [[f"<b>{escape(label)}</b>", fmt(m["n_samples"]),
             *(f"<b>{fmt(m[key][k])}</b>" for k in KFOLD_METRICS)]
            for key, label in AVERAGES.items()]
    recall_rows = [[escape(label), *(fmt(m[key]["per_class_recall"].get(c), 3)
                                     for c in run.classes)]
                   for key, label in AVERAGES.items()]
    folds = ", ".join(str(f) for f in m["folds"])
    skipped = m.get("skipped_clips", 0)
    note = (f"<p>Folds {escape(folds)} of 5; {fmt(m['n_samples'])} test clips"
            f"{f', {skipped} skipped (unreadable)' if skipped else ''}. "
            "WAR is the accuracy over clips, UAR the mean of the per-class recalls. "
            "The DFEW paper pools the folds' predictions; later papers average the folds.</p>")
    body = (note + table(["average", "n", *(METRIC_NAMES[k] for k in KFOLD_METRICS)], rows)
            + "<p>Per-class recall:</p>"
            + table(["average", *run.classes], recall_rows, kind="recall"))
    return section("metrics", "Metrics", body)


def published_section(run: RunData, benchmark: Benchmark | None) -> str:
    if benchmark is None or not benchmark.entries:
        return section("published", "Published figures",
                       "<p>No published figures are listed for this run's protocol.</p>")
    metrics = benchmark.metrics
    rows = [[f"<b>this run</b>, {escape(label)}", "re-run here",
             *(fmt(run.metrics[key][k]) for k in metrics), "", ""]
            for key, label in AVERAGES.items()]
    for e in benchmark.entries:
        rows.append([escape(e.method), "published, not re-run",
                     *(fmt(e.figures.get("all", {}).get(k)) for k in metrics),
                     escape(e.source), escape(e.note)])
    headers = ["method", "status", *(METRIC_NAMES.get(k, k) for k in metrics), "source", "note"]
    note = f"<p>Protocol: {escape(benchmark.title)}.</p>"
    return section("published", "Compared with published figures (published, not re-run)",
                   note + table(headers, rows, row_classes=["this", "this"], kind="published"))


def confusion_section(run: RunData, benchmark: Benchmark | None) -> str:
    p = run.predictions
    pooled = run.metrics["pooled"]
    title = (f"{run.meta.get('name')} seed {run.meta.get('seed')}: WAR {pooled['war']:.4f} "
             f"UAR {pooled['uar']:.4f} (pooled)")
    body = image(confusion_uri(p["label"], p["pred"], run.classes, title),
                 f"confusion matrices of {run.run_dir.name}")
    return section("confusion", "Confusion matrices, pooled over folds (counts and "
                   "row-normalised)", body)


def recall_section(run: RunData, benchmark: Benchmark | None) -> str:
    recall = {label: run.metrics[key]["per_class_recall"] for key, label in AVERAGES.items()}
    body = image(recall_bars_uri(recall, run.classes), f"per-class recall of {run.run_dir.name}")
    return section("recall", "Per-class recall", body)


def per_fold_section(run: RunData, benchmark: Benchmark | None) -> str:
    t = run.per_fold
    rows = [[fmt(int(r.fold)), fmt(int(r.n)), fmt(r.war, 3), fmt(r.uar, 3),
             fmt(None if pd.isna(r.epochs) else int(r.epochs)), fmt(r.loss, 4),
             fmt(r.train_acc, 3), fmt(r.train_s, 0)] for r in t.itertuples()]
    note = "<p>Test folds, worst WAR first. Click a column header to sort.</p>"
    body = table(["fold", "n", "WAR", "UAR", "epochs", "last loss", "train acc", "train s"],
                 rows, sortable=True, kind="folds")
    return section("folds", f"Per fold ({len(t)} of 5)", note + body)


def training_section(run: RunData, benchmark: Benchmark | None) -> str:
    return training_curves(run, "<p>One training log per fold (train_logs/fold_NNN.csv): "
                                f"{len(run.train_logs)}.</p>")


def metadata_section(run: RunData, benchmark: Benchmark | None) -> str:
    items = [("run directory", str(run.run_dir), ""),
             ("config name", str(run.meta.get("name")), ""),
             ("seed", str(run.meta.get("seed")), ""),
             ("data root", str(run.meta.get("data_root", "")), ""),
             ("label order", ", ".join(f"{i + 1} {c}" for i, c in enumerate(run.classes)),
              "DFEW's label files"),
             *provenance_rows(run),
             ("training time", f"{run.wall_seconds():.1f} s", "train_logs/*.csv wall_s")]
    return section("metadata", "Run metadata", meta_table(items) + config_details(run))


KFOLD_SECTIONS = (metrics_section, published_section, confusion_section, recall_section,
                  per_fold_section, training_section, metadata_section)
