"""The files ``fervid spot`` writes: ``intervals.csv``, ``spot.json`` and ``timeline.png``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from scipy.signal import find_peaks

from fervid.files import atomic_write
from fervid.predict.spotting import SpotResult, settings_dict

COLUMNS = ("onset", "apex", "offset", "onset_s", "apex_s", "offset_s", "type", "score")


def write_spot_outputs(result: SpotResult, out_dir: Path, source: str) -> dict[str, Path]:
    """Write the three files under ``out_dir``; returns them by name.

    ``intervals.csv``: one row per interval, frames numbered from 1 and seconds from the
    start (frame ``n`` at ``(n − 1) / fps``), type ``micro`` or ``macro``, score the peak's
    height over the threshold. ``spot.json``: the source, frame rate, frames (with a face),
    thresholds, settings, times. ``timeline.png``: the two signals over time, their
    thresholds, the intervals, and (crosses) peaks over a threshold that are no interval of
    that kind.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in ("intervals.csv", "spot.json", "timeline.png")}

    def rows(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            for s in result.intervals:
                writer.writerow([s.onset, s.apex, s.offset,
                                 *(f"{(n - 1) / result.fps:.3f}" for n in (s.onset, s.apex,
                                                                          s.offset)),
                                 s.kind, f"{s.score:.3f}"])

    atomic_write(paths["intervals.csv"], rows)
    summary = {"source": source, "fps": result.fps, "frames": result.n_frames,
               "face_frames": int(result.face.sum()),
               "intervals": {k: sum(s.kind == k for s in result.intervals)
                             for k in ("micro", "macro")},
               "thresholds": result.thresholds, "settings": settings_dict(result.settings),
               "seconds": {k: round(v, 3) for k, v in result.seconds.items()}}
    atomic_write(paths["spot.json"], lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    atomic_write(paths["timeline.png"], lambda tmp: _timeline(result, source, tmp))
    return paths


def _timeline(result: SpotResult, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = np.arange(result.n_frames) / result.fps
    fig, axes = plt.subplots(2, 1, figsize=(12, 4.5), sharex=True)
    for ax, kind, colour in zip(axes, ("micro", "macro"), ("tab:blue", "tab:red"), strict=True):
        ax.plot(seconds, result.signals[kind], color=colour, lw=0.8)
        ax.axhline(result.thresholds[kind], color=colour, ls="--", lw=0.8)
        for s in result.intervals:
            if s.kind == kind:
                ax.axvspan((s.onset - 1) / result.fps, (s.offset - 1) / result.fps,
                           color=colour, alpha=0.25)
        # Peaks over the threshold that are no interval of this kind (too long for a
        # micro-expression, too short for a macro one, or inside a macro interval).
        signal = result.signals[kind]
        peaks, _ = find_peaks(signal, height=result.thresholds[kind])
        kept = [(s.onset - 1, s.offset - 1) for s in result.intervals if s.kind == kind]
        left = [p for p in peaks if not any(a <= p <= b for a, b in kept)]
        if left:
            ax.plot(seconds[left], signal[left], "x", color="black", ms=5,
                    label="over the threshold, not this kind's length")
            ax.legend(loc="upper right", fontsize=7, frameon=False)
        no_face = ~result.face
        if no_face.any():
            ax.fill_between(seconds, 0, 1, where=no_face, transform=ax.get_xaxis_transform(),
                            color="grey", alpha=0.3, lw=0)
        ax.set_ylabel(f"{kind} motion (px)")
    axes[0].set_title(f"{title}: {sum(s.kind == 'micro' for s in result.intervals)} micro, "
                      f"{sum(s.kind == 'macro' for s in result.intervals)} macro "
                      f"(dashed: thresholds; grey: no face)", fontsize=9)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
