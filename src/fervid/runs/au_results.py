"""An AU run's fold files and merged results.

A fold file of an AU run (``run.json``'s ``task``: ``au``) holds ``dataset, subject, clip,
fold``, each AU's 0/1 target ``y_<AU>`` and predicted probability ``p_<AU>``. A probability
of at least :data:`THRESHOLD` counts as present: a fixed threshold, never tuned on test
samples. :func:`build_au_results` pools every finished fold and writes ``predictions.csv`` and
``metrics.json`` (binary F1 per AU and its mean, MEB's macro variant beside it, per dataset).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.files import atomic_write
from fervid.metrics.au import BINARY_LABEL, MACRO_LABEL, au_scores
from fervid.runs.store import (
    REDO_FOLD,
    RunDirError,
    RunStore,
    read_fold_csv,
    read_run_meta,
    require_meta,
)

#: The probability from which an AU counts as present.
THRESHOLD = 0.5
ID_COLUMNS = ["dataset", "subject", "clip", "fold"]
#: ``run.json`` fields of an AU run copied into ``metrics.json``.
AU_META = ("au_counts", "au_min_count", "n_with_aus", "left_out_without_aus",
           "au_sheet_matches")


def au_fold_frame(fold: int, index: Sequence[int], probs, targets, table,
                  aus: Sequence[str]) -> pd.DataFrame:
    """A fold's rows: ids, ``y_<AU>`` (targets ``(n, A)``) and ``p_<AU>`` (probabilities
    ``(n, A)``), for the samples ``index`` of ``table``."""
    probs, targets = np.asarray(probs, dtype=float), np.asarray(targets)
    rows = []
    for i, prob, target in zip(list(index), probs, targets, strict=True):
        s = table[int(i)]
        row = {"dataset": s.dataset, "subject": s.subject, "clip": s.clip, "fold": fold}
        row.update({f"y_{a}": int(v) for a, v in zip(aus, target, strict=True)})
        row.update({f"p_{a}": round(float(v), 6) for a, v in zip(aus, prob, strict=True)})
        rows.append(row)
    return pd.DataFrame(rows, columns=[*ID_COLUMNS, *(f"y_{a}" for a in aus),
                                       *(f"p_{a}" for a in aus)])


def read_au_fold(path: Path, aus: Sequence[str]) -> pd.DataFrame:
    """One fold file of an AU run, checked (columns present, no blanks, numeric targets and
    probabilities); a :class:`RunDirError` names a bad file."""
    columns = [*ID_COLUMNS, *(f"y_{a}" for a in aus), *(f"p_{a}" for a in aus)]
    frame = read_fold_csv(path, columns, " of an AU fold file")
    values = frame[columns[3:]].apply(pd.to_numeric, errors="coerce")
    if values.isna().any().any() or frame[columns[:3]].isna().any().any():
        line = int(values.isna().any(axis=1).to_numpy().argmax()) + 2
        raise RunDirError(f"{path}: line {line} is cut short or not numeric; {REDO_FOLD}")
    frame[columns[3:]] = values
    return frame[columns]


def read_au_predictions(store: RunStore, aus: Sequence[str]) -> pd.DataFrame:
    """Every fold file of an AU run (:func:`read_au_fold`), in fold order."""
    files = sorted((store.root / "folds").glob("fold_*.csv"))
    if not files:
        raise RunDirError(f"{store.root}: no finished folds (folds/fold_*.csv)")
    frames = [read_au_fold(path, aus) for path in files]
    return pd.concat(frames, ignore_index=True).sort_values("fold", kind="stable")


def build_au_results(run_dir: Path, wall_s: float) -> dict:
    """Score every finished fold of an AU run, pooled over folds, and write
    ``predictions.csv`` and ``metrics.json`` (``wall_s``: the run's summed wall time).
    Returns the metrics."""
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    require_meta(meta, run_dir, "classes", "fingerprint", "n_folds")
    aus = meta["classes"]
    frame = read_au_predictions(RunStore(run_dir), aus)

    def scores(rows: pd.DataFrame) -> dict:
        return au_scores(rows[[f"y_{a}" for a in aus]].to_numpy(),
                         rows[[f"p_{a}" for a in aus]].to_numpy() >= THRESHOLD, aus)

    whole = scores(frame)
    per_dataset = {name: scores(rows) for name, rows in frame.groupby("dataset", sort=True)}
    n_folds = int(frame["fold"].nunique())
    metrics = {
        "name": meta.get("name"), "seed": meta.get("seed"), "fingerprint": meta["fingerprint"],
        "task": "au", "classes": aus, "threshold": THRESHOLD,
        "averaging": "pooled over folds", "binary_label": BINARY_LABEL,
        "macro_label": MACRO_LABEL, **whole,
        "n_folds": n_folds, "n_folds_total": meta["n_folds"],
        "complete": n_folds == meta["n_folds"], "group": meta.get("group", "subject"),
        "wall_s": round(wall_s, 2), "per_dataset": per_dataset,
        **{k: meta[k] for k in AU_META if k in meta},
    }
    atomic_write(run_dir / "predictions.csv", lambda p: frame.to_csv(p, index=False))
    atomic_write(run_dir / "metrics.json", lambda p: p.write_text(json.dumps(metrics, indent=2)))
    return metrics
