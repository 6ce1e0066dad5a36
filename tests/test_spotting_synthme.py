"""SynthME long videos and the training-free spotter (fervid.predict.spotting)."""

from __future__ import annotations

import numpy as np
import pytest

from fervid.datasets.casme_sq_long import read_casme_sq_intervals
from fervid.errors import OptionError
from fervid.metrics.spotting import spotting_scores
from fervid.predict.spotting import SpotSettings, find_intervals, spot_frames
from fervid.synth.long_video import LongVideoSpec, make_synthme_long

SPEC = LongVideoSpec(seconds=16, fps=30, size=128, n_micro=2, n_macro=1)


@pytest.fixture(scope="module")
def long_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthme_long")
    sheet = make_synthme_long(root, n_subjects=2, spec=SPEC, seed=11)
    return read_casme_sq_intervals(sheet, root)


def test_generated_videos_read_back_with_the_release_reader(long_videos):
    assert long_videos.counts() == {"intervals": 6, "subjects": 2, "videos": 2, "micro": 4,
                                    "macro": 2, "uncoded_offsets": 0, "uncoded_apexes": 0}
    for video in long_videos.videos:
        assert video.n_frames == 480 and video.fps == 30.0
        for i in video.intervals:
            seconds = (i.offset - i.onset + 1) / 30
            assert i.onset <= i.apex <= i.offset
            assert seconds <= 0.5 if i.kind == "micro" else seconds >= 0.75


def test_the_spotter_finds_the_expressions_of_generated_videos(long_videos):
    spotted = {}
    for video in long_videos.videos:
        result = spot_frames(video.folder, fps=30.0)
        assert result.face.all() and result.n_frames == 480
        spotted[video.video] = result.intervals
    scores = spotting_scores(spotted, {v.video: v.intervals for v in long_videos.videos})
    assert scores.micro.tp >= 2 and scores.macro.tp >= 1, scores.to_dict()
    assert scores.overall.f1 >= 0.5, scores.to_dict()


def test_the_spotter_fills_the_tracker_it_is_given(long_videos):
    # An empty FaceTracker has len 0, so it is false: the spotter must still use it, not
    # its own, or the caller's track (spot, then recognise) comes back empty.
    from fervid.faces.tracking import FaceTracker

    video = long_videos.videos[0]
    tracker = FaceTracker(detect_every=5, refine=False)
    assert not tracker
    spot_frames(video.folder, fps=30.0, tracker=tracker)
    assert len(tracker) == 480


def test_a_still_face_with_blinks_and_noise_has_no_micro_expression(tmp_path):
    sheet = make_synthme_long(tmp_path, n_subjects=1, spec=LongVideoSpec(
        seconds=12, size=128, n_micro=0, n_macro=0, head_shifts_per_minute=0), seed=3)
    video = read_casme_sq_intervals(sheet, tmp_path) if sheet.read_text().strip() else None
    assert video is None  # the sheet lists no expression
    folder = next((tmp_path / "rawpic" / "s15").iterdir())
    result = spot_frames(folder, fps=30.0)
    assert len(result.intervals) <= 1, result.intervals


def test_intervals_from_signals_micro_inside_macro_dropped():
    signal = np.zeros(300, np.float32)
    signal += np.random.default_rng(0).normal(0, 0.01, 300).astype(np.float32)
    macro = signal.copy()
    signal[50:56] += np.hanning(6) * 2           # a micro movement
    macro[150:200] += np.hanning(50) * 2          # a macro movement
    signal[170:176] += np.hanning(6) * 2          # a fast part of it
    found, _ = find_intervals({"micro": signal, "macro": macro}, 30.0, SpotSettings())
    kinds = [(s.kind, s.onset <= s.apex <= s.offset) for s in found]
    assert kinds == [("micro", True), ("macro", True)]
    assert 45 <= found[0].apex <= 57 and 160 <= found[1].apex <= 190


def test_too_many_expressions_for_the_video_length_is_an_option_error(tmp_path):
    with pytest.raises(OptionError, match="do not fit"):
        make_synthme_long(tmp_path, spec=LongVideoSpec(seconds=4, n_micro=5, n_macro=3))
