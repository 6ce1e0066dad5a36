"""HTML sections of the report, one small function each; every text is escaped.

Each run section is chosen by the run's protocol (:data:`SECTIONS_BY_PROTOCOL`), so a k-fold
protocol (DFEW: WAR, UAR, per-class recall, a per-fold table) adds its own list of functions.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Sequence
from html import escape

import pandas as pd

from fervid.html_report.figures import (
    confusion_uri,
    image_file_uri,
    recall_bars_uri,
    training_curves_uri,
)
from fervid.html_report.published import Benchmark
from fervid.html_report.run_data import RunData

#: Column label of each score key.
METRIC_NAMES = {"uf1": "UF1", "uar": "UAR", "acc": "Acc", "f1_macro": "macro-F1", "war": "WAR"}
_LOSO_METRICS = ("uf1", "uar", "acc", "f1_macro")
#: Gallery images embedded per run (SMA-STN runs write one per class).
MAX_GALLERY_IMAGES = 12


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def section(kind: str, title: str, body: str, *, anchor: str = "") -> str:
    """A ``<section data-section=kind>`` with a heading; ``kind`` names what it shows."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return (f'<section data-section="{escape(kind)}"{ident}><h3>{escape(title)}</h3>'
            f"{body}</section>")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, sortable: bool = False,
          row_classes: Sequence[str] = (), kind: str = "") -> str:
    """An HTML table of already escaped cells; ``sortable`` tables sort on a header click."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    names = " ".join(n for n in ("sortable" if sortable else "", kind) if n)
    cls = f' class="{names}"' if names else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def metrics_section(run: RunData, benchmark: Benchmark | None) -> str:
    m = run.metrics
    rows = [["<b>all</b>", fmt(m["n_samples"]), *(f"<b>{fmt(m[k])}</b>" for k in _LOSO_METRICS)]]
    if len(m.get("per_dataset", {})) > 1:
        for name, d in m["per_dataset"].items():
            rows.append([escape(name), fmt(d["n_samples"]), *(fmt(d[k]) for k in _LOSO_METRICS)])
    done = "" if m.get("complete", True) else (
        f' <span class="warn">partial: {m["n_folds"]} of {m["n_folds_total"]} folds</span>')
    note = (f"<p>{fmt(m['n_folds'])} folds, classes {escape(', '.join(run.classes))}{done}. "
            "UF1 and UAR as MEGC2019 defines them (counts summed over folds).</p>")
    return section("metrics", "Metrics", note + table(
        ["set", "n", *(METRIC_NAMES[k] for k in _LOSO_METRICS)], rows))


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
                      sortable=True)
    return section("subjects", f"Per subject ({len(t)} LOSO folds)",
                   f'{note}<div class="scroll">{rows_html}</div>')


def training_section(run: RunData, benchmark: Benchmark | None) -> str:
    if not run.train_logs:
        return section("training", "Training curves", "<p>No training logs in this run.</p>")
    n = len(run.train_logs)
    note = (f"<p>{n} training log{'s' if n > 1 else ''} (train_logs/*.csv). A fold-batched "
            "shard logs the mean over its folds.</p>")
    body = image(training_curves_uri(run.train_logs), f"training curves of {run.run_dir.name}")
    return section("training", "Training curves", note + body)


def published_section(run: RunData, benchmark: Benchmark | None) -> str:
    if run.generated_data:
        return section("published", "Published figures",
                       "<p>Generated data (SynthME): no published figure applies.</p>")
    if benchmark is None or not benchmark.entries:
        return section("published", "Published figures",
                       "<p>No published figures are listed for this run's protocol.</p>")
    parts = ["all"] + [p for p in ("smic", "casme2", "samm", *run.metrics.get("per_dataset", {}))
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
    commit = run.git_commit()
    device = run.device()
    items = [("run directory", str(run.run_dir), ""),
             ("config name", str(run.meta.get("name")), ""),
             ("seed", str(run.meta.get("seed")), ""),
             ("fingerprint", str(run.meta.get("fingerprint")), ""),
             ("data root", str(run.meta.get("data_root", "")), ""),
             ("git commit", commit.value, commit.source),
             *((f"{p} version", v.value, v.source) for p, v in run.versions().items()),
             ("device", device.value, device.source),
             ("wall time", f"{run.wall_seconds():.1f} s over {len(run.wall)} invocation(s)",
              "wall/*.json")]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td>"
                   f'<td class="src">{escape(s)}</td></tr>' for k, v, s in items)
    config = escape(run.config_text or json.dumps(run.config, indent=2))
    body = (f'<table class="meta">{rows}</table>'
            f"<details><summary>config.yaml</summary><pre>{config}</pre></details>")
    return section("metadata", "Run metadata", body)


RunSection = Callable[[RunData, "Benchmark | None"], str]

#: The sections of one run, in page order, by protocol.
SECTIONS_BY_PROTOCOL: dict[str, tuple[RunSection, ...]] = {
    "loso": (metrics_section, published_section, confusion_section, recall_section,
             per_subject_section, training_section, gallery_section, metadata_section),
}


def comparison_section(runs: Sequence[RunData]) -> str:
    """Runs side by side with differences from the first; mean ± std over seeds of one config."""
    first = runs[0].metrics
    rows = []
    for i, run in enumerate(runs):
        m = run.metrics
        cells = [escape(run.run_dir.name), fmt(run.meta.get("seed")),
                 f"{m['n_folds']}/{m.get('n_folds_total', m['n_folds'])}"]
        for k in _LOSO_METRICS:
            delta = "" if i == 0 else _delta(m[k] - first[k])
            cells.append(f"{fmt(m[k])}{delta}")
        cells.append(f"{run.wall_seconds():.0f}")
        rows.append(cells)
    classes = [""] * len(runs)
    configs = {json.dumps(r.config_without_seed(), sort_keys=True) for r in runs}
    seeds = [r.meta.get("seed") for r in runs]
    if len(configs) == 1 and len(set(seeds)) == len(runs):
        values = {k: [r.metrics[k] for r in runs] for k in _LOSO_METRICS}
        rows.append(["<b>mean ± std</b>", f"{len(runs)} seeds", "", *(
            f"<b>{statistics.fmean(values[k]):.4f}</b> ± {statistics.stdev(values[k]):.4f}"
            for k in _LOSO_METRICS), ""])
        classes.append("summary")
        note = f"<p>{len(runs)} runs: seeds {escape(', '.join(map(str, seeds)))} of one config.</p>"
    else:
        note = (f"<p>{len(runs)} runs of different configs (or repeated seeds): no mean is "
                "taken. Differences are from the first run.</p>")
    headers = ["run", "seed", "folds", *(METRIC_NAMES[k] for k in _LOSO_METRICS), "wall s"]
    return section("comparison", f"Comparison of {len(runs)} runs",
                   note + table(headers, rows, row_classes=classes), anchor="comparison")


def _delta(value: float) -> str:
    cls = "up" if value > 0 else "down" if value < 0 else "same"
    return f' <span class="delta {cls}">({value:+.4f})</span>'
