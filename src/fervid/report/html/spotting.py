"""The HTML report of spotting runs (:mod:`fervid.report.spotting` reads them): scores,
thresholds per held-out subject, counts per subject and per video, timelines and
provenance; every text is escaped."""

from __future__ import annotations

import io
import math
from html import escape

import numpy as np
import pandas as pd

from fervid.report.html.figures import image_file_uri, png_data_uri
from fervid.report.html.markup import fmt, image, meta_table, section, table
from fervid.report.spotting import KINDS, SCORE_SETS, SpotRun

#: Videos whose timelines are drawn from ``signals/`` (the rest are listed).
MAX_TIMELINES = 8


def scores_section(run: SpotRun) -> str:
    rows, classes = [], []
    for name, scores in run.score_sets().items():
        for kind in KINDS:
            s = scores[kind]
            rows.append([escape(name) if kind == "micro" else "", kind, fmt(s["tp"]),
                         fmt(s["fp"]), fmt(s["fn"]), fmt(s["precision"], 3),
                         fmt(s["recall"], 3), f"<b>{fmt(s['f1'], 3)}</b>"])
            classes.append("summary" if kind == "overall" else "")
    sets = ""
    for n in run.score_sets():
        value = run.metrics.get(n)
        how = value.get("how", "") if isinstance(value, dict) else ""
        sets += f"<li><b>{escape(n)}</b>: {escape(how or SCORE_SETS.get(n, ''))}</li>"
    truth = run.metrics.get("truth") or {}
    note = (f"<p>MEGC rule: a spotted interval is a true positive when its IoU with an "
            f"unmatched coded interval of the same kind is at least 0.5. Coded: "
            f"{escape(', '.join(f'{k} {v}' for k, v in truth.items()) or 'not recorded')}."
            f"</p><ul>{sets}</ul>")
    return section("spot-scores", "Spotting: precision, recall, F1", note + table(
        ["scores", "kind", "TP", "FP", "FN", "precision", "recall", "F1"], rows,
        row_classes=classes, kind="spotting"))


def folds_section(run: SpotRun) -> str:
    if run.folds is None or run.folds.empty:
        return ""
    rows = [[escape(str(v)) if not isinstance(v, float) else fmt(v, 4) for v in r]
            for r in run.folds.itertuples(index=False)]
    return section("spot-folds", "Thresholds chosen per held-out subject",
                   "<p>Chosen on the other subjects' videos only.</p>"
                   + table(list(run.folds.columns), rows, sortable=True))


def _count(value) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else (
        str(int(value)))


def counts_section(run: SpotRun, column: str) -> str:
    counts = run.counts_by(column)
    if counts.empty:
        return ""
    headers = [column]
    for kind in ("micro", "macro"):
        headers += [f"{kind} coded", f"{kind} spotted", f"{kind} TP", f"{kind} FP",
                    f"{kind} FN"]
    rows = [[escape(str(name)), *(_count(r[f"{kind}_{c}"]) for kind in ("micro", "macro")
                                  for c in ("truth", "spotted", "tp", "fp", "fn"))]
            for name, r in counts.iterrows()]
    body = f'<div class="scroll">{table(headers, rows, sortable=True, kind="spot-counts")}</div>'
    return section(f"spot-{column}s", f"Per {column} ({len(counts)})",
                   "<p>Click a column header to sort.</p>" + body)


def _timeline_png(run: SpotRun, video: str) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with np.load(run.signals[video]) as f:
        signals = {k: f[k] for k in f.files}
    fig, axes = plt.subplots(2, 1, figsize=(11, 3.4), sharex=True)
    spotted = (run.intervals[run.intervals["video"] == video] if run.intervals is not None
               else pd.DataFrame(columns=["type"]))
    coded = (run.truth[run.truth["video"] == video] if run.truth is not None
             else pd.DataFrame(columns=["type"]))
    for ax, kind in zip(axes, ("micro", "macro"), strict=True):
        if kind in signals:
            ax.plot(np.arange(1, len(signals[kind]) + 1), signals[kind], color="0.3", lw=0.7)
        for r in coded[coded["type"] == kind].itertuples():
            ax.axvspan(r.onset, r.offset, ymax=0.15, color="tab:blue", alpha=0.6)
        for r in spotted[spotted["type"] == kind].itertuples():
            hit = bool(getattr(r, "tp", 0))
            ax.axvspan(r.onset, r.offset, ymin=0.15, color="tab:green" if hit else "tab:red",
                       alpha=0.25)
        ax.set_ylabel(kind, fontsize=8)
    axes[0].set_title(f"{video}: signal; spotted (green: TP, red: FP); coded (blue, bottom)",
                      fontsize=8)
    axes[1].set_xlabel("frame", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, format="png")
    plt.close(fig)
    return buffer.getvalue()


def timelines_section(run: SpotRun) -> str:
    figures = [f"<figure>{image(image_file_uri(p), p.name)}<figcaption>{escape(p.name)}"
               f"</figcaption></figure>" for p in run.pictures]
    videos = list(run.signals)
    for video in videos[:MAX_TIMELINES]:
        figures.append(f"<figure>{image(png_data_uri(_timeline_png(run, video)), video)}"
                       f"<figcaption>{escape(video)}</figcaption></figure>")
    if not figures:
        return ""
    more = (f"<p>{len(videos) - MAX_TIMELINES} more videos' signals in signals/ (not drawn)."
            "</p>" if len(videos) > MAX_TIMELINES else "")
    return section("spot-timelines", "Timelines", f"<div>{''.join(figures)}</div>{more}")


def metadata_section(run: SpotRun) -> str:
    from fervid.runs.provenance import describe

    m, meta = run.metrics, run.meta
    items = [("run directory", str(run.run_dir), ""),
             ("name", run.name, "run.json" if meta else "folder name"),
             ("spotter", str(m.get("spotter", meta.get("spotter", "–"))), "metrics.json"),
             ("dataset", str(m.get("dataset", meta.get("dataset", "–"))), "metrics.json"),
             ("data root", str(m.get("root", meta.get("data_root", "–"))), "metrics.json"),
             ("videos, frames, subjects",
              f"{m.get('videos', '–')}, {m.get('frames', '–')}, {m.get('subjects', '–')}",
              "metrics.json"),
             ("missing videos", ", ".join(m.get("missing_videos") or []) or "none",
              "metrics.json"),
             ("settings", ", ".join(f"{k} {v}" for k, v in (m.get("settings") or {}).items()),
              "metrics.json"),
             ("wall time", f"{m['seconds']} s" if "seconds" in m else "–", "metrics.json")]
    for n, segment in enumerate(meta.get("provenance") or []):
        where = "run.json" + (f" (segment {n + 1})" if len(meta["provenance"]) > 1 else "")
        items += [(label, value, where) for label, value in describe(segment).items()]
    if not meta.get("provenance"):
        items.append(("provenance", "not recorded (an older run folder)", ""))
    config = (f"<details><summary>config.yaml</summary><pre>{escape(run.config_text)}</pre>"
              "</details>" if run.config_text else "")
    return section("spot-metadata", "Run metadata", meta_table(items) + config)


def spot_article(run: SpotRun, index: int) -> str:
    """One spotting run as an ``<article>``."""
    body = "".join([scores_section(run), folds_section(run), counts_section(run, "subject"),
                    counts_section(run, "video"), timelines_section(run),
                    metadata_section(run)])
    return (f'<article class="run" id="run-{index}"><h2>{escape(run.name)} '
            f"({escape(run.run_dir.name)})</h2>{body}</article>")
