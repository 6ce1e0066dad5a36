"""Leave-one-subject-out for a spotter: its thresholds chosen on the training subjects only.

A spotter's signals (one ``(T,)`` score per kind and frame) do not depend on its thresholds, so
each video's signals are computed once and every fold only re-reads them: for the held-out
subject, the (micro, macro) thresholds of the grid that give the best overall F1 on the other
subjects' videos (TP, FP, FN summed over them; ties to the earlier grid entry), then its
intervals with those thresholds. The held-out subject's ground truth is read only to score it.

Two spotters use this: the training-free one (:mod:`fervid.predict.spotting`, thresholds
``z_micro``, ``z_macro`` in robust standard deviations, :data:`Z_GRID`) and the learned one
(:mod:`fervid.predict.spot_learned`, thresholds on its per-frame score). A spotter is told by
an :class:`IntervalFinder`: the settings' two threshold fields and the function turning
signals into intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fervid.datasets.long_videos import GroundTruthInterval
from fervid.errors import OptionError
from fervid.metrics.spotting import SpottedInterval, SpottingResult, spotting_scores
from fervid.predict.spotting import SpotSettings, find_intervals

#: The default grid of robust z thresholds, for micro and for macro.
Z_GRID = (3.0, 4.0, 5.0, 6.0, 8.0, 10.0)


@dataclass(frozen=True)
class VideoSignals:
    """One video's spotter signals (``micro``, ``macro``: ``(T,)``) with its subject, frame
    rate and ground truth."""

    subject: str
    fps: float
    signals: Mapping[str, np.ndarray]
    truth: Sequence[GroundTruthInterval]


@dataclass(frozen=True)
class IntervalFinder:
    """How a spotter turns signals into intervals: ``find(signals, fps, settings)`` returns
    ``(intervals, thresholds)`` like :func:`find_intervals`; ``fields`` name the settings'
    micro and macro thresholds (a frozen dataclass, changed with :func:`dataclasses.replace`)."""

    find: Callable[[Mapping[str, np.ndarray], float, Any], tuple[list[SpottedInterval], dict]]
    fields: tuple[str, str] = ("z_micro", "z_macro")


#: The training-free spotter's.
FLOW_FINDER = IntervalFinder(find_intervals)


@dataclass(frozen=True)
class SpotFold:
    """One held-out subject: the (micro, macro) thresholds chosen, their training F1, and its
    intervals (video → list)."""

    subject: str
    micro: float
    macro: float
    train_f1: float
    spotted: dict[str, list[SpottedInterval]]


def spot_videos(videos: Mapping[str, VideoSignals], settings,
                finder: IntervalFinder = FLOW_FINDER) -> dict[str, list[SpottedInterval]]:
    """Each video's intervals with ``settings``."""
    return {name: finder.find(v.signals, v.fps, settings)[0] for name, v in videos.items()}


def choose_thresholds(videos: Mapping[str, VideoSignals], settings=SpotSettings(),
                      grid: Sequence[float] = Z_GRID, finder: IntervalFinder = FLOW_FINDER):
    """The settings with the (micro, macro) thresholds of ``grid`` × ``grid`` that give the
    best overall F1 on ``videos``, and that F1."""
    truth = {name: v.truth for name, v in videos.items()}
    micro_field, macro_field = finder.fields
    best, best_f1 = None, -1.0
    for micro in grid:
        for macro in grid:
            candidate = replace(settings, **{micro_field: micro, macro_field: macro})
            f1 = spotting_scores(spot_videos(videos, candidate, finder), truth).overall.f1
            if f1 > best_f1:
                best, best_f1 = candidate, f1
    return best, best_f1


def loso_subjects(videos: Mapping[str, VideoSignals]) -> list[str]:
    """The subjects in order of first appearance.

    Raises
    ------
    OptionError
        Fewer than two subjects.
    """
    subjects = list(dict.fromkeys(v.subject for v in videos.values()))
    if len(subjects) < 2:
        raise OptionError(f"leave-one-subject-out needs two subjects or more, got "
                          f"{len(subjects)}")
    return subjects


def spot_fold(subject: str, choose_on: Mapping[str, VideoSignals],
              test: Mapping[str, VideoSignals], settings, grid: Sequence[float],
              finder: IntervalFinder = FLOW_FINDER) -> SpotFold:
    """Thresholds chosen on ``choose_on`` (training subjects' videos only), then ``test``
    spotted with them; ``test``'s truth is not read."""
    chosen, f1 = choose_thresholds(choose_on, settings, grid, finder)
    micro_field, macro_field = finder.fields
    return SpotFold(subject, getattr(chosen, micro_field), getattr(chosen, macro_field), f1,
                    spot_videos(test, chosen, finder))


def spot_loso(videos: Mapping[str, VideoSignals], settings=SpotSettings(),
              grid: Sequence[float] = Z_GRID, finder: IntervalFinder = FLOW_FINDER,
              ) -> tuple[list[SpotFold], SpottingResult]:
    """Every subject held out in turn; the counts summed over all held-out videos.

    Raises
    ------
    OptionError
        Fewer than two subjects.
    """
    folds, spotted = [], {}
    for subject in loso_subjects(videos):
        train = {n: v for n, v in videos.items() if v.subject != subject}
        test = {n: v for n, v in videos.items() if v.subject == subject}
        fold = spot_fold(subject, train, test, settings, grid, finder)
        folds.append(fold)
        spotted.update(fold.spotted)
    return folds, spotting_scores(spotted, {n: v.truth for n, v in videos.items()})
