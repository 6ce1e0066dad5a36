"""A LOSO run directory (:mod:`fervid.protocol.loso`), read for the HTML report.

``RUN_DIR/`` (the shared run store, :mod:`fervid.runs.store`): ``run.json`` (``"protocol":
"loso"``, or no ``protocol`` in older runs), ``config.yaml``, ``folds.csv``,
``folds/fold_NNN.csv``, ``metrics.json``, ``per_subject.csv``, ``train_logs/*.csv`` (or
``train_log*.csv``), ``wall/*.json`` and, for SMA-STN runs, ``dssi_gallery/*.png`` with
``captions.json``. Only ``run.json`` and at least one finished fold are required; results not
merged yet are scored in memory, nothing is written.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fervid.metrics import score_predictions
from fervid.report.html.run_data import (
    LOSO,
    RunData,
    RunHeader,
    RunReportError,
    read_json,
    read_train_logs,
)
from fervid.runs.store import RunDirError, RunStore


def load_loso_run(header: RunHeader) -> RunData:
    """The report's view of the LOSO run whose ``run.json`` and ``config.yaml`` are ``header``."""
    run_dir, meta = header.run_dir, header.meta
    try:
        predictions = RunStore(run_dir).read_predictions()
    except RunDirError as err:
        raise RunReportError(str(err)) from err
    predictions = predictions.sort_values(["fold"], kind="stable").reset_index(drop=True)
    metrics = read_json(run_dir / "metrics.json", required=False)
    scores = score_predictions(predictions, meta["classes"])
    if not metrics or metrics.get("n_samples") != len(predictions):
        metrics = _metrics_from_scores(scores, meta, predictions)  # merge not written yet
    folds = _folds(run_dir, predictions)
    wall = [read_json(p, required=True) for p in sorted((run_dir / "wall").glob("*.json"))]
    return RunData(run_dir=run_dir, protocol=LOSO, meta=meta, config=header.config,
                   config_text=header.config_text, metrics=metrics, predictions=predictions,
                   per_subject=_per_subject(scores, folds), folds=folds,
                   train_logs=read_train_logs(run_dir), wall=wall, gallery=_gallery(run_dir))


def _metrics_from_scores(scores: dict, meta: dict, predictions: pd.DataFrame) -> dict:
    whole = scores["whole"]
    n_folds = int(predictions["fold"].nunique())
    return {"name": meta.get("name"), "seed": meta.get("seed"), "classes": meta["classes"],
            "uf1": whole.uf1, "uar": whole.uar, "acc": whole.acc, "f1_macro": whole.f1_macro,
            "n_samples": whole.n_samples, "n_folds": n_folds,
            "n_folds_total": meta.get("n_folds", n_folds),
            "complete": n_folds == meta.get("n_folds", n_folds),
            "per_dataset": scores["per_dataset"], "per_class_recall": whole.per_class_recall,
            "per_class_f1": whole.per_class_f1}


def _folds(run_dir: Path, predictions: pd.DataFrame) -> pd.DataFrame:
    path = run_dir / "folds.csv"
    if not path.exists():  # older runs: the finished folds are all that is known
        return predictions[["fold", "dataset", "subject"]].drop_duplicates(ignore_index=True)
    try:
        folds = pd.read_csv(path, dtype={"subject": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunReportError(f"{path}: unreadable fold list ({reason})") from err
    missing = {"fold", "dataset", "subject"} - set(folds.columns)
    if missing:
        raise RunReportError(f"{path}: lacks columns {sorted(missing)}")
    return folds


def _per_subject(scores: dict, folds: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(scores["per_subject"]).merge(folds, on=["dataset", "subject"],
                                                      how="left")
    table["fold"] = table["fold"].astype("Int64")
    table = table[["fold", "dataset", "subject", "n", "acc", "uf1", "uar"]]
    return table.sort_values(["acc", "n"], ascending=[True, False], kind="stable")


def _gallery(run_dir: Path) -> list[tuple[Path, str]]:
    folder = run_dir / "dssi_gallery"
    images = sorted(folder.glob("*.png"))
    if not images:
        return []
    captions = read_json(folder / "captions.json", required=False)
    return [(p, str(captions.get(p.name, p.stem))) for p in images]
