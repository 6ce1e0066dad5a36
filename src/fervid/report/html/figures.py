"""Figures of a run as small PNG data URIs (embedded in the report, nothing fetched)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from fervid.metrics import CONFUSION_DPI, confusion_figure
from fervid.report.html.run_data import RunReportError

#: Widest image the report embeds, pixels: keeps a report of many runs small.
MAX_WIDTH = 900
#: DPI of the report's own plots (about 560-700 px wide).
_DPI = 80
#: Above this many training logs, the curves show their mean, a band and a few logs.
_MAX_DRAWN_LOGS = 4


def png_data_uri(png: bytes, *, max_width: int = MAX_WIDTH) -> str:
    """``data:image/png;base64,...`` of a PNG, downscaled to ``max_width`` pixels if wider."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        if image.width > max_width:
            height = max(1, round(image.height * max_width / image.width))
            image = image.resize((max_width, height), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="PNG", optimize=True)
            png = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def image_file_uri(path: Path, *, max_width: int = MAX_WIDTH) -> str:
    try:
        return png_data_uri(Path(path).read_bytes(), max_width=max_width)
    except (OSError, Image.UnidentifiedImageError) as err:
        raise RunReportError(f"{path}: not a readable PNG image ({err})") from err


def confusion_uri(labels: Sequence[int], preds: Sequence[int], classes: Sequence[str],
                  title: str) -> str:
    """Counts and row-normalised confusion matrices, as the run's ``confusion.png`` draws them."""
    return _figure_uri(confusion_figure(labels, preds, classes, title), dpi=CONFUSION_DPI)


def _figure_uri(fig, dpi: int = _DPI) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return png_data_uri(buffer.getvalue())


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def recall_bars_uri(recall: dict[str, dict[str, float]], classes: Sequence[str]) -> str:
    """Grouped bars: per-class recall of each part (``{"all": {class: r}, "casme2": ...}``)."""
    plt = _pyplot()
    parts = list(recall)
    width = 0.8 / len(parts)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(classes) + 0.3 * len(parts), 3.2))
    x = np.arange(len(classes))
    for i, part in enumerate(parts):
        values = [recall[part].get(c, np.nan) for c in classes]
        bars = ax.bar(x + (i - (len(parts) - 1) / 2) * width, values, width, label=part)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set_xticks(x, classes)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("recall")
    ax.set_title("per-class recall")
    ax.grid(axis="y", alpha=0.3)
    if len(parts) > 1:
        ax.legend(fontsize=8, ncols=len(parts), loc="upper center", bbox_to_anchor=(0.5, -0.1),
                  frameon=False)
    fig.tight_layout()
    return _figure_uri(fig)


def training_curves_uri(logs: list[pd.DataFrame]) -> str:
    """Loss and train accuracy per epoch; for many logs their mean with a min-max band and a
    few logs drawn thin."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, column, name in ((axes[0], "loss", "training loss"),
                             (axes[1], "train_acc", "train accuracy")):
        if len(logs) <= _MAX_DRAWN_LOGS:
            for log in logs:
                ax.plot(log["epoch"], log[column], lw=1.5, label=log.attrs.get("name", ""))
        else:
            wide = pd.concat([log.set_index("epoch")[column] for log in logs], axis=1)
            ax.fill_between(wide.index, wide.min(axis=1), wide.max(axis=1), alpha=0.25,
                            label="min-max")
            picks = np.linspace(0, len(logs) - 1, 3).round().astype(int)
            for j in picks:
                ax.plot(wide.index, wide.iloc[:, j], lw=0.7, alpha=0.7,
                        label=logs[j].attrs.get("name", ""))
            ax.plot(wide.index, wide.mean(axis=1), lw=2, color="black",
                    label=f"mean of {len(logs)}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _figure_uri(fig)
