"""Protocols as split strategies: each yields :class:`Fold` s and knows nothing of models.

Like scikit-learn's ``LeaveOneGroupOut().split`` or ``PredefinedSplit``, a strategy turns the
samples a protocol runs on into folds of indices; one fold runner (:mod:`fervid.protocol.
fold_runner`) trains each through the one trainer and writes it through one writer.

- :func:`loso_folds`: leave one subject (or one dataset) out (``fervid loso``);
- :func:`release_folds`: a release's own k folds (DFEW's five, ``fervid kfold``);
- :func:`holdout_fold`: a release's train / validation / test split, with a validation carved
  from the training samples when it has none (``fervid fit``);
- :func:`cross_dataset_fold`: train on some datasets of a table, test on the others.

:func:`carve_validation` takes a validation share out of a fold's training samples (whole
subjects, seeded by the fold's seed), never out of its test samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from fervid.config import ConfigError
from fervid.protocol.folds import LosoFolds
from fervid.protocol.selection import inner_validation_subjects
from fervid.samples import SampleTable, subject_key
from fervid.training.setup import fold_seed


@dataclass(frozen=True)
class Fold:
    """One fold of a protocol.

    Attributes
    ----------
    number
        The fold's number in its file names (LOSO 0.., DFEW 1..5, hold-out 0).
    name
        What it holds out (``casme2/01``, ``samm``, ``fold 3``, ``test``).
    train, test
        Indices ``(n_train,)``, ``(n_test,)`` int64 into the protocol's samples, in order.
    seed
        The fold's seed (the trainer's seeding rule), from the run seed and the fold number.
    validation
        Indices ``(n_val,)`` of a validation split, all outside ``test`` (carved from the
        training samples or given by the release), or None.
    validation_source
        How the validation split was made: ``release``, ``carved``, ``carved by subject`` or
        ``none``.
    """

    number: int
    name: str
    train: torch.Tensor
    test: torch.Tensor
    seed: int
    validation: torch.Tensor | None = None
    validation_source: str = "none"


def loso_folds(folds: LosoFolds, seed: int, chosen: Iterable[int] | None = None
               ) -> list[Fold]:
    """The leave-one-group-out ``folds`` (all, or the numbers in ``chosen``) as
    :class:`Fold` s, each seeded from (``seed``, its number)."""
    numbers = range(len(folds)) if chosen is None else chosen
    return [Fold(k, folds.subjects[k], folds.train_index(k), folds.test_index(k),
                 fold_seed(seed, k)) for k in numbers]


def release_folds(fold_members: dict[int, tuple[Sequence[int], Sequence[int]]], seed: int
                  ) -> list[Fold]:
    """A release's predefined folds: ``{number: (train indices, test indices)}``, each list
    into the protocol's samples (DFEW: its distinct clips)."""
    return [Fold(k, f"fold {k}", torch.as_tensor(list(train), dtype=torch.long),
                 torch.as_tensor(list(test), dtype=torch.long), fold_seed(seed, k))
            for k, (train, test) in sorted(fold_members.items())]


def holdout_fold(splits: Sequence[str], labels: np.ndarray, fraction: float, seed: int,
                 subjects: Sequence[str] | None = None) -> Fold:
    """The hold-out fold of a release whose samples are named ``train``, ``validation`` or
    ``test`` (``""`` reads as ``train``): a validation split carved from the training samples
    when the release has none and ``fraction > 0``, by whole subjects when ``subjects`` names
    them (no person in both parts), else stratified per class; seeded by ``seed``."""
    names = np.array([s or "train" for s in splits])
    index = {k: np.flatnonzero(names == k) for k in ("train", "validation", "test")}
    source = "release" if len(index["validation"]) else "none"
    if not len(index["validation"]) and fraction > 0 and len(index["train"]) > 1:
        groups = None if subjects is None else np.array(subjects)
        index["train"], index["validation"], source = _carve(index["train"], labels, fraction,
                                                             seed, groups)
    tensors = {k: torch.from_numpy(v.astype(np.int64)) for k, v in index.items()}
    return Fold(0, "test", tensors["train"], tensors["test"], seed, tensors["validation"],
                source)


def _carve(train: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
           groups: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``train`` split into (kept, validation, how): whole groups when every sample has one
    and there are at least two (stratified by label as far as the groups allow), else per
    class (plain when too small to stratify); seeded by ``seed``, both parts sorted."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    groups = None if groups is None else groups[train]
    if groups is not None and len(set(groups)) >= 2 and all(groups):
        n_splits = min(max(2, round(1 / fraction)), len(set(groups)))
        folds = StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed)
        fit_part, val_part = next(folds.split(train, labels[train], groups))
        kept, val, source = train[fit_part], train[val_part], "carved by subject"
    else:
        n_val = int(np.ceil(fraction * len(train)))
        k = len(np.unique(labels[train]))
        counts = np.bincount(labels[train])
        stratified = (counts[counts > 0].min() >= 2 and n_val >= k and len(train) - n_val >= k)
        kept, val = train_test_split(train, test_size=n_val, random_state=seed,
                                     stratify=labels[train] if stratified else None)
        source = "carved"
    return np.sort(kept), np.sort(val), source


def carve_samples(fold: Fold, labels: np.ndarray, fraction: float) -> Fold:
    """``fold`` with a validation share of its training samples (stratified by ``labels``,
    one per sample of the protocol, seeded by the fold's seed) moved into ``validation``: for
    releases that name no subjects (DFEW). The test samples are never touched."""
    kept, val, source = _carve(fold.train.numpy(), np.asarray(labels), fraction, fold.seed,
                               None)
    return replace(fold, train=torch.from_numpy(kept.astype(np.int64)),
                   validation=torch.from_numpy(val.astype(np.int64)), validation_source=source)


def cross_dataset_fold(table: SampleTable, train: Sequence[str], test: Sequence[str],
                       seed: int) -> Fold:
    """Train on the samples of the datasets ``train``, test on those of ``test``.

    Raises
    ------
    ConfigError
        A dataset on both sides, or a side with no sample in ``table``.
    """
    both = sorted(set(train) & set(test))
    if both:
        raise ConfigError(f"cross-dataset: {', '.join(both)} on both the training and the test "
                          "side")
    datasets = [s.dataset for s in table]
    sides = {}
    for side, names in (("training", train), ("test", test)):
        index = [i for i, d in enumerate(datasets) if d in set(names)]
        if not index:
            raise ConfigError(f"cross-dataset: no {side} sample ({', '.join(names)}); the "
                              f"table holds {', '.join(sorted(set(datasets)))}")
        sides[side] = torch.tensor(index, dtype=torch.long)
    return Fold(0, "+".join(test), sides["training"], sides["test"], seed)


def carve_validation(fold: Fold, table: SampleTable, fraction: float) -> Fold:
    """``fold`` with a validation share of its training subjects (``round(fraction · n)``,
    drawn with the fold's seed) moved out of ``train`` into ``validation``; the test samples
    are never touched. A fold whose training samples hold one subject is returned unchanged."""
    train = fold.train.tolist()
    subjects = [subject_key(table[i]) for i in train]
    held = set(inner_validation_subjects(subjects, fraction, fold.seed))
    if not held:
        return fold
    is_val = torch.tensor([s in held for s in subjects])
    return replace(fold, train=fold.train[~is_val], validation=fold.train[is_val],
                   validation_source="carved by subject")


def held_subjects(fold: Fold, table: SampleTable) -> list[str]:
    """The subjects of ``fold``'s validation split, sorted (``selection.json``)."""
    if fold.validation is None:
        return []
    return sorted({subject_key(table[i]) for i in fold.validation.tolist()})
