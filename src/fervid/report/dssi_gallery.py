"""Pictures of DSSI inputs: one clip's local and global dynamic images with their weights.

Used by ``fervid dssi`` (any folder of frames), by the demo (a gallery of test clips of an
SMA-STN run, with the temporal segment weights its fold's model gave them) and by reports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.files import atomic_write
from fervid.report.html.run_data import RunReportError
from fervid.representation.dssi import DssiCache, DssiParams, DssiResult
from fervid.representation.dynamic_image import to_display
from fervid.samples import SampleTable


def save_dssi_figure(result: DssiResult, path: Path, *, title: str = "",
                     weights: Sequence[float] | None = None,
                     apex_frame: np.ndarray | None = None) -> Path:
    """Draw the K local dynamic images (with their weights, if given), the global one and,
    optionally, the apex frame, side by side; each DI is stretched to 0..255 on its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(f"segment {k + 1}" + ("" if weights is None else f"\nα = {weights[k]:.2f}"), di)
              for k, di in enumerate(result.local)]
    panels.append(("global DI", result.global_))
    if apex_frame is not None:
        panels.append(("apex frame", apex_frame))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * len(panels), 2.4), squeeze=False)
    for ax, (label, image) in zip(axes[0], panels, strict=True):
        shown = to_display(np.asarray(image, dtype=np.float32))
        if shown.ndim == 3 and shown.shape[-1] == 1:
            shown = shown[..., 0]
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=255)
        ax.set_title(label, fontsize=8)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, dpi=100, format="png"))
    plt.close(fig)
    return path


def write_dssi_gallery(run_dir: Path, table: SampleTable, params: DssiParams, cache_dir: Path,
                       *, per_class: int = 1) -> list[Path]:
    """PNGs of the DSSI of a few held-out clips of an SMA-STN run, with their segment weights.

    Picks ``per_class`` clips of each true class from the run's predictions (those with
    ``alpha_k`` columns), draws them into ``run_dir/dssi_gallery/`` and writes
    ``captions.json`` (file name → caption).
    """
    run_dir = Path(run_dir)
    fold_files = sorted((run_dir / "folds").glob("fold_*.csv"))
    if not fold_files:
        raise RunReportError(f"{run_dir}: no folds/fold_*.csv predictions (not a LOSO run "
                             "directory, or no fold has finished)")
    frame = pd.concat([pd.read_csv(f, dtype={"subject": str, "clip": str}) for f in fold_files])
    alpha_cols = sorted((c for c in frame.columns if c.startswith("alpha_")),
                        key=lambda c: int(c.split("_")[1]))
    if not alpha_cols:
        raise RunReportError(f"{run_dir}: predictions have no segment weights (not an SMA-STN "
                             "run)")
    by_key = {(s.dataset, s.subject, s.clip): s for s in table}
    cache = DssiCache(cache_dir)
    out_dir = run_dir / "dssi_gallery"
    captions, written = {}, []
    for label, rows in frame.groupby("label", sort=True):
        for _, row in rows.head(per_class).iterrows():
            sample = by_key[(row["dataset"], row["subject"], row["clip"])]
            weights = [float(row[c]) for c in alpha_cols]
            truth, pred = table.classes[int(label)], table.classes[int(row["pred"])]
            caption = (f"{sample.key}: true {truth}, predicted {pred}; segment weights "
                       + ", ".join(f"{w:.2f}" for w in weights))
            name = f"{sample.key}.png"
            written.append(save_dssi_figure(cache.get_or_compute(sample, params),
                                            out_dir / name, title=caption, weights=weights))
            captions[name] = caption
    atomic_write(out_dir / "captions.json",
                 lambda p: p.write_text(json.dumps(captions, indent=2)))
    return written
