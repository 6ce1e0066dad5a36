"""Leave-one-subject-out for the training-free spotter: thresholds from training subjects."""

from __future__ import annotations

import numpy as np
import pytest

from fervid.datasets.long_videos import GroundTruthInterval as G
from fervid.errors import OptionError
from fervid.predict.spot_loso import VideoSignals, choose_thresholds, spot_loso
from fervid.predict.spotting import SpotSettings


def _video(subject: str, seed: int, spikes: float = 0.0) -> VideoSignals:
    """A 30 s video at 30 fps: three micro bumps in noise (and random spikes, ``spikes``
    high, that a low threshold mistakes for expressions)."""
    rng = np.random.default_rng(seed)
    micro = np.abs(rng.normal(0, 0.05, 900)).astype(np.float32)
    truth = []
    for onset in (100, 400, 700):
        micro[onset:onset + 9] += np.hanning(9).astype(np.float32) * 1.5
        truth.append(G(onset + 1, onset + 5, onset + 9, "micro"))
    for at in rng.integers(200, 880, 4):
        micro[at:at + 5] += np.hanning(5).astype(np.float32) * spikes
    return VideoSignals(subject, 30.0, {"micro": micro, "macro": np.zeros(900, np.float32)},
                        truth)


def test_each_subject_is_spotted_with_thresholds_chosen_without_it():
    videos = {f"v{i}": _video(f"s{i // 2}", i, spikes=0.3) for i in range(6)}
    folds, result = spot_loso(videos)
    assert [f.subject for f in folds] == ["s0", "s1", "s2"]
    assert result.micro.tp >= 15 and result.overall.f1 > 0.8, result.to_dict()
    # The held-out subject's labels never reach its choice: wipe them, the choice stays.
    wiped = {n: (VideoSignals(v.subject, v.fps, v.signals, []) if v.subject == "s0" else v)
             for n, v in videos.items()}
    again, _ = spot_loso(wiped)
    assert (again[0].micro, again[0].macro) == (folds[0].micro, folds[0].macro)
    assert again[0].spotted == folds[0].spotted


def test_training_labels_move_the_choice():
    videos = {f"v{i}": _video("s0", i, spikes=0.3) for i in range(2)}
    chosen, f1 = choose_thresholds(videos, SpotSettings())
    # Without labels every threshold scores 0 and the grid's first is kept; with them, the
    # spikes make it choose a higher one.
    unlabelled = {n: VideoSignals(v.subject, v.fps, v.signals, []) for n, v in videos.items()}
    first, _ = choose_thresholds(unlabelled, SpotSettings())
    assert f1 >= 0.75 and (first.z_micro, first.z_macro) == (3.0, 3.0)
    assert chosen.z_micro > 3.0


def test_one_subject_is_refused():
    with pytest.raises(OptionError, match="two subjects"):
        spot_loso({"v": _video("s0", 0)})
