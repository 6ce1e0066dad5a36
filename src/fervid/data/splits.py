"""Which samples of a table train and which are tested: the folds ``fervid`` itself runs.

Like scikit-learn's ``LeaveOneGroupOut().split``, the iterators here yield folds of indices
into the table and know nothing of models. They are the split strategies of
:mod:`fervid.protocol.splits`: each :class:`~fervid.protocol.splits.Fold` has ``number``,
``name``, ``train`` and ``test`` (int64 tensors), and the fold's ``seed``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from fervid.errors import OptionError
from fervid.protocol.folds import LosoFolds
from fervid.protocol.splits import Fold, loso_folds, release_folds
from fervid.samples import SampleTable


def loso_splits(table: SampleTable, group: str = "subject", seed: int = 0) -> Iterator[Fold]:
    """Leave one group out, the folds of ``fervid loso``, in the same order.

    Parameters
    ----------
    table
        The samples (pass ``table.labelled()`` for the ones a classifier can learn).
    group
        ``subject``: one fold per subject (``dataset/subject``); ``dataset``: one per dataset
        (MEGC2019's hold-out-database protocol).

    Raises
    ------
    ConfigError
        An unknown ``group`` or fewer than two groups (a one-line
        :class:`~fervid.errors.FervidError`).
    """
    yield from loso_folds(LosoFolds.from_table(table, group), seed)


def kfold_splits(table: SampleTable, folds: Mapping[str, int] | Sequence[int], seed: int = 0
                 ) -> Iterator[Fold]:
    """Predefined folds: fold k tests the samples numbered k and trains on all the others.

    A :class:`~fervid.samples.SampleTable` records no fold of its own (a release's ``split``
    is train / test, not k folds), so the folds are given:

    Parameters
    ----------
    table
        The samples.
    folds
        The fold of every subject (a mapping ``subject -> fold``, e.g.
        :func:`fervid.datasets.ckplus_subject_folds` for CK+), or of every sample (a sequence
        as long as the table).

    Yields
    ------
    Fold
        In increasing fold number, named ``fold K``.

    Raises
    ------
    OptionError
        A subject without a fold, a sequence of the wrong length, or fewer than two folds.
    """
    if isinstance(folds, Mapping):
        missing = sorted({s.subject for s in table} - set(folds))
        if missing:
            raise OptionError(f"kfold_splits: no fold for subject(s) {', '.join(missing[:10])}")
        numbers = np.array([folds[s.subject] for s in table], dtype=np.int64)
    else:
        numbers = np.asarray(folds, dtype=np.int64).reshape(-1)
        if len(numbers) != len(table):
            raise OptionError(f"kfold_splits: {len(numbers)} fold numbers for a table of "
                              f"{len(table)} samples")
    distinct = np.unique(numbers)
    if len(distinct) < 2:
        raise OptionError(f"kfold_splits needs at least two folds, got {distinct.tolist()}")
    yield from release_folds({k: (np.flatnonzero(numbers != k), np.flatnonzero(numbers == k))
                              for k in distinct.tolist()}, seed)
