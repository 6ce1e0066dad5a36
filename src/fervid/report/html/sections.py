"""HTML sections of a LOSO run, one small function each; every text is escaped.

A run's sections are chosen by its protocol (:data:`fervid.report.html.page.SECTIONS_BY_PROTOCOL`);
the DFEW k-fold sections (WAR, UAR, per-class recall, a per-fold table) are in
:mod:`.kfold_sections`.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import pandas as pd

from fervid.datasets import megc2019
from fervid.report.html.figures import (
    confusion_uri,
    image_file_uri,
    recall_bars_uri,
    training_curves_uri,
)
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

LOSO_METRICS = ("uf1", "uar", "acc", "f1_macro")
#: Gallery images embedded per run (SMA-STN runs write one per class).
MAX_GALLERY_IMAGES = 12


def metrics_section(run: RunData, benchmark: Benchmark | None) -> str:
    m = run.metrics
    rows = [["<b>all</b>", fmt(m["n_samples"]), *(f"<b>{fmt(m[k])}</b>" for k in LOSO_METRICS)]]
    if len(m.get("per_dataset", {})) > 1:
        for name, d in m["per_dataset"].items():
            rows.append([escape(name), fmt(d["n_samples"]), *(fmt(d[k]) for k in LOSO_METRICS)])
    selected = m.get("test_selected")
    if selected:  # beside the honest figure, never instead of it
        rows.append([f'<span class="warn">{escape(selected["label"])}</span>',
                     fmt(selected["n_samples"]), *(fmt(selected[k]) for k in LOSO_METRICS)])
    done = "" if m.get("complete", True) else (
        f' <span class="warn">partial: {m["n_folds"]} of {m["n_folds_total"]} folds</span>')
    held = (" (hold-out-database: each fold holds out one whole dataset)"
            if run.meta.get("group") == "dataset" else "")
    note = (f"<p>{fmt(m['n_folds'])} folds{held}, classes {escape(', '.join(run.classes))}"
            f"{done}. UF1 and UAR as MEGC2019 defines them (counts summed over folds).</p>")
    if selected:
        note += ("<p>The test-selected row keeps each fold's epoch of best <em>test</em> "
                 "accuracy (from the run's traces), as much of the published code reports. It "
                 "is not a valid result, shown only to measure the inflation.</p>")
    return section("metrics", "Metrics", note + table(
        ["set", "n", *(METRIC_NAMES[k] for k in LOSO_METRICS)], rows))


def confusion_section(run: RunData, benchmark: Benchmark | None) -> str:
    p = run.predictions
    m = run.metrics
    title = f"{run.meta.get('name')} seed {run.meta.get('seed')}: UF1 {m['uf1']:.4f}"
    body = image(confusion_uri(p["label"], p["pred"], run.classes, title),
                 f"confusion matrices of {run.run_dir.name}")
    return section("confusion", "Confusion matrices (counts and row-normalised)", body)


def recall_section(run: RunData, benchmark: Benchmark | None) -> str:
    recall = {"all": run.metrics["per_class_recall"]}
    parts = run.predictions["dataset"].unique()
    if len(parts) > 1:
        from fervid.metrics import score

        for name in parts:
            part = run.predictions[run.predictions["dataset"] == name]
            recall[str(name)] = score(part["label"], part["pred"], run.classes).per_class_recall
    body = image(recall_bars_uri(recall, run.classes), f"per-class recall of {run.run_dir.name}")
    return section("recall", "Per-class recall", body)


def per_subject_section(run: RunData, benchmark: Benchmark | None) -> str:
    t = run.per_subject
    rows = [[fmt(None if pd.isna(r.fold) else int(r.fold)),
             escape(str(r.dataset)), escape(str(r.subject)), fmt(int(r.n)), fmt(r.acc, 3),
             fmt(r.uf1, 3), fmt(r.uar, 3)] for r in t.itertuples()]
    note = ("<p>Held-out subjects, worst accuracy first. Click a column header to sort.</p>")
    rows_html = table(["fold", "dataset", "subject", "n", "Acc", "UF1", "UAR"], rows,
                      sortable=True, kind="subjects")
    return section("subjects", f"Per subject ({len(t)} LOSO folds)",
                   f'{note}<div class="scroll">{rows_html}</div>')


def training_curves(run: RunData, note: str) -> str:
    """The section of the run's training curves, under ``note`` (HTML)."""
    if not run.train_logs:
        return section("training", "Training curves", "<p>No training logs in this run.</p>")
    body = image(training_curves_uri(run.train_logs), f"training curves of {run.run_dir.name}")
    return section("training", "Training curves", note + body)


def training_section(run: RunData, benchmark: Benchmark | None) -> str:
    n = len(run.train_logs)
    return training_curves(run, f"<p>{n} training log{'s' if n > 1 else ''} "
                                "(train_logs/*.csv). A fold-batched shard logs the mean over "
                                "its folds.</p>")


def published_section(run: RunData, benchmark: Benchmark | None) -> str:
    if run.generated_data:
        return section("published", "Published figures",
                       "<p>Generated data (SynthME): no published figure applies.</p>")
    if benchmark is None or not benchmark.entries:
        return section("published", "Published figures",
                       "<p>No published figures are listed for this run's protocol.</p>")
    parts = ["all"] + [p for p in (*megc2019.DATASETS, *run.metrics.get("per_dataset", {}))
                       if any(p in e.figures for e in benchmark.entries)]
    parts = list(dict.fromkeys(parts))
    columns = [(p, k) for p in parts for k in benchmark.metrics]
    this = {"all": run.metrics, **run.metrics.get("per_dataset", {})}
    rows = [[f"<b>this run</b> ({escape(run.run_dir.name)})", "re-run here",
             *(fmt(this.get(p, {}).get(k)) for p, k in columns), "", ""]]
    for e in benchmark.entries:
        status = ("published, not re-run" if e.status == "published"
                  else "released weights, not retrained")
        rows.append([escape(e.method), status,
                     *(fmt(e.figures.get(p, {}).get(k)) for p, k in columns),
                     escape(e.source), escape(e.note)])
    headers = ["method", "status", *(f"{p} {METRIC_NAMES.get(k, k)}" for p, k in columns),
               "source", "note"]
    note = f"<p>Protocol: {escape(benchmark.title)}.</p>"
    return section("published", "Compared with published figures (published, not re-run)",
                   note + table(headers, rows, row_classes=["this"], kind="published"))


def gallery_section(run: RunData, benchmark: Benchmark | None) -> str:
    if not run.gallery:
        return ""
    shown = run.gallery[:MAX_GALLERY_IMAGES]
    figures = "".join(
        f"<figure>{image(image_file_uri(path), caption)}"
        f"<figcaption>{escape(caption)}</figcaption></figure>" for path, caption in shown)
    more = (f"<p>{len(run.gallery) - len(shown)} more in dssi_gallery/.</p>"
            if len(run.gallery) > len(shown) else "")
    return section("gallery", "DSSI of test clips (segment weights)",
                   f'<div class="gallery">{figures}</div>{more}')


def metadata_section(run: RunData, benchmark: Benchmark | None) -> str:
    items = [("run directory", str(run.run_dir), ""),
             ("config name", str(run.meta.get("name")), ""),
             ("seed", str(run.meta.get("seed")), ""),
             ("fingerprint", str(run.meta.get("fingerprint")), ""),
             ("data root", str(run.meta.get("data_root", "")), ""),
             *provenance_rows(run),
             ("wall time", f"{run.wall_seconds():.1f} s over {len(run.wall)} invocation(s)",
              "wall/*.json")]
    return section("metadata", "Run metadata", meta_table(items) + config_details(run))


RunSection = Callable[[RunData, "Benchmark | None"], str]

#: The sections of a LOSO run, in page order.
LOSO_SECTIONS: tuple[RunSection, ...] = (
    metrics_section, published_section, confusion_section, recall_section, per_subject_section,
    training_section, gallery_section, metadata_section)
