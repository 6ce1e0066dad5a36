"""The files ``fervid predict --spot`` writes: those of ``fervid spot`` (``spot.json`` as it
writes it), with ``intervals.csv`` and ``timeline.png`` carrying the classes, and
``recognition.json``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from fervid.files import atomic_write
from fervid.predict.spot_outputs import COLUMNS, write_spot_outputs
from fervid.predict.spot_recognise import CLASSIFIED, SpotRecognition
from fervid.runs import provenance

#: Columns after the spotting ones (then one probability column per class).
RECOGNITION_COLUMNS = ("status", "label", "confidence")


def write_spot_recognition(result: SpotRecognition, out_dir: Path) -> dict[str, Path]:
    """Write ``intervals.csv``, ``spot.json``, ``recognition.json`` and ``timeline.png``
    under ``out_dir``; returns them by name.

    ``intervals.csv``: ``fervid spot``'s columns (onset, apex, offset in frames from 1 and
    seconds, type, score), then ``status`` (``classified``, or why not), ``label`` and
    ``confidence`` (its probability) and one column per class with its probability, empty
    for intervals not classified. ``recognition.json``: the recogniser (checkpoint, model,
    input, classes), which intervals it classified and why, each interval's probabilities,
    the times of both passes and what made them (provenance).
    """
    out_dir = Path(out_dir)
    spot = result.spot
    paths = write_spot_outputs(spot, out_dir, result.source)
    classes = list(result.classes)

    def rows(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow([*COLUMNS, *RECOGNITION_COLUMNS, *classes])
            for r in result.intervals:
                s = r.interval
                spotted = [s.onset, s.apex, s.offset,
                           *(f"{(n - 1) / spot.fps:.3f}" for n in (s.onset, s.apex, s.offset)),
                           s.kind, f"{s.score:.3f}"]
                if r.probs is None:
                    writer.writerow([*spotted, r.status, "", "", *([""] * len(classes))])
                else:
                    writer.writerow([*spotted, r.status, r.label(result.classes),
                                     f"{max(r.probs):.4f}", *(f"{p:.4f}" for p in r.probs)])

    atomic_write(paths["intervals.csv"], rows)
    paths["recognition.json"] = out_dir / "recognition.json"
    payload = {
        "source": result.source, "checkpoint": result.checkpoint, "model": result.model,
        "input": result.input, "classes": classes,
        "classified": "micro- and macro-expression intervals" if result.classify_macro
        else "micro-expression intervals (macro ones are listed, not classified)",
        "counts": {"intervals": len(result.intervals), "classified": result.n_classified},
        "intervals": [{"onset": r.interval.onset, "apex": r.interval.apex,
                       "offset": r.interval.offset, "type": r.interval.kind,
                       "status": r.status, "label": r.label(result.classes),
                       "probs": None if r.probs is None else dict(zip(
                           classes, (round(p, 6) for p in r.probs), strict=True))}
                      for r in result.intervals],
        "seconds": result.seconds,
        "provenance": provenance.collect(precision="32-true"),
    }
    atomic_write(paths["recognition.json"],
                 lambda tmp: tmp.write_text(json.dumps(payload, indent=2)))
    atomic_write(paths["timeline.png"], lambda tmp: _timeline(result, tmp))
    return paths


def _timeline(result: SpotRecognition, path: Path) -> None:
    """The spotter's two signals, thresholds and intervals, each classified interval named
    by its class and probability."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spot = result.spot
    seconds = np.arange(spot.n_frames) / spot.fps
    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True)
    for ax, kind, colour in zip(axes, ("micro", "macro"), ("tab:blue", "tab:red"), strict=True):
        ax.plot(seconds, spot.signals[kind], color=colour, lw=0.8)
        ax.axhline(spot.thresholds[kind], color=colour, ls="--", lw=0.8)
        top = max(float(np.max(spot.signals[kind], initial=0)), spot.thresholds[kind])
        ax.set_ylim(0, top * 1.35 or 1)
        for r in result.intervals:
            s = r.interval
            if s.kind != kind:
                continue
            ax.axvspan((s.onset - 1) / spot.fps, (s.offset - 1) / spot.fps, color=colour,
                       alpha=0.25)
            text = (f"{r.label(result.classes)} {max(r.probs):.2f}" if r.status == CLASSIFIED
                    else "–")
            ax.text((s.apex - 1) / spot.fps, top * 1.05, text, fontsize=7, ha="center",
                    va="bottom", rotation=90 if len(result.intervals) > 12 else 0)
        no_face = ~spot.face
        if no_face.any():
            ax.fill_between(seconds, 0, 1, where=no_face, transform=ax.get_xaxis_transform(),
                            color="grey", alpha=0.3, lw=0)
        ax.set_ylabel(f"{kind} motion (px)")
    micro = sum(r.interval.kind == "micro" for r in result.intervals)
    axes[0].set_title(f"{Path(result.source).name}: {micro} micro, "
                      f"{len(result.intervals) - micro} macro, {result.n_classified} classified "
                      f"by {result.model} (label and probability; –: not classified)",
                      fontsize=9)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
