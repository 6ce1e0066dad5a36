"""What a run keeps on disk, written so that a killed run loses nothing it had finished.

The same layout for every protocol (LOSO, DFEW k-fold):

``RUN_DIR/``
    ``run.json`` (``protocol``, config fingerprint, seed, classes, ``provenance``: what
      made the run, a segment per machine or version it ran on), ``config.yaml``;
    LOSO: ``folds.csv`` (fold → subject);
    ``folds/fold_NNN.csv``: one file per finished fold, written atomically the moment it ends
      (LOSO folds count from 0, DFEW's from 1);
    ``models/fold_NNN.pt``: that fold's model, a self-describing checkpoint
      (:mod:`fervid.runs.checkpoint`: weights, config, classes, input spec), written before
      the fold file;
    ``selection/fold_NNN.json``: with ``train.select: inner_val``, what each fold chose and
      the validation scores it chose by (training subjects only);
    ``traces/fold_NNN.csv``: with ``run.trace_every``, the fold's test predictions every N
      epochs (``epoch`` plus the fold file's columns), for the test-selected row only;
    ``checkpoints/``: resumable state of unfinished training;
    ``train_logs/*.csv``: loss and train accuracy per epoch;
    ``wall/*.json``: the wall time of each invocation.

A run scored from already-trained models (``fervid evaluate --fold-weights``) has the same
layout, no ``checkpoints/`` or ``train_logs/``, and says so in ``run.json`` (``trained``:
false, ``fold_weights``: the folder).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml
from pydantic import BaseModel

from fervid.errors import FervidError, UserPathError, path_error
from fervid.files import atomic_write, remove_stale_tmp
from fervid.runs import provenance

if TYPE_CHECKING:  # torch is imported where a model is saved: `fervid report` needs none
    import torch

PREDICTION_COLUMNS = ["dataset", "subject", "clip", "label", "pred", "fold"]


class RunDirError(FervidError, RuntimeError):
    """RUN_DIR holds something this run must not overwrite or cannot read."""


def read_run_meta(run_dir: Path) -> dict:
    """``run_dir/run.json``, or a :class:`RunDirError` saying it is not a run directory."""
    meta_path = Path(run_dir) / "run.json"
    if not meta_path.exists():
        raise RunDirError(f"{run_dir}: not a fervid run directory (no run.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirError(f"{meta_path}: not valid JSON ({err})") from err
    except OSError as err:
        raise path_error(meta_path, err, "run file") from err
    if not isinstance(meta, dict):
        raise RunDirError(f"{meta_path}: expected a JSON object")
    if "classes" in meta and not (isinstance(meta["classes"], list) and len(meta["classes"]) > 1
                                  and all(isinstance(c, str) for c in meta["classes"])):
        raise RunDirError(f"{meta_path}: classes {meta['classes']!r} is not a list of class "
                          "names")
    return meta


def require_meta(meta: dict, run_dir: Path, *keys: str) -> None:
    """A :class:`RunDirError` naming ``run_dir/run.json`` when it lacks one of ``keys``."""
    missing = [k for k in keys if k not in meta]
    if missing:
        raise RunDirError(f"{Path(run_dir) / 'run.json'}: lacks {', '.join(missing)} (a "
                          "damaged or hand-edited run.json)")


def claim_run_dir(root: Path, info: dict, cfg: BaseModel, *,
                  same: Sequence[str] = ("fingerprint",)) -> bool:
    """Create ``root`` with ``run.json`` (``info``) and ``config.yaml`` (``cfg``) and return
    True; or, when ``root`` already holds a run, check that its ``run.json`` agrees with
    ``info`` on ``same`` (a resume) and return False.

    Raises
    ------
    RunDirError
        ``root`` holds a run of another config or data set.
    """
    meta = Path(root) / "run.json"
    if Path(root).exists() and not Path(root).is_dir():
        raise UserPathError(f"{root}: the run directory is a file, not a folder; choose "
                            "another --out")
    if meta.exists():
        old = read_run_meta(root)
        if any(old.get(k) != info[k] for k in same):
            there = ", ".join(f"{k} {old.get(k)}" for k in same)
            here = ", ".join(f"{k} {info[k]}" for k in same)
            raise RunDirError(f"{root} holds a run of another config or data set ({there}; "
                              f"this run: {here}). Use another --out.")
        return False
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        # run.json last: it marks the folder claimed, so a run killed before it starts afresh
        # (and writes config.yaml again) rather than resuming without one.
        atomic_write(Path(root) / "config.yaml",
                     lambda p: p.write_text(yaml.safe_dump(cfg.model_dump(), sort_keys=False)))
        atomic_write(meta, lambda p: p.write_text(json.dumps(info, indent=2)))
    except (FileExistsError, NotADirectoryError, PermissionError) as err:
        raise path_error(root, err, "run directory (--out)") from err
    return True


@dataclass(frozen=True)
class FoldPredictions:
    """Predictions of one fold for its held-out samples (``index`` into the sample table)."""

    fold: int
    index: torch.Tensor
    preds: torch.Tensor
    probs: torch.Tensor  # (n, n_classes)
    segment_weights: torch.Tensor | None = None  # (n, K): SMA-STN's temporal attention


class RunStore:
    """The files of one run directory (any protocol)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def fold_path(self, fold: int) -> Path:
        return self.root / "folds" / f"fold_{fold:03d}.csv"

    def model_path(self, fold: int) -> Path:
        return self.root / "models" / f"fold_{fold:03d}.pt"

    def selection_path(self, fold: int) -> Path:
        return self.root / "selection" / f"fold_{fold:03d}.json"

    def trace_path(self, fold: int) -> Path:
        return self.root / "traces" / f"fold_{fold:03d}.csv"

    def checkpoint_path(self, name: str) -> Path:
        """Resumable training state ``checkpoints/NAME.pt``."""
        return self.root / "checkpoints" / f"{name}.pt"

    def log_path(self, name: str) -> Path:
        """Per-epoch log ``train_logs/NAME.csv``."""
        return self.root / "train_logs" / f"{name}.csv"

    def open(self, cfg: BaseModel, info: dict, *, same: Sequence[str] = ("fingerprint",),
             folds: pd.DataFrame | None = None) -> bool:
        """Create the run directory with ``run.json`` (``info``, which names the ``protocol``,
        plus this process's ``provenance``), ``config.yaml`` and, when given, ``folds.csv``;
        or check that it holds a run that agrees on ``same`` (a resume). Returns True when
        created.

        A resume on another machine or with other versions appends a provenance segment to
        ``run.json`` and prints a one-line notice on stderr (:mod:`fervid.runs.provenance`);
        provenance never decides whether a run may resume."""
        if "protocol" not in info:
            raise ValueError("run.json must name its protocol")
        record = provenance.collect(precision=info.get("precision"))
        created = claim_run_dir(self.root, {**info, "provenance": [record]}, cfg, same=same)
        if not created:
            self._record_resume(record)
        # Also on a resume when missing: a run killed right after run.json had none.
        if folds is not None and (created or not (self.root / "folds.csv").exists()):
            atomic_write(self.root / "folds.csv", lambda p: folds.to_csv(p, index=False))
        return created

    def _record_resume(self, record: dict) -> None:
        meta = read_run_meta(self.root)
        kept, notice = provenance.resumed(meta, record)
        if kept == provenance.segments(meta):
            return
        # Shards resumed at once on two machines may each append; the later write wins.
        atomic_write(self.root / "run.json",
                     lambda p: p.write_text(json.dumps({**meta, "provenance": kept}, indent=2)))
        if notice:
            print(notice, file=sys.stderr, flush=True)

    def finished(self, folds: Sequence[int]) -> list[int]:
        return [f for f in folds if self.fold_path(f).exists()]

    def write_fold(self, fold: int, predictions: pd.DataFrame, model: dict | None = None, *,
                   selection: dict | None = None, trace: pd.DataFrame | None = None) -> None:
        """Write a finished fold: its model (``model``, a checkpoint payload from
        :func:`fervid.runs.checkpoint.checkpoint_payload`), ``selection`` and ``trace`` first,
        then its predictions; a fold counts as finished once its CSV exists. Temporary files a
        killed writer of this fold left are removed (a fold has one writer)."""
        if selection is not None:
            remove_stale_tmp(self.selection_path(fold))
            atomic_write(self.selection_path(fold),
                         lambda p: p.write_text(json.dumps(selection, indent=2)))
        if trace is not None:
            remove_stale_tmp(self.trace_path(fold))
            atomic_write(self.trace_path(fold), lambda p: trace.to_csv(p, index=False))
        if model is not None:
            import torch

            remove_stale_tmp(self.model_path(fold))
            atomic_write(self.model_path(fold), lambda p: torch.save(model, p))
        remove_stale_tmp(self.fold_path(fold))
        atomic_write(self.fold_path(fold), lambda p: predictions.to_csv(p, index=False))

    def write_wall(self, record: dict) -> None:
        """Record one invocation's ``wall_s`` (and whatever else ``record`` holds) as
        ``wall/<host>_<pid>_<ms>.json``; a run's wall time is the sum over these files."""
        stamp = f"{socket.gethostname()}_{os.getpid()}_{int(time.time() * 1000)}"
        atomic_write(self.root / "wall" / f"{stamp}.json",
                     lambda p: p.write_text(json.dumps(record)))

    def read_predictions(self, n_classes: int | None = None) -> pd.DataFrame:
        """Every LOSO fold file, concatenated, each checked (:func:`read_fold_file`)."""
        files = sorted((self.root / "folds").glob("fold_*.csv"))
        if not files:
            raise RunDirError(f"{self.root}: no finished folds (folds/fold_*.csv)")
        return pd.concat([read_fold_file(f, PREDICTION_COLUMNS, n_classes) for f in files],
                         ignore_index=True)


#: How every message about a damaged fold file ends: fold files are written whole.
REDO_FOLD = "delete it to run that fold again"


def read_fold_csv(path: Path, columns: Sequence[str], kind: str = "") -> pd.DataFrame:
    """A fold file's table with the ``columns`` present (``kind`` names the file's kind in
    the message, e.g. ``" of an AU fold file"``); its values are the caller's to check.

    Raises
    ------
    RunDirError
        Naming the file: unreadable, or a column missing.
    """
    try:
        frame = pd.read_csv(path, dtype={"subject": str, "clip": str, "dataset": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunDirError(f"{path}: unreadable fold predictions ({reason}); {REDO_FOLD}"
                          ) from err
    except OSError as err:
        raise path_error(path, err, "fold file") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunDirError(f"{path}: lacks columns {missing}{kind}; {REDO_FOLD}")
    return frame


def read_fold_file(path: Path, columns: Sequence[str], n_classes: int | None = None
                   ) -> pd.DataFrame:
    """One ``folds/fold_NNN.csv``, checked: readable, the ``columns`` present, ``label`` and
    ``pred`` whole numbers (in ``0..n_classes-1`` when given) and ``fold`` a whole number.

    Raises
    ------
    RunDirError
        Naming the file (and the line) and the problem; fold files are written whole, so a bad
        one was damaged after the run: delete it to run that fold again.
    """
    redo = REDO_FOLD
    frame = read_fold_csv(path, columns)
    needed = [*columns, *(c for c in frame.columns if str(c).startswith("p_"))]
    blank = frame[needed].isna().any(axis=1).to_numpy()
    if blank.any():
        raise RunDirError(f"{path}: line {int(blank.argmax()) + 2} is cut short or has blank "
                          f"fields; {redo}")
    for column in ("label", "pred", "fold"):
        values = pd.to_numeric(frame[column], errors="coerce")
        limit = 10**6 if column == "fold" or n_classes is None else n_classes - 1
        bad = values.isna() | (values != values.round()) | ~values.between(0, limit)
        if bad.any():
            line = int(bad.to_numpy().argmax()) + 2
            what = "a fold number" if column == "fold" else f"a class index 0..{limit}"
            raise RunDirError(f"{path}: {column} {str(frame[column][bad].iloc[0])!r} is not "
                              f"{what} (line {line}); {redo}")
    frame[["label", "pred", "fold"]] = frame[["label", "pred", "fold"]].astype(int)
    return frame


def loso_fold_frame(result: FoldPredictions, table, classes: Sequence[str]) -> pd.DataFrame:
    """A LOSO fold's predictions as its fold file holds them: ``dataset, subject, clip, label,
    pred, fold, p_<class>...`` and, for SMA-STN, ``alpha_0..alpha_{K-1}``."""
    rows = []
    for i, pred, prob in zip(result.index.tolist(), result.preds.tolist(),
                             result.probs.tolist(), strict=True):
        s = table[i]
        row = {"dataset": s.dataset, "subject": s.subject, "clip": s.clip,
               "label": s.label, "pred": pred, "fold": result.fold}
        row.update({f"p_{c}": round(p, 6) for c, p in zip(classes, prob, strict=True)})
        rows.append(row)
    columns = PREDICTION_COLUMNS + [f"p_{c}" for c in classes]
    frame = pd.DataFrame(rows, columns=columns)
    if result.segment_weights is not None:  # alpha_0..alpha_{K-1}, for reports
        for k, col in enumerate(result.segment_weights.t().tolist()):
            frame[f"alpha_{k}"] = [round(v, 6) for v in col]
    return frame


def split_prediction_frame(split: str, clips: Sequence[str], labels, preds, probs,
                           classes: Sequence[str]) -> pd.DataFrame:
    """Per-sample predictions of a scored split (``fervid fit``, ``fervid evaluate``):
    ``split, clip, label, pred, p_<class>...``; ``probs`` ``(n, len(classes))``."""
    rows = [{"split": split, "clip": clip, "label": int(y), "pred": int(p),
             **{f"p_{c}": round(float(v), 6) for c, v in zip(classes, pr, strict=True)}}
            for clip, y, p, pr in zip(clips, labels, preds, probs, strict=True)]
    return pd.DataFrame(rows, columns=["split", "clip", "label", "pred",
                                       *(f"p_{c}" for c in classes)])
