"""The MEGC spotting metric (fervid.metrics.spotting): hand-made cases, and the counts of a
published implementation on the same intervals."""

from __future__ import annotations

import numpy as np
import pytest

from fervid.datasets.long_videos import GroundTruthInterval as G
from fervid.errors import OptionError
from fervid.metrics.spotting import (
    SpottedInterval as S,
)
from fervid.metrics.spotting import (
    SpottingCounts,
    interval_iou,
    match_video,
    spotting_scores,
)


def test_iou_counts_frames_inclusively():
    assert interval_iou((10, 19), (10, 19)) == 1.0
    assert interval_iou((10, 19), (15, 24)) == 5 / 15
    assert interval_iou((10, 19), (20, 29)) == 0.0
    assert interval_iou((10, 10), (10, 10)) == 1.0
    # Exactly half is a hit: 10 shared frames of 20.
    assert interval_iou((0, 19), (10, 19)) == 0.5


def test_hand_made_counts_per_kind_and_overall():
    truth = {"v1": [G(100, 110, 120, "micro"), G(300, 330, 400, "macro")],
             "v2": [G(50, 55, 60, "micro"), G(500, 520, None, "macro")],
             "v3": [G(10, 12, 14, "micro")]}
    spotted = {
        "v1": [S(100, 120, "micro"),          # exact: TP
               S(290, 395, "macro"),          # IoU 96/111: TP
               S(600, 640, "macro")],         # nothing there: FP
        "v2": [S(50, 60, "macro"),            # right place, wrong kind: FP (macro), FN (micro)
               S(500, 540, "macro")],         # uncoded offset ends at 2·520 − 500 = 540: TP
        "v4": [S(1, 9, "micro")],             # a video without truth: FP
    }
    result = spotting_scores(spotted, truth)
    assert result.micro == SpottingCounts(tp=1, fp=1, fn=2)
    assert result.macro == SpottingCounts(tp=2, fp=2, fn=0)
    assert result.overall == SpottingCounts(tp=3, fp=3, fn=2)
    assert result.overall.precision == 3 / 6 and result.overall.recall == 3 / 5
    assert result.overall.f1 == pytest.approx(6 / 11)
    assert result.matches["v1"] == [(0, 0), (1, 1)] and result.matches["v2"] == [(1, 1)]


def test_each_truth_is_matched_once_and_the_higher_score_takes_it():
    truth = [(100, 120)]
    twice = [S(100, 120, "micro", score=0.2), S(101, 121, "micro", score=0.9)]
    assert match_video(twice, truth) == [(1, 0)]
    result = spotting_scores({"v": twice}, {"v": [G(100, 110, 120, "micro")]})
    assert result.micro == SpottingCounts(tp=1, fp=1, fn=0)


def test_one_spotted_interval_takes_the_truth_it_overlaps_most():
    truth = [(0, 19), (5, 24)]
    spotted = [S(4, 23, "micro", score=1.0), S(0, 18, "micro", score=0.5)]
    # The first overlaps (5, 24) more (19/21 vs 16/24), leaving (0, 19) to the second.
    assert match_video(spotted, truth) == [(0, 1), (1, 0)]


def test_no_hit_below_half_and_empty_inputs():
    assert spotting_scores({"v": [S(0, 20, "micro")]}, {"v": [G(0, 5, 9, "micro")]}).micro == \
        SpottingCounts(0, 1, 1)
    assert spotting_scores({}, {}).overall.f1 == 0.0
    assert spotting_scores({}, {"v": [G(0, 1, 2, "macro")]}).macro == SpottingCounts(0, 0, 1)


def test_a_spotted_interval_of_no_kind_is_refused():
    with pytest.raises(OptionError, match="video v: spotted interval"):
        spotting_scores({"v": [S(0, 5, "mini")]}, {})


# --- Against a published implementation --------------------------------------------------
# MEGC's spotting evaluation as genbing99/MTSN-Spot-ME-MaE ships it (SoftNet-SpotME ships a
# folder of the same name):
# `MeanAveragePrecision2d` in Utils/mean_average_precision (commit 42c4c358), called as
# `value(iou_thresholds=0.5)` whose match policy is "soft". Its rule, transcribed by hand:
#   * per video and per kind, each spotted interval is a box [onset, 0, offset, 0]; IoU with
#     every ground-truth interval of that kind, with +1 on each side's length (inclusive);
#   * spotted intervals are taken in the order they were added (its confidence sort is
#     removed); for each, the truths are sorted by IoU, and it scores tp = the number of
#     truths with IoU >= 0.5 (walking down that order until one falls below), fp = 1 when
#     there is none; no truth is ever marked as taken;
#   * TP = sum(tp), FP = sum(fp), FN = number of truths - TP.

def _reference_counts(spotted, truth):
    tp = fp = n_truth = 0
    for video in set(spotted) | set(truth):
        for kind in ("micro", "macro"):
            gts = [(g.onset, g.end()) for g in truth.get(video, []) if g.kind == kind]
            n_truth += len(gts)
            for s in (s for s in spotted.get(video, []) if s.kind == kind):
                on, off = s.onset, s.offset
                ious = []
                for g_on, g_off in gts:
                    width = max(min(off, g_off) - max(on, g_on) + 1.0, 0)
                    union = (off - on + 1.0) + (g_off - g_on + 1.0) - width
                    ious.append(width / union)
                hits = 0
                for iou in sorted(ious, reverse=True):
                    if iou < 0.5:
                        break
                    hits += 1
                tp += hits
                fp += hits == 0
    return tp, fp, n_truth - tp


def _fixed_set():
    """Three videos, both kinds, hits at IoU 1, exactly 0.5 and just under, wrong kinds;
    no expression spotted twice and no truths overlapping each other."""
    rng = np.random.default_rng(7)
    truth, spotted = {}, {}
    for v in range(3):
        gts, found = [], []
        for k in range(8):
            kind = "micro" if k % 2 else "macro"
            length = int(rng.integers(8, 15)) if kind == "micro" else int(rng.integers(30, 80))
            onset = 200 * k + 10
            gts.append(G(onset, onset + length // 2, onset + length - 1, kind))
            case = (k + v) % 4
            if case == 0:    # exact
                found.append(S(onset, onset + length - 1, kind))
            elif case == 1:  # shifted by a third: IoU 0.5 when 3 divides length, else above
                shift = length // 3
                found.append(S(onset + shift, onset + length - 1 + shift, kind))
            elif case == 2:  # twice as long: IoU 0.5 exactly
                found.append(S(onset, onset + 2 * length - 1, kind))
            else:            # wrong kind: a false positive and a miss
                found.append(S(onset, onset + length - 1, "micro" if kind == "macro" else
                               "macro"))
            found.append(S(onset + 120, onset + 130, kind))  # in no expression
        truth[f"v{v}"], spotted[f"v{v}"] = gts, found
    return spotted, truth


def test_counts_equal_the_published_implementation_on_a_fixed_set():
    spotted, truth = _fixed_set()
    result = spotting_scores(spotted, truth).overall
    assert (result.tp, result.fp, result.fn) == _reference_counts(spotted, truth)
    assert result.tp > 0 and result.fp > 0 and result.fn > 0


def test_where_the_published_implementation_counts_one_expression_twice():
    # Two detections of one expression: MEGC's rule counts each truth once (1 TP, 1 FP); the
    # published code never marks a truth as taken and counts 2 TP (and FN 1 - 2 = -1).
    spotted = {"v": [S(100, 119, "micro"), S(101, 120, "micro")]}
    truth = {"v": [G(100, 110, 119, "micro")]}
    ours = spotting_scores(spotted, truth).micro
    assert (ours.tp, ours.fp, ours.fn) == (1, 1, 0)
    assert _reference_counts(spotted, truth) == (2, 0, -1)
