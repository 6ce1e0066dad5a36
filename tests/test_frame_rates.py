"""Clips filmed at different frame rates (DFME: 200, 300 and 500 fps) are sampled in time:
every clip representation picks frames by position within onset..offset, so one expression
filmed at two rates gives the same instants, to within one frame of the slower film."""

from __future__ import annotations

import numpy as np
import pytest

from fervid.representation.dssi import dssi_indices
from fervid.representation.temporal_sampling import sample_indices


def _same_expression(fps: float) -> tuple[int, int, int, int]:
    """(frames, onset, apex, offset) of a 0.4 s expression with its apex at 0.15 s, filmed
    from 0.05 s before the onset."""
    def at(seconds: float) -> int:
        return int(round(seconds * fps))
    return at(0.5) + 1, at(0.05), at(0.2), at(0.45)


@pytest.mark.parametrize("protocol", ["phase", "uniform"])
@pytest.mark.parametrize("fast", [300.0, 500.0])
def test_dssi_picks_the_same_instants_at_any_frame_rate(protocol, fast):
    slow = 200.0
    times = []
    for fps in (slow, fast):
        n, onset, apex, offset = _same_expression(fps)
        local, whole = dssi_indices(n, onset, apex, offset, protocol=protocol)
        times.append((np.concatenate(local) / fps, whole / fps))
    for a, b in zip(times[0], times[1], strict=True):
        assert np.abs(a - b).max() <= 1 / slow


@pytest.mark.parametrize("mode", ["uniform", "tim"])
def test_clip_sampling_picks_the_same_instants_at_any_frame_rate(mode):
    slow, fast = 200.0, 500.0
    picks = [sample_indices(_same_expression(fps)[0], 16, mode) / fps for fps in (slow, fast)]
    assert np.abs(picks[0] - picks[1]).max() <= 1 / slow
