"""The training-free spotter over a whole spotting release, scored under the MEGC rule: with
its default thresholds, and leave-one-subject-out with thresholds chosen on the training
subjects (:mod:`fervid.predict.spot_loso`).

Writes to the run folder: ``intervals.csv`` (every spotted interval of the LOSO run, with its
video and subject), ``default_intervals.csv`` (with the default thresholds), ``folds.csv``
(the thresholds each held-out subject got, and their F1 on its training subjects) and
``metrics.json`` (TP, FP, FN, precision, recall and F1 for micro, macro and overall, both
ways; how each was chosen).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.files import atomic_write
from fervid.metrics.spotting import SpottedInterval, spotting_scores
from fervid.predict.spot_loso import Z_GRID, VideoSignals, spot_loso
from fervid.predict.spotting import SpotSettings, settings_dict, spot_frames


def _write_intervals(path: Path, spotted: dict[str, list[SpottedInterval]],
                     videos: dict[str, VideoSignals]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "video", "onset", "apex", "offset", "type", "score"])
            for name, found in spotted.items():
                for s in found:
                    writer.writerow([videos[name].subject, name, s.onset, s.apex, s.offset,
                                     s.kind, f"{s.score:.3f}"])
    atomic_write(path, write)


def spot_release(dataset: str, root: Path, sheet: Path | None, out: Path, *,
                 settings: SpotSettings = SpotSettings(), skip_missing: bool = False) -> dict:
    """Spot every video of a registered spotting release and score it; returns metrics.json.

    Raises
    ------
    UnknownDatasetError
        ``dataset`` names no spotting release.
    DatasetFormatError
        The release cannot be read (its sheet, absent video folders).
    OptionError
        Fewer than two subjects (no leave-one-subject-out).
    """
    spec = dataset_spec(dataset, lambda s: s.read_intervals is not None, "for spotting")
    release = spec.read_intervals(ReadRequest(Path(root), "spotting", sheet,
                                              skip_missing=skip_missing))
    videos: dict[str, VideoSignals] = {}
    default: dict[str, list[SpottedInterval]] = {}
    frames = 0
    for video in release.videos:
        result = spot_frames(video.folder, fps=video.fps, settings=settings)
        videos[video.video] = VideoSignals(video.subject, video.fps, result.signals,
                                           video.intervals)
        default[video.video] = result.intervals
        frames += result.n_frames
    truth = {name: v.truth for name, v in videos.items()}
    folds, loso = spot_loso(videos, settings)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    loso_spotted = {name: found for f in folds for name, found in f.spotted.items()}
    _write_intervals(out / "intervals.csv", loso_spotted, videos)
    _write_intervals(out / "default_intervals.csv", default, videos)

    def write_folds(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "z_micro", "z_macro", "train_f1"])
            for fold in folds:
                writer.writerow([fold.subject, fold.z_micro, fold.z_macro,
                                 f"{fold.train_f1:.4f}"])
    atomic_write(out / "folds.csv", write_folds)
    metrics = {
        "dataset": dataset, "root": str(root), "videos": len(videos), "frames": frames,
        "subjects": len(release.subjects), "missing_videos": list(release.missing),
        "truth": release.counts(),
        "loso": {"how": "thresholds (z_micro, z_macro) chosen per held-out subject on the "
                        "other subjects' videos: best overall F1 over the grid",
                 "grid": list(Z_GRID), **loso.to_dict()},
        "default": {"how": "the settings below for every video, chosen on nothing here",
                    **spotting_scores(default, truth).to_dict()},
        "settings": settings_dict(settings)}
    atomic_write(out / "metrics.json",
                 lambda tmp: tmp.write_text(json.dumps(metrics, indent=2)))
    return metrics
