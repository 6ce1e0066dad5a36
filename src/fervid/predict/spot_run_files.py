"""The files of one fold of a spotting run (:mod:`fervid.predict.spot_release`), read and
written atomically: ``folds/SUBJECT.json`` and ``signals/VIDEO.npz``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import numpy as np

from fervid.files import atomic_write
from fervid.metrics.spotting import SpottedInterval
from fervid.predict.spot_loso import SpotFold


def write_signals(path: Path, signals: Mapping[str, np.ndarray]) -> None:
    """``signals`` (name → ``(T,)``) as an ``.npz``."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **signals)
    atomic_write(path, write)


def read_signals(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def write_fold(path: Path, fold: SpotFold, extra: dict | None = None) -> None:
    """``folds/SUBJECT.json``: ``subject``, ``micro_threshold``, ``macro_threshold``,
    ``train_f1``, ``intervals`` (video → list of ``{onset, offset, kind, apex, score}``) and
    ``extra``'s fields."""
    record = {"subject": fold.subject, "micro_threshold": fold.micro,
              "macro_threshold": fold.macro, "train_f1": fold.train_f1,
              "intervals": {v: [asdict(s) for s in found] for v, found in fold.spotted.items()},
              **(extra or {})}
    atomic_write(path, lambda p: p.write_text(json.dumps(record)))


def read_fold(path: Path) -> SpotFold:
    record = json.loads(Path(path).read_text())
    spotted = {v: [SpottedInterval(**s) for s in found]
               for v, found in record["intervals"].items()}
    return SpotFold(record["subject"], record["micro_threshold"], record["macro_threshold"],
                    record["train_f1"], spotted)
