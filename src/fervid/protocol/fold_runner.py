"""The one fold runner: every protocol's folds trained in turn and written by one writer.

A protocol gives its folds (:mod:`fervid.protocol.splits`) and a function that trains and
scores one fold; the runner skips the folds already finished, shows progress and writes each
finished fold through :meth:`fervid.runs.store.RunStore.write_fold` (model, selection and trace
first, the fold's predictions last: a fold counts as finished once its CSV exists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pandas as pd

from fervid.progress import ProgressLike
from fervid.protocol.splits import Fold
from fervid.runs.store import RunStore


@dataclass(frozen=True)
class FoldOutcome:
    """What one fold made: its fold-file rows, and optionally its model (a checkpoint
    payload), its ``selection.json`` record and its trace rows."""

    predictions: pd.DataFrame
    model: dict | None = None
    selection: dict | None = None
    trace: pd.DataFrame | None = None


def run_folds(folds: Sequence[Fold], store: RunStore,
              train: Callable[[Fold], FoldOutcome | None], progress: ProgressLike, *,
              writes: bool = True,
              state_names: Callable[[Fold], Sequence[str]] | None = None) -> None:
    """Train ``train(fold)`` for each unfinished fold of ``folds`` and write what it returns.

    ``writes``: whether this process writes (rank 0 of a run whose ranks share each fold; a
    ``train`` returning None writes nothing either). ``state_names(fold)``: the fold's resume
    states in ``checkpoints/``, removed once the fold is written (and when a kill after the
    fold file left them behind).
    """
    task = progress.add_task("folds", total=len(folds), status="")
    for fold in folds:
        if not store.fold_path(fold.number).exists():
            outcome = train(fold)
            if writes and outcome is not None:
                store.write_fold(fold.number, outcome.predictions, model=outcome.model,
                                 selection=outcome.selection, trace=outcome.trace)
        for name in state_names(fold) if writes and state_names is not None else ():
            store.checkpoint_path(name).unlink(missing_ok=True)
        progress.update(task, advance=1, status=fold.name)
    progress.remove_task(task)
