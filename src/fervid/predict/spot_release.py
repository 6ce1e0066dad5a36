"""A spotting run over a whole release, scored under the MEGC rule, leave-one-subject-out:
``fervid spot --config C --data-root D --out RUN`` (and ``fervid spot --dataset``).

For each held-out subject the spotter's thresholds are chosen on the other subjects' videos
(:mod:`fervid.predict.spot_loso`); the learned spotter is also trained on them alone
(:mod:`fervid.predict.spot_learned`). The held-out subject's truth is read only to score it.

The run folder (every file written atomically; a fold counts as finished once its
``folds/SUBJECT.json`` exists, so a killed run resumes from the finished folds):

``run.json``
    ``{"kind": "spotting", "name", "spotter": "flow"|"softnet", "dataset", "data_root",
    "sheet", "fingerprint", "subjects": [...], "provenance": [segments]}``
    (:mod:`fervid.runs.provenance`; a resume elsewhere appends a segment).
``config.yaml``
    The validated :class:`~fervid.config.spotting.SpotConfig`.
``metrics.json``
    ``micro``, ``macro``, ``overall``: each ``{"tp", "fp", "fn", "precision", "recall",
    "f1"}`` of the LOSO run (the headline; the same under ``loso`` with ``how`` and ``grid``);
    ``default`` (``flow`` only): the same with the config's own thresholds for every video;
    ``folds``: per subject ``{"subject", "micro_threshold", "macro_threshold", "train_f1"}``;
    ``dataset``, ``spotter``, ``videos``, ``frames``, ``subjects``, ``missing_videos``,
    ``truth`` (the release's counts), ``settings``, ``seconds`` (wall time of this process).
``intervals.csv``
    Every interval spotted under LOSO: ``subject, video, onset, apex, offset, type, score,
    tp`` (frames from 1, inclusive; ``tp`` 1 when it matches a truth interval under the MEGC
    rule, else 0).
``truth.csv``
    Every ground-truth interval: ``subject, video, onset, apex, offset, type, matched``
    (``apex`` empty where uncoded; ``offset`` as scored, :meth:`GroundTruthInterval.end`).
``folds.csv``
    ``subject, micro_threshold, macro_threshold, train_f1``.
``folds/SUBJECT.json``
    One held-out subject: its thresholds, training F1, intervals and (``softnet``) training
    details.
``signals/VIDEO.npz``
    The per-frame signals ``micro``, ``macro`` ``(T,)`` each video was spotted on (``flow``:
    computed once for all folds; ``softnet``: the held-out fold's network's scores).
``default_intervals.csv`` (``flow`` only)
    As ``intervals.csv``, with the config's own thresholds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from fervid.config.spotting import SYNTHME_LONG, SpotConfig, SpotDataConfig
from fervid.datasets.long_videos import IntervalRelease
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.errors import OptionError
from fervid.files import atomic_write
from fervid.metrics.spotting import SpottedInterval, spotting_scores
from fervid.predict.spot_loso import (
    Z_GRID,
    SpotFold,
    VideoSignals,
    loso_subjects,
    spot_fold,
    spot_videos,
)
from fervid.predict.spot_run_files import read_fold, read_signals, write_fold, write_signals
from fervid.predict.spotting import SpotSettings, settings_dict, spot_frames
from fervid.runs import provenance
from fervid.runs.store import claim_run_dir, read_run_meta

Say = Callable[[str], None]


def flow_settings(cfg: SpotConfig) -> SpotSettings:
    return SpotSettings(**cfg.flow.model_dump())


def read_release(data: SpotDataConfig) -> IntervalRelease:
    """The release a config names (``synthme_long``: generated first when ``data.generate``
    is set and the folder holds none).

    Raises
    ------
    OptionError
        No ``data.root``; a registered release without ``data.sheet``.
    DatasetFormatError, UnknownDatasetError
        From its reader.
    """
    if data.root is None:
        raise OptionError("the release's folder is not set: give --data-root (or data.root)")
    root = Path(data.root)
    if data.dataset == SYNTHME_LONG:
        from fervid.synth.long_video import (
            SHEET_NAME,
            LongVideoSpec,
            make_synthme_long,
            read_synthme_long,
        )

        if data.generate is not None and not (root / SHEET_NAME).exists():
            g = data.generate
            make_synthme_long(root, n_subjects=g.subjects, videos_per_subject=g.videos,
                              spec=LongVideoSpec(seconds=g.seconds, size=g.size, n_micro=g.micro,
                                                n_macro=g.macro), seed=g.seed)
        return read_synthme_long(root, skip_missing=data.skip_missing)
    spec = dataset_spec(data.dataset, lambda s: s.read_intervals is not None, "for spotting")
    if data.sheet is None:
        raise OptionError(f"{data.dataset} needs its sheet: give --sheet (or data.sheet)")
    return spec.read_intervals(ReadRequest(root, "spotting", Path(data.sheet),
                                           skip_missing=data.skip_missing))


def config_fingerprint(cfg: SpotConfig) -> str:
    """What a resumed run must share: every setting but the run's name and thread count."""
    d = cfg.model_dump(exclude={"name", "threads"})
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _claim(cfg: SpotConfig, out: Path, release: IntervalRelease, say: Say) -> None:
    info = {"kind": "spotting", "name": cfg.name, "spotter": cfg.spotter,
            "dataset": cfg.data.dataset, "data_root": cfg.data.root, "sheet": cfg.data.sheet,
            "fingerprint": config_fingerprint(cfg), "subjects": release.subjects,
            "provenance": [provenance.collect()]}
    if claim_run_dir(out, info, cfg, same=("kind", "fingerprint")):
        return
    meta = read_run_meta(out)
    segments, notice = provenance.resumed(meta, provenance.collect())
    if notice:
        say(notice)
    meta["provenance"] = segments
    atomic_write(out / "run.json", lambda p: p.write_text(json.dumps(meta, indent=2)))
    say(f"resuming {out}: {len(list((out / 'folds').glob('*.json')))} finished folds")


def _flow_signals(release: IntervalRelease, settings: SpotSettings, out: Path,
                  say: Say) -> tuple[dict[str, VideoSignals], int]:
    """Each video's training-free signals, computed once (cached in ``signals/``)."""
    videos, frames = {}, 0
    for n, video in enumerate(release.videos, 1):
        path = out / "signals" / f"{video.video}.npz"
        if not path.exists():
            say(f"[{n}/{len(release.videos)}] {video.video}: flow signals")
            result = spot_frames(video.folder, fps=video.fps, settings=settings)
            write_signals(path, result.signals)
        signals = read_signals(path)
        videos[video.video] = VideoSignals(video.subject, video.fps, signals, video.intervals)
        frames += len(signals["micro"])
    return videos, frames


def _flow_folds(videos: dict[str, VideoSignals], settings: SpotSettings, grid, out: Path,
                say: Say) -> list[SpotFold]:
    folds = []
    for subject in loso_subjects(videos):
        path = out / "folds" / f"{subject}.json"
        if not path.exists():
            train = {n: v for n, v in videos.items() if v.subject != subject}
            test = {n: v for n, v in videos.items() if v.subject == subject}
            fold = spot_fold(subject, train, test, settings, grid)
            write_fold(path, fold)
            say(f"fold {subject}: thresholds ({fold.micro:g}, {fold.macro:g}), training F1 "
                f"{fold.train_f1:.3f}")
        folds.append(read_fold(path))
    return folds


def _write_intervals(path: Path, spotted: Mapping[str, list[SpottedInterval]],
                     subject_of: Mapping[str, str], matched: Mapping[str, set[int]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "video", "onset", "apex", "offset", "type", "score",
                             "tp"])
            for name, found in spotted.items():
                for i, s in enumerate(found):
                    writer.writerow([subject_of[name], name, s.onset, s.apex, s.offset,
                                     s.kind, f"{s.score:.4f}", int(i in matched[name])])
    atomic_write(path, write)


def _scored(spotted, release: IntervalRelease):
    """The MEGC result, and per video the spotted and truth indices matched."""
    truth = {v.video: v.intervals for v in release.videos}
    frames = {v.video: v.n_frames for v in release.videos}
    result = spotting_scores(spotted, truth, n_frames=frames)
    found = {v: {a for a, _ in result.matches.get(v, [])} for v in truth}
    coded = {v: {b for _, b in result.matches.get(v, [])} for v in truth}
    return result, found, coded


def _write_truth(path: Path, release: IntervalRelease, coded: Mapping[str, set[int]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "video", "onset", "apex", "offset", "type",
                             "matched"])
            for v in release.videos:
                for j, g in enumerate(v.intervals):
                    writer.writerow([v.subject, v.video, g.onset, "" if g.apex is None
                                     else g.apex, g.end(v.n_frames), g.kind,
                                     int(j in coded[v.video])])
    atomic_write(path, write)


def run_spotting(cfg: SpotConfig, out: Path, say: Say = lambda s: None) -> dict:
    """Run ``cfg`` into the run folder ``out`` (the format in the module docstring), resuming
    from its finished folds; returns metrics.json's content.

    Raises
    ------
    OptionError
        Fewer than two subjects; no data root.
    DatasetFormatError, UnknownDatasetError
        The release cannot be read.
    RunDirError
        ``out`` holds a run of another config.
    """
    start = time.perf_counter()
    out = Path(out)
    release = read_release(cfg.data)
    subject_of = {v.video: v.subject for v in release.videos}
    loso_subjects({v.video: VideoSignals(v.subject, v.fps, {}, ()) for v in release.videos})
    _claim(cfg, out, release, say)
    extra: dict = {}
    if cfg.spotter == "flow":
        settings = flow_settings(cfg)
        grid = tuple(cfg.select.grid or Z_GRID)
        videos, frames = _flow_signals(release, settings, out, say)
        folds = _flow_folds(videos, settings, grid, out, say)
        default = spot_videos(videos, settings)
        result, found, _ = _scored(default, release)
        _write_intervals(out / "default_intervals.csv", default, subject_of, found)
        extra["default"] = {"how": "the config's own thresholds for every video, chosen on "
                                   "nothing here", **result.to_dict()}
        used = settings_dict(settings)
        how = ("thresholds (z_micro, z_macro) chosen per held-out subject on the other "
               "subjects' videos: best overall F1 over the grid")
    else:
        from fervid.predict.spot_learned import SCORE_GRID, learned_settings, run_learned_folds

        settings = learned_settings(cfg)
        grid = tuple(cfg.select.grid or SCORE_GRID)
        folds, frames = run_learned_folds(release, cfg, out, grid, say)
        used = asdict(settings)
        how = ("per held-out subject: networks trained on the other subjects' videos; score "
               "thresholds chosen on those subjects' scores from inner splits of them (each "
               "scored by networks trained without it): best overall F1 over the grid")
    spotted = {name: found for f in folds for name, found in f.spotted.items()}
    result, found, coded = _scored(spotted, release)
    _write_intervals(out / "intervals.csv", spotted, subject_of, found)
    _write_truth(out / "truth.csv", release, coded)

    def write_folds(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["subject", "micro_threshold", "macro_threshold", "train_f1"])
            for fold in folds:
                writer.writerow([fold.subject, fold.micro, fold.macro, f"{fold.train_f1:.4f}"])
    atomic_write(out / "folds.csv", write_folds)
    scores = result.to_dict()
    metrics = {
        "spotter": cfg.spotter, "dataset": cfg.data.dataset, "root": cfg.data.root,
        "protocol": "loso", "videos": len(release.videos), "frames": frames,
        "subjects": len(release.subjects), "missing_videos": list(release.missing),
        "truth": release.counts(), **scores,
        "loso": {"how": how, "grid": list(grid), **scores}, **extra,
        "folds": [{"subject": f.subject, "micro_threshold": f.micro,
                   "macro_threshold": f.macro, "train_f1": f.train_f1} for f in folds],
        "settings": used, "seconds": round(time.perf_counter() - start, 1)}
    atomic_write(out / "metrics.json",
                 lambda tmp: tmp.write_text(json.dumps(metrics, indent=2)))
    return metrics


def spot_release(dataset: str, root: Path, sheet: Path | None, out: Path, *,
                 settings: SpotSettings = SpotSettings(), skip_missing: bool = False,
                 say: Say = lambda s: None) -> dict:
    """The training-free spotter over a registered release (``fervid spot --dataset``): a
    :func:`run_spotting` of the config these arguments make."""
    from pydantic import ValidationError

    from fervid.config import ConfigError, validation_problems

    dataset_spec(dataset, lambda s: s.read_intervals is not None, "for spotting")
    try:
        cfg = SpotConfig(name=f"spot_{dataset}", spotter="flow",
                         data=SpotDataConfig(dataset=dataset, root=str(root),
                                             sheet=None if sheet is None else str(sheet),
                                             skip_missing=skip_missing),
                         flow=asdict(settings))
    except ValidationError as e:
        raise ConfigError(f"invalid options: {validation_problems(e)}") from None
    return run_spotting(cfg, out, say)
