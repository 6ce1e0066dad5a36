"""Leave-one-subject-out for the training-free spotter: its thresholds chosen on the training
subjects only.

The spotter's signals do not depend on its thresholds, so each video's signals are computed
once (:func:`fervid.predict.spotting.spot_frames`) and every fold only re-reads them: for the
held-out subject, the thresholds ``(z_micro, z_macro)`` of the grid that give the best
overall F1 on the other subjects' videos (TP, FP, FN summed over them; ties to the earlier
grid entry), then its intervals with those thresholds. The held-out subject's ground truth is
read only to score it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

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
class SpotFold:
    """One held-out subject: the thresholds chosen, their training F1, and its intervals."""

    subject: str
    z_micro: float
    z_macro: float
    train_f1: float
    spotted: dict[str, list[SpottedInterval]]


def _spot(videos: Mapping[str, VideoSignals], settings: SpotSettings) -> dict:
    return {name: find_intervals(v.signals, v.fps, settings)[0] for name, v in videos.items()}


def choose_thresholds(videos: Mapping[str, VideoSignals], settings: SpotSettings,
                      grid: Sequence[float] = Z_GRID) -> tuple[SpotSettings, float]:
    """The settings with the ``(z_micro, z_macro)`` of ``grid`` × ``grid`` that give the best
    overall F1 on ``videos``, and that F1."""
    truth = {name: v.truth for name, v in videos.items()}
    best, best_f1 = None, -1.0
    for z_micro in grid:
        for z_macro in grid:
            candidate = replace(settings, z_micro=z_micro, z_macro=z_macro)
            f1 = spotting_scores(_spot(videos, candidate), truth).overall.f1
            if f1 > best_f1:
                best, best_f1 = candidate, f1
    return best, best_f1


def spot_loso(videos: Mapping[str, VideoSignals], settings: SpotSettings = SpotSettings(),
              grid: Sequence[float] = Z_GRID) -> tuple[list[SpotFold], SpottingResult]:
    """Every subject held out in turn; the counts summed over all held-out videos.

    Raises
    ------
    OptionError
        Fewer than two subjects.
    """
    subjects = list(dict.fromkeys(v.subject for v in videos.values()))
    if len(subjects) < 2:
        raise OptionError(f"leave-one-subject-out needs two subjects or more, got "
                          f"{len(subjects)}")
    folds, spotted = [], {}
    for subject in subjects:
        train = {n: v for n, v in videos.items() if v.subject != subject}
        test = {n: v for n, v in videos.items() if v.subject == subject}
        chosen, f1 = choose_thresholds(train, settings, grid)
        found = _spot(test, chosen)
        folds.append(SpotFold(subject, chosen.z_micro, chosen.z_macro, f1, found))
        spotted.update(found)
    return folds, spotting_scores(spotted, {n: v.truth for n, v in videos.items()})
