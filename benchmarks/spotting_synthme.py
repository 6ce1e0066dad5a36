"""The training-free spotter on SynthME long videos: F1 (micro, macro, overall) under the MEGC
rule, and its speed.

    python benchmarks/spotting_synthme.py --seed 1 --subjects 4 --videos 2 --seconds 60

Generates the videos (``fervid.synth.long_video``) into a temporary folder, reads them back
with the CAS(ME)² long-video reader, spots each with the default :class:`SpotSettings` and
scores all of them together (``fervid.metrics.spotting``). The defaults were chosen on seed 0;
report other seeds. ``--loso``: also each subject spotted with the thresholds that score best
on the other subjects' videos. ``--learned``: also the learned spotter
(``fervid.predict.spot_learned``: networks trained per held-out subject on the other subjects,
thresholds chosen on them), run as ``fervid spot --config configs/spot_softnet_synthme.yaml``
does, and both LOSO results side by side with their wall times.

    python benchmarks/spotting_synthme.py --seed 1 --subjects 4 --videos 2 --seconds 60 \
        --learned
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fervid.config.spotting import SpotConfig
from fervid.datasets.casme_sq_long import read_casme_sq_intervals
from fervid.metrics.spotting import spotting_scores
from fervid.predict.spot_loso import VideoSignals, spot_loso
from fervid.predict.spot_release import run_spotting
from fervid.predict.spotting import SpotSettings, spot_frames
from fervid.synth.long_video import LongVideoSpec, make_synthme_long


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--videos", type=int, default=2, help="videos per subject")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, help="write the videos here and keep them")
    parser.add_argument("--show", action="store_true", help="print each video's intervals")
    parser.add_argument("--loso", action="store_true",
                        help="also leave-one-subject-out, thresholds chosen on the other "
                             "subjects' videos (fervid.predict.spot_loso)")
    parser.add_argument("--learned", action="store_true",
                        help="also the learned spotter under LOSO, side by side (implies --loso)")
    parser.add_argument("--epochs", type=int, help="the learned spotter's epochs")
    args = parser.parse_args()
    args.loso = args.loso or args.learned
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        t0 = time.perf_counter()
        sheet = make_synthme_long(root, n_subjects=args.subjects,
                                  videos_per_subject=args.videos,
                                  spec=LongVideoSpec(seconds=args.seconds), seed=args.seed)
        generated = time.perf_counter() - t0
        release = read_casme_sq_intervals(sheet, root)
        spotted, frames, seconds, signals = {}, 0, 0.0, {}
        learned = _learned(root, args.seed, args.epochs) if args.learned else None
        for video in release.videos:
            result = spot_frames(video.folder, fps=video.fps, settings=SpotSettings())
            spotted[video.video] = result.intervals
            signals[video.video] = VideoSignals(video.subject, video.fps, result.signals,
                                                video.intervals)
            frames += result.n_frames
            seconds += result.seconds["total"]
            if args.show:
                print(video.video, "truth", [(i.onset, i.offset, i.kind) for i in video.intervals])
                print(video.video, "spot ", [(i.onset, i.offset, i.kind) for i in result.intervals])
    scores = spotting_scores(spotted, {v.video: v.intervals for v in release.videos})
    counts = release.counts()
    print(json.dumps({"seed": args.seed, "videos": counts["videos"], "frames": frames,
                      "truth": {k: counts[k] for k in ("micro", "macro")},
                      "generate_s": round(generated, 1),
                      "spot_frames_per_s": round(frames / seconds, 1),
                      **{k: {m: round(v, 3) if isinstance(v, float) else v
                             for m, v in d.items()} for k, d in scores.to_dict().items()}},
                     indent=1))
    if args.loso:
        folds, loso = spot_loso(signals)
        print(json.dumps({"loso": {k: {m: round(v, 3) if isinstance(v, float) else v
                                       for m, v in d.items()} for k, d in loso.to_dict().items()},
                          "folds": [{"subject": f.subject, "z_micro": f.micro,
                                     "z_macro": f.macro, "train_f1": round(f.train_f1, 3)}
                                    for f in folds]}, indent=1))


    if learned is not None:
        metrics, wall = learned
        print(json.dumps({"loso_side_by_side": {
            "flow": {k: round(getattr(loso, k).f1, 3) for k in ("micro", "macro", "overall")},
            "flow_s": round(seconds, 1),
            "softnet": {k: round(metrics[k]["f1"], 3) for k in ("micro", "macro", "overall")},
            "softnet_s": round(wall, 1)},
            "softnet_loso": metrics["loso"],
            "softnet_folds": metrics["folds"]}, indent=1))


def _learned(root: Path, seed: int, epochs: int | None) -> tuple[dict, float]:
    """The learned spotter's LOSO on the generated videos at ``root`` (as ``fervid spot
    --config configs/spot_softnet_synthme.yaml`` runs it) and its wall time, flow images
    included."""
    t0 = time.perf_counter()
    cfg = SpotConfig.model_validate({
        "spotter": "softnet", "seed": 0, "data": {"dataset": "synthme_long", "root": str(root)},
        "softnet": {} if epochs is None else {"epochs": epochs}})
    with tempfile.TemporaryDirectory() as run:
        metrics = run_spotting(cfg, Path(run) / "run", print)
    return metrics, time.perf_counter() - t0


if __name__ == "__main__":
    main()
