"""A run's merged results, from its finished fold files (from any number of shards).

The end of ``fervid loso`` / ``fervid kfold`` and ``fervid report`` all call
:func:`build_loso_results` or :func:`build_kfold_results`, which write ``predictions.csv``,
``metrics.json`` and ``confusion.png`` (LOSO: also ``per_subject.csv``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.files import atomic_write
from fervid.metrics import save_confusion_png, score, score_predictions
from fervid.runs.store import (
    PREDICTION_COLUMNS,
    RunDirError,
    RunStore,
    read_fold_file,
    read_run_meta,
    require_meta,
)


class FoldFileError(RunDirError, ValueError):
    """A fold file of a run directory is missing, unreadable or holds bad values."""


#: ``run.json`` fields copied into ``metrics.json`` when present: a run scored from
#: already-trained models (``trained``: false) names them (``fold_weights``: the folder).
PROVENANCE_FIELDS = ("trained", "fold_weights", "pretrained")
#: ``run.json`` fields of how the models were trained, copied into ``metrics.json`` as well:
#: ``au_aid``, the AU loss that aided an emotion run (weight, AUs, counts).
TRAINING_FIELDS = ("au_aid",)


@dataclass(frozen=True)
class LosoReport:
    run_dir: Path
    metrics: dict
    per_subject: pd.DataFrame


def build_loso_results(run_dir: Path) -> LosoReport:
    """Score every finished fold of ``run_dir`` and write the merged result files."""
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    if meta.get("task") == "au":  # multi-label AU detection: its own fold files and scores
        from fervid.runs.au_results import build_au_results

        wall = sum(_wall_seconds(p) for p in (run_dir / "wall").glob("*.json"))
        return LosoReport(run_dir, build_au_results(run_dir, wall), pd.DataFrame())
    require_meta(meta, run_dir, "classes", "fingerprint", "n_folds")
    classes = meta["classes"]
    store = RunStore(run_dir)
    frame = store.read_predictions(len(classes)).sort_values(["fold"], kind="stable")
    scores = score_predictions(frame, classes)
    whole = scores["whole"]
    wall = sum(_wall_seconds(p) for p in (run_dir / "wall").glob("*.json"))
    n_folds_done = int(frame["fold"].nunique())
    metrics = {
        "name": meta.get("name"), "seed": meta.get("seed"), "fingerprint": meta["fingerprint"],
        "classes": classes,
        "uf1": whole.uf1, "uar": whole.uar, "acc": whole.acc, "f1_macro": whole.f1_macro,
        "n_samples": whole.n_samples, "n_folds": n_folds_done,
        "n_folds_total": meta["n_folds"], "complete": n_folds_done == meta["n_folds"],
        "group": meta.get("group", "subject"),
        "wall_s": round(wall, 2),
        "per_dataset": scores["per_dataset"],
        "per_class_recall": whole.per_class_recall, "per_class_f1": whole.per_class_f1,
        # Where the models came from, when not trained by this run (e.g. fold weights).
        **{k: meta[k] for k in PROVENANCE_FIELDS if k in meta},
        **{k: meta[k] for k in TRAINING_FIELDS if k in meta},
    }
    selected = test_selected_scores(store, sorted(frame["fold"].unique()), classes)
    if selected is not None:
        metrics["test_selected"] = selected
    per_subject = pd.DataFrame(scores["per_subject"]).sort_values(["acc", "n"],
                                                                  ascending=[True, False])
    atomic_write(run_dir / "predictions.csv",
                 lambda p: frame[PREDICTION_COLUMNS].to_csv(p, index=False))
    atomic_write(run_dir / "per_subject.csv", lambda p: per_subject.to_csv(p, index=False))
    atomic_write(run_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2)))
    save_confusion_png(frame["label"], frame["pred"], classes, run_dir / "confusion.png",
                       title=f"{meta.get('name')} seed {meta.get('seed')}: UF1 {whole.uf1:.4f}"
                             f"  UAR {whole.uar:.4f}")
    return LosoReport(run_dir, metrics, per_subject)


#: How the report labels the figure of :func:`test_selected_scores`, wherever it shows it.
TEST_SELECTED_LABEL = "test-selected (not a valid result)"


def test_selected_scores(store: RunStore, folds: list[int], classes: list[str]) -> dict | None:
    """What keeping each fold's best epoch *by its own test accuracy* would have scored, from
    the run's ``traces/`` (``run.trace_every``); None unless every finished fold has a trace.

    This is how much of the published code reports, and it is not a valid result: it is shown
    beside the honest figure only to measure the inflation. Ties go to the later epoch (the
    ``>=`` of the usual best-so-far loop).
    """
    paths = [store.trace_path(f) for f in folds]
    if not paths or not all(p.exists() for p in paths):
        return None
    chosen, epochs = [], {}
    for fold, path in zip(folds, paths, strict=True):
        trace = read_fold_file(path, ["epoch", *PREDICTION_COLUMNS], len(classes))
        acc = (trace["label"] == trace["pred"]).groupby(trace["epoch"]).mean()
        best = int(acc[acc == acc.max()].index.max())
        epochs[int(fold)] = best
        chosen.append(trace[trace["epoch"] == best])
    scores = score_predictions(pd.concat(chosen, ignore_index=True), classes)
    whole = scores["whole"]
    return {"label": TEST_SELECTED_LABEL, "uf1": whole.uf1, "uar": whole.uar, "acc": whole.acc,
            "f1_macro": whole.f1_macro, "n_samples": whole.n_samples,
            "per_dataset": scores["per_dataset"], "epochs": epochs}


def _wall_seconds(path: Path) -> float:
    """``wall_s`` of one ``wall/*.json`` record; a :class:`RunDirError` naming a bad one."""
    try:
        seconds = json.loads(path.read_text(encoding="utf-8"))["wall_s"]
        return float(seconds)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise RunDirError(f"{path}: not a wall-time record ({type(err).__name__}: {err}); "
                          "delete it (the run's wall time then leaves it out)") from err


_FOLD_COLUMNS = ("clip", "label", "pred", "fold")
#: The two ways of averaging over folds, as ``metrics.json`` names them.
AVERAGES = {"pooled": "pooled over folds", "mean_of_folds": "mean of folds"}


def read_fold_predictions(run_dir: Path, n_classes: int) -> pd.DataFrame:
    """Every ``folds/fold_N.csv`` of ``run_dir``, checked, in fold order.

    Raises :class:`FoldFileError` (a ``ValueError``) naming the file when one is unreadable,
    lacks a column or holds a label outside ``0..n_classes-1``.
    """
    paths = sorted((Path(run_dir) / "folds").glob("fold_*.csv"))
    if not paths:
        raise FoldFileError(f"{run_dir}: no finished folds (folds/fold_*.csv)")
    frames = []
    for path in paths:
        try:
            frames.append(read_fold_file(path, _FOLD_COLUMNS, n_classes))
        except FoldFileError:
            raise
        except RunDirError as err:
            raise FoldFileError(str(err)) from err
    predictions = pd.concat(frames, ignore_index=True)
    return predictions.sort_values("fold", kind="stable").reset_index(drop=True)


def kfold_metrics(frame: pd.DataFrame, classes: list[str], meta: dict) -> dict:
    """WAR, UAR and per-class recall of ``frame`` (``label, pred, fold``), pooled over the
    folds and as the mean of the folds, plus each fold's figures."""
    pooled = score(frame["label"], frame["pred"], classes)
    per_fold = {int(f): score(g["label"], g["pred"], classes)
                for f, g in frame.groupby("fold", sort=True)}
    mean_recall = {c: float(np.mean([s.per_class_recall.get(c, np.nan)
                                     for s in per_fold.values()])) for c in classes}
    return {
        "name": meta.get("name"), "seed": meta.get("seed"), "protocol": meta.get("protocol"),
        # The release; None for runs from before it was recorded (DFEW's, as the protocol says).
        "dataset": meta.get("dataset"),
        "classes": classes, "label_order": {c: i + 1 for i, c in enumerate(classes)},
        "n_samples": int(len(frame)), "folds": sorted(per_fold),
        "skipped_clips": len(meta.get("skipped_clips", [])),
        "pooled": {"war": pooled.acc, "uar": pooled.uar,
                   "per_class_recall": pooled.per_class_recall},
        "mean_of_folds": {"war": float(np.mean([s.acc for s in per_fold.values()])),
                          "uar": float(np.mean([s.uar for s in per_fold.values()])),
                          "per_class_recall": mean_recall},
        "per_fold": {f: {"war": s.acc, "uar": s.uar, "n_samples": s.n_samples}
                     for f, s in per_fold.items()},
    }


def build_kfold_results(run_dir: Path) -> dict:
    """Score the finished folds of ``run_dir``; write predictions.csv, metrics.json and
    confusion.png; return the metrics."""
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    require_meta(meta, run_dir, "classes")
    classes = meta["classes"]
    frame = read_fold_predictions(run_dir, len(classes))
    metrics = kfold_metrics(frame, classes, meta)
    pooled = metrics["pooled"]
    cols = ["clip", "label", "pred", "fold"]
    atomic_write(run_dir / "predictions.csv", lambda p: frame[cols].to_csv(p, index=False))
    atomic_write(run_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2)))
    save_confusion_png(frame["label"], frame["pred"], classes, run_dir / "confusion.png",
                       title=f"{meta.get('name')}: WAR {pooled['war']:.4f}  "
                             f"UAR {pooled['uar']:.4f} (pooled)")
    return metrics


