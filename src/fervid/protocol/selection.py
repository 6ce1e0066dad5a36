"""Honest model selection inside a LOSO fold (``train.select: inner_val``).

Everything here takes the fold's *training* samples only: the held-out subject's inputs and
labels are never passed in, so they cannot choose anything. A fold's training subjects are
split leave-subjects-out (seeded by the run's seed and the fold), and a choice is scored by the
mean of UF1 and UAR over the validation subjects' pooled predictions (both weigh classes
equally, as the composite figures do).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fervid.metrics import score


def selection_score(labels: Sequence[int], preds: Sequence[int], classes: Sequence[str]
                    ) -> float:
    """``(UF1 + UAR) / 2`` of integer predictions: what ``inner_val`` maximises."""
    s = score(labels, preds, classes)
    return (s.uf1 + s.uar) / 2


def inner_validation_subjects(groups: Sequence[str], fraction: float, seed: int) -> list[str]:
    """The training subjects held out for validation: ``round(fraction · n)`` of the distinct
    ``groups`` (at least one, at most n - 1), drawn with ``seed`` from their sorted names."""
    names = sorted(set(groups))
    if len(names) < 2:
        return []
    k = min(max(1, round(fraction * len(names))), len(names) - 1)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(names, size=k, replace=False).tolist())


def inner_group_folds(groups: Sequence[str], fraction: float, seed: int
                      ) -> list[np.ndarray]:
    """Leave-subjects-out inner folds over ``groups`` (one name per training sample):
    ``round(1 / fraction)`` folds (at least 2, at most the number of subjects), subjects
    dealt to them in a seeded order. Returns each inner fold's validation mask ``(n,)``."""
    groups = np.asarray(groups)
    names = sorted(set(groups.tolist()))
    k = min(max(2, round(1 / fraction)), len(names))
    order = np.random.default_rng(seed).permutation(len(names))
    fold_of = {names[j]: i % k for i, j in enumerate(order)}
    which = np.array([fold_of[g] for g in groups.tolist()])
    return [which == i for i in range(k)]


def best_choice(scores: dict, order: Sequence) -> object:
    """The choice of highest score; ties go to the first in ``order`` (the simplest model:
    the smallest C, the fewest epochs)."""
    best = max(scores[c] for c in order)
    return next(c for c in order if scores[c] == best)
