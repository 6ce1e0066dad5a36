"""Runs scored on fixed splits, read and drawn for the HTML report: ``fervid fit`` (protocol
``holdout``: ``metrics.json`` holds ``validation`` and ``test``) and ``fervid evaluate``
(protocol ``cross_dataset``: one model scored on another dataset, figures at the top level).

Both keep ``predictions.csv`` (``split, clip, label, pred, p_<class>``) and the reader turns
their metrics into ``metrics["splits"]``: split name → ``acc, uar, n_samples,
per_class_recall, confusion``.
"""

from __future__ import annotations

from html import escape

import pandas as pd

from fervid.report.html.figures import confusion_uri, recall_bars_uri
from fervid.report.html.markup import (
    config_details,
    fmt,
    image,
    meta_table,
    provenance_rows,
    section,
    table,
)
from fervid.report.html.published import Benchmark
from fervid.report.html.run_data import (
    RunData,
    RunHeader,
    RunReportError,
    read_json,
    read_train_logs,
)
from fervid.report.html.sections import training_curves

HOLDOUT = "holdout"
CROSS_DATASET = "cross_dataset"


def load_split_run(header: RunHeader) -> RunData:
    """The report's view of a ``holdout`` or ``cross_dataset`` run (finished: its
    ``metrics.json`` is required)."""
    run_dir = header.run_dir
    metrics = read_json(run_dir / "metrics.json", required=False)
    if not metrics:
        raise RunReportError(f"{run_dir}: no metrics.json yet (the run has not finished)")
    if header.protocol == HOLDOUT:
        splits = {k: metrics[k] for k in ("validation", "test") if metrics.get(k)}
    else:
        splits = {"evaluation": metrics}
    path = run_dir / "predictions.csv"
    predictions = (pd.read_csv(path, dtype={"clip": str}) if path.exists()
                   else pd.DataFrame(columns=["split", "clip", "label", "pred"]))
    return RunData(run_dir=run_dir, protocol=header.protocol, meta=header.meta,
                   config=header.config, config_text=header.config_text,
                   metrics={**metrics, "splits": splits}, predictions=predictions,
                   per_subject=pd.DataFrame(), folds=pd.DataFrame(),
                   train_logs=read_train_logs(run_dir))


def _classes(run: RunData, m: dict) -> list[str]:
    return list(m.get("classes") or run.classes)


def metrics_section(run: RunData, benchmark: Benchmark | None) -> str:
    splits = run.metrics["splits"]
    rows = [[f"<b>{escape(name)}</b>", fmt(m["n_samples"]), f"<b>{fmt(m['acc'])}</b>",
             f"<b>{fmt(m['uar'])}</b>"] for name, m in splits.items()]
    notes = []
    selection = run.metrics.get("selection")
    if selection:
        notes.append(f"Model kept: epoch {selection.get('epoch')} of {selection.get('epochs')}"
                     f" ({escape(str(selection.get('note', '')))}).")
    left = run.metrics.get("left_out")
    if left:
        notes.append(f"Classes only the model knows: {escape(', '.join(left['model_only']))}"
                     f" or none; only the data: {escape(', '.join(left['data_only']))} or none"
                     f" ({left['n_samples']} samples left out).")
    body = "".join(f"<p>{n}</p>" for n in notes) + table(["split", "n", "accuracy", "UAR"], rows)
    return section("metrics", "Metrics", body)


def confusion_section(run: RunData, benchmark: Benchmark | None) -> str:
    p, parts = run.predictions, []
    for name, m in run.metrics["splits"].items():
        rows = p[p["split"] == name] if "split" in p else p.iloc[:0]
        if len(rows):
            title = f"{name}: accuracy {m['acc']:.4f}, UAR {m['uar']:.4f}"
            parts.append(image(confusion_uri(rows["label"], rows["pred"], _classes(run, m),
                                             title), f"confusion matrix, {name}"))
    body = "".join(parts) or "<p>No predictions.csv in this run.</p>"
    return section("confusion", "Confusion matrices (counts and row-normalised)", body)


def recall_section(run: RunData, benchmark: Benchmark | None) -> str:
    splits = run.metrics["splits"]
    classes = _classes(run, next(iter(splits.values())))
    recall = {name: m["per_class_recall"] for name, m in splits.items()}
    return section("recall", "Per-class recall",
                   image(recall_bars_uri(recall, classes), "per-class recall"))


def training_section(run: RunData, benchmark: Benchmark | None) -> str:
    return training_curves(run, "<p>train_logs/fit.csv: one row per epoch.</p>")


def metadata_section(run: RunData, benchmark: Benchmark | None) -> str:
    items = [("run directory", str(run.run_dir), ""),
             ("protocol", run.protocol, ""),
             ("config name", str(run.meta.get("name")), ""),
             ("seed", str(run.meta.get("seed")), ""),
             ("data root", str(run.meta.get("data_root", "")), ""),
             *provenance_rows(run),
             ("wall time", f"{run.metrics.get('wall_s', 0.0):.1f} s", "metrics.json")]
    if run.meta.get("checkpoint"):
        items.insert(2, ("checkpoint", str(run.meta["checkpoint"]), ""))
    return section("metadata", "Run metadata", meta_table(items) + config_details(run))


SPLIT_SECTIONS = (metrics_section, confusion_section, recall_section, training_section,
                  metadata_section)
