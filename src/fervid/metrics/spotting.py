"""The MEGC spotting metric: spotted intervals against the coded ones of long videos.

A spotted interval is a true positive when its intersection over union with a ground-truth
interval of the same video and the same kind (micro or macro) is at least 0.5; each
ground-truth interval is matched at most once, so a second detection of one expression is a
false positive. Intervals are inclusive frame ranges, as the releases code them, so
``IoU = (min(off) − max(on) + 1) / (max(off) − min(on) + 1)``.

TP, FP and FN are summed over all videos, for micro and for macro; ``overall`` sums both.
``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``, ``F1 = 2TP / (2TP + FP + FN)``
(0 where the denominator is 0).

Matching order: within a video and kind, spotted intervals are taken by score, highest first
(ties in the order given), and each takes the unmatched ground-truth interval of largest IoU.
MEGC's own evaluation (the ``MeanAveragePrecision2d`` adaptation in
genbing99/MTSN-Spot-ME-MaE, commit 42c4c358) takes them in the order given and does not mark
a ground-truth interval as matched; ``tests/test_spotting_metric.py`` checks that both give the
same counts when no expression is spotted twice, and shows where they part.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from fervid.datasets.long_videos import KINDS, GroundTruthInterval
from fervid.errors import OptionError

#: MEGC's IoU threshold.
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class SpottedInterval:
    """One interval a spotter reports (inclusive frame numbers of the video)."""

    onset: int
    offset: int
    kind: str
    apex: int | None = None
    score: float = 1.0


@dataclass(frozen=True)
class SpottingCounts:
    """TP, FP and FN of one kind (or both), with the scores they give."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    def __add__(self, other: SpottingCounts) -> SpottingCounts:
        return SpottingCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        den = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / den if den else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "precision": self.precision, "recall": self.recall,
                "f1": self.f1}


@dataclass(frozen=True)
class SpottingResult:
    """Counts per kind and overall; ``matches``: video -> (spotted index, truth index) pairs,
    indices into the lists passed in."""

    micro: SpottingCounts
    macro: SpottingCounts
    matches: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    @property
    def overall(self) -> SpottingCounts:
        return self.micro + self.macro

    def to_dict(self) -> dict:
        return {"micro": self.micro.to_dict(), "macro": self.macro.to_dict(),
                "overall": self.overall.to_dict()}


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """IoU of two inclusive frame ranges ``(onset, offset)``."""
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    return inter / (max(a[1], b[1]) - min(a[0], b[0]) + 1)


def match_video(spotted: Sequence[SpottedInterval], truth: Sequence[tuple[int, int]],
                iou_threshold: float = IOU_THRESHOLD) -> list[tuple[int, int]]:
    """One-to-one matches ``(spotted index, truth index)`` of one video and kind.

    ``truth``: the ground-truth ``(onset, end)`` ranges. Spotted intervals go by score,
    highest first (stable), each to the unmatched truth of largest IoU ≥ ``iou_threshold``
    (the earlier on ties).
    """
    order = sorted(range(len(spotted)), key=lambda i: -spotted[i].score)
    free = set(range(len(truth)))
    matches = []
    for i in order:
        span = (spotted[i].onset, spotted[i].offset)
        best, best_iou = None, iou_threshold
        for j in sorted(free):
            iou = interval_iou(span, truth[j])
            if iou >= best_iou and (best is None or iou > best_iou):
                best, best_iou = j, iou
        if best is not None:
            free.discard(best)
            matches.append((i, best))
    return sorted(matches)


def spotting_scores(spotted: Mapping[str, Sequence[SpottedInterval]],
                    truth: Mapping[str, Sequence[GroundTruthInterval]], *,
                    n_frames: Mapping[str, int | None] | None = None,
                    iou_threshold: float = IOU_THRESHOLD) -> SpottingResult:
    """TP, FP and FN summed over videos, per kind, under the MEGC rule.

    Parameters
    ----------
    spotted : mapping
        Video id -> its spotted intervals (a video absent here spotted nothing).
    truth : mapping
        Video id -> its ground-truth intervals (a video absent here has none: all its
        spotted intervals are false positives).
    n_frames : mapping, optional
        Video id -> frame count, to end an interval whose offset is not coded
        (:meth:`GroundTruthInterval.end`).
    iou_threshold : float
        0.5 under MEGC.

    Returns
    -------
    SpottingResult

    Raises
    ------
    OptionError
        A spotted interval of another kind than micro or macro, or one that ends before it
        starts.
    """
    for video, found in spotted.items():
        bad = [s for s in found if s.kind not in KINDS or s.offset < s.onset]
        if bad:
            raise OptionError(f"video {video}: spotted interval {bad[0]} needs kind micro or "
                              f"macro and onset <= offset")
    counts = {k: SpottingCounts() for k in KINDS}
    matches: dict[str, list[tuple[int, int]]] = {}
    for video in dict.fromkeys([*truth, *spotted]):
        found, coded = list(spotted.get(video, ())), list(truth.get(video, ()))
        frames = (n_frames or {}).get(video)
        for kind in KINDS:
            mine = [i for i, s in enumerate(found) if s.kind == kind]
            theirs = [j for j, g in enumerate(coded) if g.kind == kind]
            pairs = match_video([found[i] for i in mine],
                                [(coded[j].onset, coded[j].end(frames)) for j in theirs],
                                iou_threshold)
            matches.setdefault(video, []).extend((mine[a], theirs[b]) for a, b in pairs)
            counts[kind] += SpottingCounts(len(pairs), len(mine) - len(pairs),
                                           len(theirs) - len(pairs))
        matches[video].sort()
    return SpottingResult(counts["micro"], counts["macro"], matches)
