"""A k-fold run directory (DFEW, MAFW, FERV39k; :mod:`fervid.protocol.kfold`), for the report.

``RUN_DIR/`` (the shared run store, :mod:`fervid.runs.store`): ``run.json`` (``"protocol":
"dfew_5fold"``), ``config.yaml``, ``folds/fold_NNN.csv`` (``clip, label, pred, fold,
p_<class>``), ``train_logs/fold_NNN.csv`` (``epoch, loss, train_acc, wall_s``) and, once
merged, ``metrics.json`` (``pooled``, ``mean_of_folds``, ``per_fold``, ``label_order``).
``NNN`` is the DFEW fold number 1..5, zero-padded (``fold_001``); older runs wrote it bare
(``fold_1``), and both are read. Only ``run.json`` and one finished fold are required: figures
of folds not merged yet are scored in memory, nothing is written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fervid.report.html.run_data import (
    RunData,
    RunHeader,
    RunReportError,
    fold_number,
    read_json,
    read_train_logs,
)
from fervid.runs.results import kfold_metrics, read_fold_predictions


def load_kfold_run(header: RunHeader) -> RunData:
    """The report's view of the k-fold run whose ``run.json`` and ``config.yaml`` are
    ``header``."""
    run_dir, meta = header.run_dir, header.meta
    classes = list(meta["classes"])
    try:
        predictions = read_fold_predictions(run_dir, len(classes))
    except ValueError as err:
        raise RunReportError(str(err)) from err
    metrics = read_json(run_dir / "metrics.json", required=False)
    folds = sorted(int(f) for f in predictions["fold"].unique())
    if (not metrics or metrics.get("n_samples") != len(predictions)
            or list(metrics.get("folds", [])) != folds):
        metrics = kfold_metrics(predictions, classes, meta)  # merge not written yet
    metrics = {**metrics, "per_fold": {int(f): v for f, v in metrics["per_fold"].items()}}
    train_logs = read_train_logs(run_dir)
    return RunData(run_dir=run_dir, protocol=header.protocol, meta=meta, config=header.config,
                   config_text=header.config_text, metrics=metrics, predictions=predictions,
                   per_subject=pd.DataFrame(), folds=pd.DataFrame({"fold": folds}),
                   train_logs=train_logs, per_fold=per_fold_table(metrics, train_logs))


def per_fold_table(metrics: dict, train_logs: list[pd.DataFrame]) -> pd.DataFrame:
    """``fold, n, war, uar, epochs, loss, train_acc, train_s`` per finished fold, worst WAR
    first; the training columns come from the fold's log, ``train_logs/fold_NNN.csv`` or
    ``train_logs/fold_N.csv`` (matched by the fold number of its name; NaN when absent)."""
    logs = {fold_number(str(log.attrs.get("name", ""))): log for log in train_logs}
    rows = []
    for fold, figures in metrics["per_fold"].items():
        log = logs.get(int(fold))
        last = log.iloc[-1] if log is not None else None
        rows.append({
            "fold": int(fold), "n": int(figures["n_samples"]), "war": figures["war"],
            "uar": figures["uar"],
            "epochs": np.nan if last is None else int(last["epoch"]),
            "loss": np.nan if last is None else float(last["loss"]),
            "train_acc": np.nan if last is None else float(last["train_acc"]),
            "train_s": (np.nan if log is None or "wall_s" not in log
                        else float(log["wall_s"].sum())),
        })
    table = pd.DataFrame(rows, columns=["fold", "n", "war", "uar", "epochs", "loss",
                                        "train_acc", "train_s"])
    return table.sort_values(["war", "uar", "fold"], kind="stable").reset_index(drop=True)
