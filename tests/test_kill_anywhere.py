"""Kill anywhere, lose nothing: every long command, SIGKILLed twice at seeded moments, resumes
to the outputs of an uninterrupted run.

Each command runs in a child process (:mod:`kill_switch`) that dies by SIGKILL at its N-th file
event (a write closed, a file saved or moved into place, a file removed), N drawn with a seeded
``random.Random`` from the events of an uninterrupted run; a killed write is first cut to half
its bytes. Then the command is run again, killed again, and run to the end. Checked:

1. the outputs equal the uninterrupted run's, byte for byte (timings and TensorBoard aside);
2. finished work is not redone: a fold, image or clip that was in place at a kill is still the
   same file at the end (inode and mtime) and was moved into place exactly once; training
   repeats at most the epoch each kill interrupted;
3. no file is ever written under its final name (only the epoch logs, appended row by row), so
   a half-written file is only ever a temporary one, which nothing reads; temporary files a
   kill left are removed, beside the few files several shards may share.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd
import pytest
import yaml

from conftest import shared_path
from dfew_fixture import real_frame_counts, real_rows, write_dfew_tree
from fervid.files import TMP_MARK
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR
from generated import make_precomputed
from kill_switch import Attempt, Event, Launcher

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork (POSIX)")

#: Files any invocation rewrites (the merged results), and files several shards may share: a
#: temporary file a kill left beside one of them is not removed (another live process may own
#: it) but must be ignored.
SHARED = ("run.json", "config.yaml", "folds.csv", "predictions.csv", "per_subject.csv",
          "metrics.json", "confusion.png", "wall/")
#: Columns and keys that hold wall times.
TIMINGS = ("wall_s", "seconds")


@pytest.fixture(scope="module")
def launcher(tmp_path_factory) -> Launcher:
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in threads}
    os.environ.update(threads)  # the fork server, and so every child, starts with these
    try:
        launcher = Launcher(tmp_path_factory.mktemp("attempts"))
        from multiprocessing import forkserver

        forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return launcher


# --- what a run directory holds ----------------------------------------------------------

def is_tmp(rel: str) -> bool:
    return TMP_MARK in rel


def tree(out: Path) -> dict[str, object]:
    """Every output file's content, comparable across runs: timings dropped from metrics.json
    and epoch logs, provenance from run.json, TensorBoard and per-invocation wall records left
    out, temporary files left out (they are checked apart)."""
    contents = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        rel = path.relative_to(out).as_posix()
        if is_tmp(rel) or rel.startswith(("tensorboard/", "wall/")):
            continue
        if rel.endswith("metrics.json"):
            contents[rel] = drop_timings(json.loads(path.read_text()))
        elif rel.endswith("run.json"):  # provenance: each invocation's command line and time
            contents[rel] = {k: v for k, v in json.loads(path.read_text()).items()
                             if k != "provenance"}
        elif rel.startswith("train_logs/"):
            log = pd.read_csv(path)
            contents[rel] = log.drop(columns=[c for c in TIMINGS if c in log]).to_csv()
        else:
            contents[rel] = path.read_bytes()
    return contents


def drop_timings(value):
    if isinstance(value, dict):
        return {k: drop_timings(v) for k, v in value.items() if k not in TIMINGS}
    return value


def leftovers(out: Path) -> list[str]:
    """Temporary files or folders under ``out`` beside a file no shared one."""
    found = [p.relative_to(out).as_posix() for p in out.rglob(f"*{TMP_MARK}*")]
    return sorted(r for r in found if not any(
        r.split("/")[-1].startswith(f".{s}") or r.startswith(s) for s in SHARED))


def stamps(out: Path, rels) -> dict[str, tuple[int, int, int]]:
    return {r: ((s := (out / r).stat()).st_ino, s.st_mtime_ns, s.st_size) for r in rels}


# --- the scenario ------------------------------------------------------------------------

@dataclass
class Story:
    whole: Attempt
    attempts: list[Attempt]   # killed, killed, finished
    kept: list[dict]          # stamps of the finished work found after each kill

    @property
    def events(self) -> list[Event]:
        return [e for a in self.attempts for e in a.events]


def kill_twice_then_finish(launcher: Launcher, argv, base: Path, seed: int, finished, *,
                           moved=None, env: dict | None = None) -> Story:
    """Run ``argv(out)`` to the end in ``base/whole``, then in ``base/killed``: killed at a
    seeded event, again, then to the end.

    ``finished(out)`` lists the outputs that count as finished work (relative paths): those
    found after a kill must survive the later attempts untouched. ``moved(out)`` (default
    ``finished``) lists those that must have been moved into place exactly once.
    """
    whole_out, out = base / "whole", base / "killed"
    whole = launcher.run(argv(whole_out), whole_out, env=env)
    assert whole.returncode == 0, whole.output
    rng = random.Random(seed)
    first_kill = rng.randint(1, len(whole.events))
    # A resumed run still has at least the events the killed one did not reach.
    second_kill = rng.randint(1, max(1, len(whole.events) - first_kill))
    attempts, kept = [], []
    for kill_at in (first_kill, second_kill):
        attempt = launcher.run(argv(out), out, kill_at, env=env)
        assert attempt.killed, (f"event {kill_at} of {len(attempt.events)} was not reached "
                                f"(exit {attempt.returncode}):\n{attempt.output}")
        attempts.append(attempt)
        kept.append(stamps(out, finished(out)))
    last = launcher.run(argv(out), out, env=env)
    assert last.returncode == 0, last.output
    attempts.append(last)
    story = Story(whole, attempts, kept)
    check_story(story, whole_out, out, moved or finished)
    return story


def check_story(story: Story, whole_out: Path, out: Path, moved) -> None:
    kills = [next(e for e in a.events if e.killed) for a in story.attempts[:2]]
    where = f"killed at {[(e.number, e.kind, e.path) for e in kills]}"
    # 1. The same outputs as the uninterrupted run.
    assert tree(out) == tree(whole_out), where
    # 2. Finished work is not redone: what was in place at a kill is untouched, and every
    #    finished output was moved into place once over all attempts.
    for before in story.kept:
        assert stamps(out, before) == before, where
    moves = Counter(e.path for e in story.events if e.kind in ("replace", "rename")
                    and not e.killed)
    twice = {r: moves[r] for r in moved(out) if moves[r] != 1}
    assert not twice, f"finished outputs moved into place other than once: {twice}; {where}"
    # 3. Only the epoch logs are written in place; temporary files are cleaned or ignored.
    for attempt in (story.whole, *story.attempts):
        in_place = {e.path for e in attempt.events if e.in_place
                    and not (e.kind == "append" and e.path.startswith("train_logs/"))}
        assert not in_place, f"written under their final names (not atomic): {in_place}"
    assert not leftovers(out), where


def epoch_rows(events: list[Event]) -> int:
    return sum(e.kind == "append" and e.path.startswith("train_logs/") for e in events)


def fold_files(out: Path) -> list[str]:
    """Finished folds: a fold's CSV, and its model (written before it)."""
    return fold_csvs(out) + [r.replace("folds/", "models/").replace(".csv", ".pt")
                             for r in fold_csvs(out)]


def fold_csvs(out: Path) -> list[str]:
    """What marks a fold finished. (Its model is moved into place first, so a kill between
    the two moves has the fold, model included, trained again.)"""
    return sorted(p.relative_to(out).as_posix() for p in out.glob("folds/fold_*.csv"))


# --- fervid loso -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def flow_set(tmp_path_factory) -> Path:
    return make_precomputed(tmp_path_factory.mktemp("pre") / "flow")


def loso_config(folder: Path, **run) -> Path:
    cfg = {"name": "kill", "seed": 0, "model": {"name": "ststnet"},
           "train": {"lr": 1e-3, "batch_size": 32, "epochs": 6}, "run": run}
    path = folder / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(("engine", "seed"), [("fold_batched", 3), ("sequential", 5)])
def test_loso(launcher, flow_set, tmp_path, engine, seed):
    # Traced (run.trace_every), so the kept test predictions must survive the kills too.
    run = ({"engine": "fold_batched", "chunk": 4, "checkpoint_every_s": 1e-9,  # every epoch
            "trace_every": 2} if engine == "fold_batched"
           else {"engine": "sequential", "trace_every": 2})
    cfg = loso_config(tmp_path, **run)
    story = kill_twice_then_finish(
        launcher, lambda out: ["loso", "--config", cfg, "--data-root", flow_set, "--out", out,
                               "--no-progress"], tmp_path, seed, fold_files, moved=fold_csvs)
    out = tmp_path / "killed"
    assert json.loads((out / "metrics.json").read_text())["complete"]
    # Training repeats at most what each kill interrupted: an epoch (fold-batched, checkpointed
    # every epoch) or the fold in training (sequential).
    logged = epoch_rows(story.whole.events)
    allowed = 2 * (1 if engine == "fold_batched" else 6)
    assert logged <= epoch_rows(story.events) <= logged + allowed
    assert not list((out / "checkpoints").glob("*.pt"))


# --- fervid kfold ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dfew_release(tmp_path_factory) -> Path:
    split_dir = shared_path("annotations", "dfew", "EmoLabel_DataSplit")
    counts = real_frame_counts(shared_path("annotations", "dfew",
                                           "clip_224x224_frame_counts.csv"))
    clips = set()
    for fold in (1, 2):  # both folds get training and test clips
        clips |= {n for n, _ in real_rows(split_dir, "train", fold)[:3]}
        clips |= {n for n, _ in real_rows(split_dir, "test", fold)[:2]}
    root = tmp_path_factory.mktemp("dfew") / "DFEW"
    return write_dfew_tree(root, split_dir, clips, counts, max_frames=8,
                           sources=("clip_224x224_16f",))


def test_kfold(launcher, dfew_release, tmp_path):
    cfg = {"name": "kill_kfold", "seed": 0, "model": {"name": "vgg11_lstm"},
           "data": {"num_frames": 4, "size": 32},
           "train": {"lr": 1e-3, "batch_size": 4, "epochs": 2, "optimizer": "sgd"},
           "run": {"num_workers": 0}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # Fabric saves through a temporary file in TMPDIR; on another file system than the run
    # (a node's /tmp, the run on shared storage) its final move is a copy into place.
    other = Path("/dev/shm")
    env = None
    if other.is_dir() and os.access(other, os.W_OK) and other.stat().st_dev != \
            tmp_path.stat().st_dev:
        scratch = other / f"fervid_kill_{os.getpid()}"
        scratch.mkdir(exist_ok=True)
        env = {"TMPDIR": str(scratch)}
    try:
        story = kill_twice_then_finish(
            launcher, lambda out: ["kfold", "--config", path, "--data-root", dfew_release,
                                   "--out", out, "--folds", "1,2", "--no-progress"],
            tmp_path, 11, fold_files, moved=fold_csvs, env=env)
    finally:
        if env:
            shutil.rmtree(env["TMPDIR"], ignore_errors=True)
    out = tmp_path / "killed"
    assert json.loads((out / "metrics.json").read_text())["folds"] == [1, 2]
    logged = epoch_rows(story.whole.events)
    assert logged <= epoch_rows(story.events) <= logged + 2  # an epoch per kill at most


# --- fervid fit --------------------------------------------------------------------------

def test_fit(launcher, tmp_path):
    from test_fit import _release

    root = tmp_path / "fer"
    _release(root, n=6)
    cfg = {"data": {"resize": 24, "size": 20},
           "model": {"name": "frame_resnet", "stem": "small"},
           "train": {"epochs": 4, "batch_size": 8, "lr": 0.01, "optimizer": "sgd"}}
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))

    def finished(out: Path) -> list[str]:  # the whole fit, once its metrics are written
        if not (out / "metrics.json").exists():
            return []
        return sorted(p.relative_to(out).as_posix() for p in out.rglob("*")
                      if p.is_file() and not is_tmp(p.name)
                      and not p.relative_to(out).as_posix().startswith(
                          ("tensorboard/", "checkpoints/")))

    story = kill_twice_then_finish(
        launcher, lambda out: ["fit", "--config", path, "--data-root", root, "--out", out,
                               "--no-progress"], tmp_path, 7,
        finished, moved=lambda out: [])  # scoring is redone until metrics.json is written
    out = tmp_path / "killed"
    assert not (out / "checkpoints" / "fit.pt").exists()
    logged = epoch_rows(story.whole.events)
    assert logged <= epoch_rows(story.events) <= logged + 2


# --- fervid prepare flow -----------------------------------------------------------------

@pytest.fixture(scope="module")
def casme2_sheet(tmp_path_factory) -> Path:
    return make_casme2_like(tmp_path_factory.mktemp("tree"), n_subjects=3, clips_per_subject=3)


def test_prepare_flow(launcher, casme2_sheet, tmp_path):
    root = casme2_sheet.parent / FRAMES_DIR

    def finished(out: Path) -> list[str]:
        return sorted(p.name for p in out.glob("*.png"))

    kill_twice_then_finish(
        launcher, lambda out: ["prepare", "flow", "--dataset", "casme2", "--data-root", root,
                               "--sheet", casme2_sheet, "--protocol", "5class", "--workers",
                               "1", "--no-progress", "--out", out], tmp_path, 2, finished)
    out = tmp_path / "killed"
    assert len(finished(out)) == 9
    assert not list(out.rglob(f"*{TMP_MARK}*"))  # swept, whatever they were beside


# --- fervid prepare faces ----------------------------------------------------------------

@pytest.fixture(scope="module")
def face_clips(tmp_path_factory) -> Path:
    """A raw CASME II tree of 2 subjects x 2 clips of 4-5 frames of a real face photo."""
    from test_prepare_faces import paint_clips

    face = cv2.resize(cv2.imread(str(shared_path("faces", "single_face.jpg"))), (240, 236),
                      interpolation=cv2.INTER_AREA)
    sheet = make_casme2_like(tmp_path_factory.mktemp("raw"), n_subjects=2, clips_per_subject=2,
                             size=32, n_frames=(4, 5), seed=0)
    root = sheet.parent / FRAMES_DIR
    paint_clips(sorted(root.glob("sub*/*")), face)
    return root


def test_prepare_faces(launcher, face_clips, tmp_path):
    def finished(out: Path) -> list[str]:
        """The frames of every clip folder in place, and their face tracks."""
        clips = [p for p in out.glob("sub*/*") if p.is_dir() and not is_tmp(p.name)]
        files = [f for c in clips for f in c.iterdir()]
        tracks = [out / "_face_tracks" / c.parent.name / f"{c.name}.csv" for c in clips]
        return sorted(p.relative_to(out).as_posix() for p in files + tracks)

    def moved(out: Path) -> list[str]:
        """What marks a clip finished: its folder, moved into place after its track (so a
        kill between the two has the clip, track included, done again)."""
        return sorted(p.relative_to(out).as_posix() for p in out.glob("sub*/*")
                      if not is_tmp(p.name))

    kill_twice_then_finish(
        launcher, lambda out: ["prepare", "faces", "--no-progress", "--dataset", "casme2",
                               "--data-root", face_clips, "--out", out, "--size", "48",
                               "--workers", "1"], tmp_path, 4, finished, moved=moved)
    out = tmp_path / "killed"
    assert len(list(out.glob("sub*/*"))) == 4
    assert not list(out.rglob(f"*{TMP_MARK}*"))
