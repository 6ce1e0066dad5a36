"""Spot, then recognise, on SynthME long videos: how many micro-expressions are spotted (MEGC
rule) and how many of those the recogniser names as coded.

    python benchmarks/spot_recognise_synthme.py --checkpoint runs/demo/smastn/models/fold_000.pt

The checkpoint: any recogniser of the CASME II 5-class protocol, e.g. a fold model of
``fervid demo`` (SMA-STN trained on SynthME clips of other, generated faces). Generates one
long video per subject (``fervid.synth.long_video``, their own faces), runs
:func:`fervid.predict.spot_recognise.spot_then_recognise` on each with the spotter's default
settings, matches spotted micro intervals to coded ones and compares the predicted class with
the coded emotion. Chance is 1 in 5.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

from fervid.datasets.casme_sq import FOLDERS
from fervid.metrics.spotting import spotting_scores
from fervid.predict.spot_recognise import CLASSIFIED, spot_then_recognise
from fervid.synth.long_video import (
    SHEET_NAME,
    LongVideoSpec,
    make_synthme_long,
    read_synthme_long,
)


def _emotions(root: Path) -> dict[tuple[int, int, int], str]:
    """(participant, onset, offset) → coded emotion, from the generated sheet."""
    with open(root / SHEET_NAME) as f:
        return {(int(r[0]), int(r[2]), int(r[4])): r[6] for r in csv.reader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_synthme_long(root, n_subjects=args.subjects, videos_per_subject=1,
                          spec=LongVideoSpec(seconds=args.seconds), seed=args.seed)
        release, emotions = read_synthme_long(root), _emotions(root)
        spotted, results, started = {}, {}, time.perf_counter()
        for video in release.videos:
            result = spot_then_recognise(video.folder, args.checkpoint, fps=video.fps)
            results[video.video] = result
            spotted[video.video] = [r.interval for r in result.intervals]
        seconds = time.perf_counter() - started
    scores = spotting_scores(spotted, {v.video: v.intervals for v in release.videos},
                             n_frames={v.video: v.n_frames for v in release.videos})
    right, matched, rows = 0, 0, []
    for video in release.videos:
        result = results[video.video]
        participant = {f: n for n, f in FOLDERS.items()}[video.subject]
        for i, j in scores.matches.get(video.video, []):
            r, coded = result.intervals[i], video.intervals[j]
            if coded.kind != "micro" or r.status != CLASSIFIED:
                continue
            truth = emotions[(participant, coded.onset, coded.end())]
            label = r.label(result.classes)
            matched += 1
            right += label == truth
            rows.append({"video": video.video, "onset": r.interval.onset, "coded": truth,
                         "predicted": label, "p": round(max(r.probs), 3)})
    print(json.dumps({"spotting": scores.to_dict(), "micro_matched": matched,
                      "recognised_as_coded": right,
                      "accuracy": round(right / matched, 3) if matched else None,
                      "intervals": rows, "seconds": round(seconds, 1)}, indent=2))


if __name__ == "__main__":
    main()
