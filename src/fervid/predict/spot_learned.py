"""The learned spotter, in the spirit of SOFTNet (Liong et al. 2021), leave-one-subject-out.

For each kind (micro, macro) a shallow three-stream network
(:class:`fervid.models.softnet.SpottingFlowNet`) reads the flow images of every frame against
the frame ``k`` before (:mod:`fervid.predict.spot_features`; ``k`` about half the kind's mean
length) and gives a per-frame expression score. Pseudo-labels (:func:`pseudo_labels`): frame
``f`` is 1 when the span ``[f − k, f]`` its flow covers meets an interval of that kind, else 0.
The scores, smoothed, become intervals (:func:`score_intervals`): each run of frames above the
kind's threshold (SOFTNet's, relative to the video's scores) is one interval, moved back by
``k/2`` and shortened by ``k`` (a run spans about ``[onset, offset + k]``); micro ones no
longer than ``max_micro_seconds``, macro ones longer, a micro one inside a macro one dropped.

Per held-out subject (:func:`learned_fold`): the two networks are trained on the other
subjects' videos; the thresholds are chosen on those subjects (:func:`spot_loso.spot_fold`),
from scores that no network trained on the video gave: the training subjects split into
``inner_folds`` groups, each scored by networks trained on the others. The held-out subject's
truth is never read here; its videos are scored by the networks trained on all the others.

Training goes through the one trainer (:class:`fervid.training.trainer.Trainer`): binary
cross-entropy on the logit against the 0/1 pseudo-labels (:class:`MultiLabelLoss`, one
label), Adam; each epoch every expression frame and ``negatives_per_positive`` times as many
other frames, drawn anew, so that the few expression frames are not drowned. Inputs are divided
by the per-channel standard deviation of the training frames.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from fervid.config.spotting import SpotConfig
from fervid.datasets.long_videos import GroundTruthInterval, IntervalRelease
from fervid.losses.training_loss import MultiLabelLoss
from fervid.metrics.spotting import SpottedInterval
from fervid.models.softnet import SpottingFlowNet
from fervid.predict.spot_features import FlowImages, extract_flow_images
from fervid.predict.spot_loso import (
    IntervalFinder,
    SpotFold,
    VideoSignals,
    loso_subjects,
    spot_fold,
)
from fervid.predict.spot_run_files import read_fold, write_fold, write_signals
from fervid.training.setup import make_fabric
from fervid.training.trainer import Trainer, seeded

#: The default grid of score thresholds, for micro and for macro.
SCORE_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
KINDS = ("micro", "macro")


@dataclass(frozen=True)
class LearnedSettings:
    """How scores become intervals; the thresholds ``p`` place each video's threshold between
    the mean and the maximum of its smoothed score (:func:`score_intervals`)."""

    micro_k_seconds: float = 0.16
    macro_k_seconds: float = 0.8
    max_micro_seconds: float = 0.5
    micro_threshold: float = 0.5
    macro_threshold: float = 0.5

    def k(self, kind: str, fps: float) -> int:
        seconds = self.micro_k_seconds if kind == "micro" else self.macro_k_seconds
        return max(1, int(round(seconds * fps)))


def learned_settings(cfg: SpotConfig) -> LearnedSettings:
    s = cfg.softnet
    return LearnedSettings(s.micro_k_seconds, s.macro_k_seconds, s.max_micro_seconds)


def pseudo_labels(truth: Sequence[GroundTruthInterval], n_frames: int, k: int,
                  kind: str) -> np.ndarray:
    """``(n_frames,)`` float32: 1 at frame ``f`` (index ``f − 1``) when ``[f − k, f]`` meets
    an interval of ``kind``, i.e. ``onset ≤ f ≤ end + k``; else 0."""
    labels = np.zeros(n_frames, np.float32)
    for g in truth:
        if g.kind == kind:
            labels[max(g.onset - 1, 0):min(g.end(n_frames) + k, n_frames)] = 1.0
    return labels


def _runs(signal: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``(first, last)`` indices of each run of values above ``threshold``."""
    above = np.concatenate([[False], signal > threshold, [False]])
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2] - 1, strict=True)]


def score_intervals(signals: Mapping[str, np.ndarray], fps: float, settings: LearnedSettings
                    ) -> tuple[list[SpottedInterval], dict[str, float]]:
    """Micro and macro intervals (frame numbers from 1) from the score signals ``(T,)``, and
    the thresholds used.

    Each kind's score is smoothed over ``k`` frames; its threshold is SOFTNet's, relative to
    the video: ``mean + p · (max − mean)`` with ``p`` the kind's ``*_threshold``. Each run of
    frames above it is one interval: a run spans about ``[onset, offset + k]`` (the
    pseudo-labels' span), so the interval is the run shifted back by ``k/2`` and shortened by
    ``k``, and at least ``k + 1`` frames long.
    """
    longest = settings.max_micro_seconds * fps
    found, used = {}, {}
    for kind in KINDS:
        k = settings.k(kind, fps)
        smooth = uniform_filter1d(np.asarray(signals[kind], np.float32), k | 1, mode="nearest")
        last_frame = len(smooth) - 1
        mean, top = float(smooth.mean()), float(smooth.max()) if len(smooth) else 0.0
        used[kind] = threshold = mean + getattr(settings, f"{kind}_threshold") * (top - mean)
        found[kind] = []
        for first, last in _runs(smooth, threshold) if top > mean else []:
            centre = (first + last - k) / 2
            half = max((last - first - k) / 2, k / 2)
            on = int(np.clip(np.floor(centre - half + 0.5), 0, last_frame))
            off = int(np.clip(np.floor(centre + half + 0.5), on, last_frame))
            apex = int(np.clip(first + np.argmax(smooth[first:last + 1]) - k // 2, on, off))
            found[kind].append((on, apex, off, float(smooth[first:last + 1].max())))
    macro = [m for m in found["macro"] if m[2] - m[0] + 1 > longest]
    micro = [m for m in found["micro"] if m[2] - m[0] + 1 <= longest
             and not any(a[0] <= m[1] <= a[2] for a in macro)]
    intervals = [SpottedInterval(on + 1, off + 1, kind, apex + 1, score)
                 for kind, runs in (("micro", micro), ("macro", macro))
                 for on, apex, off, score in runs]
    return sorted(intervals, key=lambda s: s.onset), used


#: The learned spotter's, for :mod:`fervid.predict.spot_loso`.
LEARNED_FINDER = IntervalFinder(score_intervals, ("micro_threshold", "macro_threshold"))


@dataclass(frozen=True)
class VideoFlow:
    """One video's flow images with what training needs: subject, truth."""

    video: str
    subject: str
    truth: Sequence[GroundTruthInterval]
    images: FlowImages


def _samples(videos: Sequence[VideoFlow], kind: int, k: int, ratio: float,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One epoch's ``(x (N, 3, S, S) float16, y (N,) float32)``: every valid positive frame
    of the kind and ``ratio`` times as many valid negative frames, drawn with ``rng``."""
    xs, ys = [], []
    name = KINDS[kind]
    for v in videos:
        labels = pseudo_labels(v.truth, v.images.n_frames, k, name)
        valid = v.images.valid[:, kind]
        pos = np.flatnonzero(valid & (labels > 0))
        neg = np.flatnonzero(valid & (labels == 0))
        n_neg = min(len(neg), int(round(ratio * max(len(pos), 1))))
        pick = np.sort(np.concatenate([pos, rng.choice(neg, n_neg, replace=False)]))
        xs.append(np.asarray(v.images.open()[pick, kind]))
        ys.append(labels[pick])
    return np.concatenate(xs), np.concatenate(ys)


def train_scorer(videos: Sequence[VideoFlow], kind: int, settings, *, seed: int,
                 ) -> tuple[SpottingFlowNet, np.ndarray, list[float]]:
    """A network trained on ``videos`` for kind index ``kind`` (0 micro, 1 macro); returns
    it (eval mode), the input scale ``(3,)`` and each epoch's loss."""
    s = settings
    k = videos[0].images.ks[kind]
    rng = np.random.default_rng(seed)
    x, _ = _samples(videos, kind, k, s.negatives_per_positive, rng)
    scale = np.maximum(x.astype(np.float32).std(axis=(0, 2, 3)), 1e-6)
    scale_t = torch.from_numpy(scale).view(1, 3, 1, 1)
    model = seeded(seed, lambda: SpottingFlowNet(size=s.size))
    optimizer = torch.optim.Adam(model.parameters(), lr=s.lr)
    fabric = make_fabric("cpu", "32-true")
    model, optimizer = fabric.setup(model, optimizer)
    order = torch.Generator().manual_seed(seed)

    def batches(epoch: int):
        xe, ye = _samples(videos, kind, k, s.negatives_per_positive,
                          np.random.default_rng([seed, epoch]))
        perm = torch.randperm(len(xe), generator=order).numpy()
        for start in range(0, len(perm), s.batch_size):
            idx = perm[start:start + s.batch_size]
            if len(idx) < 2:
                continue
            yield (torch.from_numpy(xe[idx].astype(np.float32)) / scale_t,
                   torch.from_numpy(ye[idx]).view(-1, 1))

    losses: list[float] = []

    class _Log:
        def truncate_after(self, epoch: int) -> None:
            del losses[epoch:]

        def append(self, **row) -> None:
            losses.append(row["loss"])

    trainer = Trainer(fabric, seed=seed, epochs=s.epochs, log=_Log())
    trained = trainer.fit(model, MultiLabelLoss(), optimizer, batches)
    net = trained.model.module if hasattr(trained.model, "module") else trained.model
    return net.eval(), scale, losses


def score_video(model: SpottingFlowNet, scale: np.ndarray, images: FlowImages, kind: int,
                chunk: int = 512) -> np.ndarray:
    """``(T,)`` float32: the network's sigmoid score of each frame (0 where invalid), read
    in chunks of ``chunk`` frames."""
    data = images.open()
    out = np.zeros(images.n_frames, np.float32)
    scale_t = torch.from_numpy(scale).view(1, 3, 1, 1)
    with torch.no_grad():
        for start in range(0, images.n_frames, chunk):
            x = torch.from_numpy(np.asarray(data[start:start + chunk, kind], np.float32))
            out[start:start + chunk] = torch.sigmoid(model(x / scale_t).logits[:, 0]).numpy()
    out[~images.valid[:, kind]] = 0.0
    return out


def _score(train: Sequence[VideoFlow], test: Sequence[VideoFlow], settings, seed: int,
           ) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """``test``'s signals (video → kind → ``(T,)``) from networks trained on ``train``."""
    signals: dict[str, dict[str, np.ndarray]] = {v.video: {} for v in test}
    info = {}
    for kind, name in enumerate(KINDS):
        model, scale, losses = train_scorer(train, kind, settings, seed=seed + kind)
        info[name] = {"scale": scale.tolist(), "losses": [round(x, 5) for x in losses]}
        for v in test:
            signals[v.video][name] = score_video(model, scale, v.images, kind)
    return signals, info


def learned_fold(subject: str, videos: Sequence[VideoFlow], cfg: SpotConfig,
                 grid: Sequence[float], seed: int
                 ) -> tuple[SpotFold, dict[str, dict[str, np.ndarray]], dict]:
    """Hold ``subject`` out: thresholds chosen on inner-split scores of the other subjects,
    networks trained on all of them, the held-out videos spotted. Returns the fold, the
    held-out videos' signals and training details. ``subject``'s truth is not read."""
    previous = torch.get_num_threads()
    # One thread unless told: the network is too small for more to help, and on a busy
    # machine more threads wait on each other (measured ten times slower on 2 shared cores).
    torch.set_num_threads(cfg.threads or 1)
    try:
        return _learned_fold(subject, videos, cfg, grid, seed)
    finally:
        torch.set_num_threads(previous)


def _learned_fold(subject: str, videos: Sequence[VideoFlow], cfg: SpotConfig,
                  grid: Sequence[float], seed: int):
    s = cfg.softnet
    train = [v for v in videos if v.subject != subject]
    test = [v for v in videos if v.subject == subject]
    subjects = list(dict.fromkeys(v.subject for v in train))
    groups = [subjects[i::min(s.inner_folds, len(subjects))]
              for i in range(min(s.inner_folds, len(subjects)))]
    inner: dict[str, VideoSignals] = {}
    for j, group in enumerate(groups):
        signals, _ = _score([v for v in train if v.subject not in group],
                            [v for v in train if v.subject in group], s, seed + 10 * (j + 1))
        inner.update({v.video: VideoSignals(v.subject, v.images.fps, signals[v.video],
                                            v.truth) for v in train if v.subject in group})
    signals, info = _score(train, test, s, seed)
    held = {v.video: VideoSignals(v.subject, v.images.fps, signals[v.video], ())
            for v in test}
    fold = spot_fold(subject, inner, held, learned_settings(cfg), grid, LEARNED_FINDER)
    return fold, signals, {"inner_groups": groups, "training": info}


def flow_images(release: IntervalRelease, cfg: SpotConfig, cache: Path,
                say: Callable[[str], None]) -> list[VideoFlow]:
    """Every video's flow images, extracted once into ``cache`` (kept across a resume)."""
    s, settings = cfg.softnet, learned_settings(cfg)
    out = []
    for n, video in enumerate(release.videos, 1):
        path = cache / video.video
        images = FlowImages.load(path)
        if images is None:
            say(f"[{n}/{len(release.videos)}] {video.video}: flow images")
            ks = tuple(settings.k(kind, video.fps) for kind in KINDS)
            images = extract_flow_images(video.folder, path, ks=ks, size=s.size, crop=s.crop,
                                         fps=video.fps, detect_every=s.detect_every)
        out.append(VideoFlow(video.video, video.subject, video.intervals, images))
    return out


def run_learned_folds(release: IntervalRelease, cfg: SpotConfig, out: Path,
                      grid: Sequence[float], say: Callable[[str], None]
                      ) -> tuple[list[SpotFold], int]:
    """Every subject held out in turn into ``out/folds/SUBJECT.json`` (finished folds read
    back), its videos' scores into ``out/signals/VIDEO.npz``; the flow images are cached in
    ``out/cache/`` and removed once every fold is done. Returns the folds and frame count."""
    cache = out / "cache"
    todo = [s for s in release.subjects if not (out / "folds" / f"{s}.json").exists()]
    videos = flow_images(release, cfg, cache, say) if todo else []
    frames = sum(v.images.n_frames for v in videos)
    folds = []
    subjects = loso_subjects({v.video: VideoSignals(v.subject, v.fps, {}, ())
                              for v in release.videos})
    for n, subject in enumerate(subjects):
        path = out / "folds" / f"{subject}.json"
        if not path.exists():
            start = time.perf_counter()
            fold, signals, info = learned_fold(subject, videos, cfg, grid, cfg.seed + 100 * n)
            for video, found in signals.items():
                write_signals(out / "signals" / f"{video}.npz", found)
            info["seconds"] = round(time.perf_counter() - start, 1)
            write_fold(path, fold, info)
            say(f"fold {subject}: thresholds ({fold.micro:g}, {fold.macro:g}), training F1 "
                f"{fold.train_f1:.3f}, {info['seconds']:g} s")
        folds.append(read_fold(path))
    if not frames:
        frames = sum(len(np.load(out / "signals" / f"{v.video}.npz")["micro"])
                     for v in release.videos)
    shutil.rmtree(cache, ignore_errors=True)
    return folds, frames


__all__ = ["LEARNED_FINDER", "SCORE_GRID", "LearnedSettings", "VideoFlow", "learned_fold",
           "learned_settings", "pseudo_labels", "run_learned_folds", "score_intervals",
           "score_video", "train_scorer"]
