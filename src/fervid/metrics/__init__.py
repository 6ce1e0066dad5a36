"""Recognition metrics under the field's definitions.

MEGC2019 (micro-expressions): for each class, TP, FP and FN are summed over all LOSO folds;
``F1_c = 2TP / (2TP + FP + FN)``, ``UF1 = mean_c F1_c``, ``UAR = mean_c TP_c / n_c``.
Classes absent from both the labels and the predictions of a subset are left out of its means
(a part of a composite set may lack a class). DFEW: WAR is accuracy, UAR the mean recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix


@dataclass(frozen=True)
class Scores:
    """Scores of one set of predictions."""

    uf1: float
    uar: float
    acc: float
    f1_macro: float
    n_samples: int
    per_class_recall: dict[str, float] = field(default_factory=dict)
    per_class_f1: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def score(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
          classes: Sequence[str]) -> Scores:
    """UF1, UAR, accuracy and macro-F1 of integer predictions.

    ``f1_macro`` is scikit-learn's macro F1 over the classes present in ``labels`` (the
    per-dataset figure papers report); ``uf1`` follows MEGC2019 as above.
    """
    y = np.asarray(labels, dtype=int)
    p = np.asarray(preds, dtype=int)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    k = len(classes)
    if len(y) == 0:
        return Scores(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    cm = confusion_matrix(y, p, labels=list(range(k)))
    tp = np.diag(cm).astype(float)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    support = cm.sum(1)
    present = (support + cm.sum(0)) > 0
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros(k), where=(2 * tp + fp + fn) > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    in_labels = support > 0
    return Scores(
        uf1=float(f1[present].mean()),
        uar=float(recall[in_labels].mean()),
        acc=float(tp.sum() / len(y)),
        f1_macro=float(f1[in_labels].mean()),
        n_samples=int(len(y)),
        per_class_recall={c: float(recall[i]) for i, c in enumerate(classes) if in_labels[i]},
        per_class_f1={c: float(f1[i]) for i, c in enumerate(classes) if present[i]},
    )


def split_summary(labels: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                  classes: Sequence[str]) -> dict:
    """One split's figures as ``metrics.json`` holds them (``fervid fit``, ``fervid
    evaluate``): ``acc``, ``uar``, ``per_class_recall``, ``confusion`` (rows: true class, in
    ``classes`` order), ``n_samples`` and ``classes``."""
    s = score(labels, preds, classes)
    cm = confusion_matrix(np.asarray(labels, int), np.asarray(preds, int),
                          labels=list(range(len(classes))))
    return {"acc": s.acc, "uar": s.uar, "per_class_recall": s.per_class_recall,
            "confusion": cm.tolist(), "n_samples": s.n_samples, "classes": list(classes)}


def score_predictions(frame: pd.DataFrame, classes: Sequence[str]) -> dict:
    """Whole-set, per-dataset and per-subject scores of a ``predictions.csv`` frame.

    ``frame`` has columns ``dataset, subject, clip, label, pred, fold``.
    """
    whole = score(frame["label"], frame["pred"], classes)
    per_dataset = {
        name: _short(score(part["label"], part["pred"], classes))
        for name, part in frame.groupby("dataset", sort=False)
    }
    per_subject = []
    for (dataset, subject), part in frame.groupby(["dataset", "subject"], sort=False):
        s = score(part["label"], part["pred"], classes)
        per_subject.append({"dataset": dataset, "subject": subject, "n": s.n_samples,
                            "acc": s.acc, "uf1": s.uf1, "uar": s.uar})
    return {"whole": whole, "per_dataset": per_dataset, "per_subject": per_subject}


def _short(s: Scores) -> dict:
    return {"uf1": s.uf1, "uar": s.uar, "acc": s.acc, "f1_macro": s.f1_macro,
            "n_samples": s.n_samples}


#: Resolution of the confusion matrix pictures.
CONFUSION_DPI = 100


def confusion_figure(labels, preds, classes: Sequence[str], title: str = ""):
    """A matplotlib figure: counts and row-normalised confusion matrices side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = confusion_matrix(labels, preds, labels=list(range(len(classes))))
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 2.2 * len(classes), 1.5 + 1.1 * len(classes)))
    for ax, data, fmt, name in ((axes[0], cm, "d", "counts"), (axes[1], norm, ".2f", "recall")):
        ax.imshow(data, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
        top = data.max() if data.size else 0
        for i in range(len(classes)):
            for j in range(len(classes)):
                v = data[i, j]
                ax.text(j, i, format(v, fmt), ha="center", va="center",
                        color="white" if top and v > top / 2 else "black", fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def save_confusion_png(labels, preds, classes: Sequence[str], path: Path, title: str = ""
                       ) -> Path:
    """:func:`confusion_figure` written to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    from fervid.files import atomic_write

    fig = confusion_figure(labels, preds, classes, title)
    # Atomic: a kill mid-write must not leave a truncated PNG under the final name.
    atomic_write(Path(path), lambda p: fig.savefig(p, format="png", dpi=CONFUSION_DPI))
    plt.close(fig)
    return path
