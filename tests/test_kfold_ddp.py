"""``fervid kfold`` under torchrun: two gloo (CPU) ranks compute what one process computes.

The test runs this file as a script, once as one process and once under
``torch.distributed.run --nproc_per_node 2``. Each process wraps a few fervid functions to
record what it saw (the clips of its first batch, its first loss, its BatchNorm layers and
their running statistics after the step, the run files it wrote), runs ``fervid kfold`` and
dumps the record to ``TRACE/rank<R>.json``. No debugging hook lives in fervid itself.

One fold, one epoch, and a batch of all six training clips: the epoch is one optimisation
step. Dropout is off, since its masks are drawn per rank and cannot match one process's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.distributed as dist
from PIL import Image

from conftest import shared_path
from dfew_fixture import fold1_release

pytestmark = pytest.mark.skipif(
    not (dist.is_available() and dist.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build")

CONFIG = {
    "name": "ddp_r3d_18", "seed": 0,
    "model": {"name": "r3d_18", "drop_rate": 0.0},
    "data": {"num_frames": 8, "size": 32},
    "train": {"lr": 1e-3, "batch_size": 6, "epochs": 1},
    "run": {"num_workers": 0, "accelerator": "cpu", "precision": "32-true"},
}


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    root = fold1_release(tmp_path_factory.mktemp("dfew") / "DFEW",
                         shared_path("annotations", "dfew"))
    # The fixture's clips all show the same frames, so any subset of them has the same
    # BatchNorm statistics: give each clip its own brightness and noise, so that the
    # statistics of half a batch differ from those of the whole one.
    for c, clip in enumerate(sorted((root / "Clip").glob("*/*"))):
        for k, frame in enumerate(sorted(clip.glob("*.jpg"))):
            rng = np.random.default_rng([c, k])
            pixels = 40 * (c % 5) + rng.integers(0, 80, (16, 16, 3))
            frame.unlink()  # a hard link to a shared frame: replace, do not overwrite
            Image.fromarray(pixels.astype(np.uint8)).save(frame, quality=95)
    return root


def _start(tmp_path: Path, release: Path, devices: int) -> tuple[subprocess.Popen, Path, Path]:
    cfg, out, trace = (tmp_path / "cfg.json", tmp_path / f"run{devices}",
                       tmp_path / f"trace{devices}")
    cfg.write_text(json.dumps(CONFIG))
    trace.mkdir()
    launch = ([sys.executable] if devices == 1 else
              [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", str(devices)])
    cmd = [*launch, __file__, str(trace), "kfold", "--config", str(cfg), "--data-root",
           str(release), "--out", str(out), "--folds", "1", "--devices", str(devices),
           "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    return proc, out, trace


def _finish(proc: subprocess.Popen, trace: Path) -> dict[int, dict]:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-4000:]
    return {int(p.stem.removeprefix("rank")): json.loads(p.read_text())
            for p in trace.glob("rank*.json")}


def test_two_ranks_split_each_batch_sync_batchnorm_and_write_once(tmp_path, release):
    import pandas as pd

    from fervid.files import TMP_MARK

    one_proc, one_out, one_trace = _start(tmp_path, release, 1)
    two_proc, two_out, two_trace = _start(tmp_path, release, 2)
    (one,), two = _finish(one_proc, one_trace).values(), _finish(two_proc, two_trace)
    assert sorted(two) == [0, 1] and {t["world_size"] for t in two.values()} == {2}
    r0, r1 = two[0], two[1]

    # Each rank takes half of the batch: together, the one-process batch, each clip once.
    assert one["batch_sizes"] == [6] and r0["batch_sizes"] == r1["batch_sizes"] == [3]
    assert not set(r0["train_items"]) & set(r1["train_items"])
    assert sorted(r0["train_items"] + r1["train_items"]) == sorted(one["train_items"])
    # Every 2nd clip of one shuffled order, so each rank's logits are those rows of the
    # one-process logits (BatchNorm over the whole batch, not over each rank's half).
    for rank, share in ((r0, slice(0, None, 2)), (r1, slice(1, None, 2))):
        assert rank["train_items"] == one["train_items"][share]
        assert np.ravel(rank["logits"][0]) == pytest.approx(
            np.ravel(one["logits"][0][share]), abs=1e-4)
    # The first step's loss, averaged over the ranks' halves, is the one-process loss.
    assert r0["losses"][0] != r1["losses"][0]
    assert (r0["losses"][0] + r1["losses"][0]) / 2 == pytest.approx(one["losses"][0], abs=1e-5)
    logged = [pd.read_csv(o / "train_logs" / "fold_001.csv")["loss"] for o in (one_out, two_out)]
    assert logged[1].tolist() == pytest.approx(logged[0].tolist(), abs=1e-5)

    # BatchNorm is synchronised: SyncBatchNorm under DDP, and the running statistics after
    # the step are the same on both ranks and equal to one process's over the whole batch.
    assert one["bn_types"] and "SyncBatchNorm" not in one["bn_types"]
    assert r0["bn_types"] == r1["bn_types"] == ["SyncBatchNorm"]
    assert r0["running"] == pytest.approx(r1["running"], abs=1e-6)
    assert r0["running"] == pytest.approx(one["running"], rel=1e-4, abs=1e-5)

    # Only rank 0 writes: one fold file, one metrics.json, no leftovers.
    assert r1["writes"] == []
    assert r0["writes"].count("metrics.json") == 1 and r0["writes"].count("fold_001.csv") == 1
    assert [p.relative_to(two_out).as_posix() for p in two_out.rglob("metrics.json")] == [
        "metrics.json"]
    assert sorted(p.name for p in (two_out / "folds").iterdir()) == ["fold_001.csv"]
    assert not [p for p in two_out.rglob("*") if TMP_MARK in p.name]
    assert len(pd.read_csv(two_out / "folds" / "fold_001.csv")) == 3


def test_a_batch_the_ranks_cannot_share_evenly_is_refused(release, tmp_path):
    from fervid.config import ConfigError, KfoldConfig
    from fervid.protocol.kfold import run_kfold

    cfg = KfoldConfig.model_validate({**CONFIG, "train": {**CONFIG["train"], "batch_size": 3},
                                      "run": {**CONFIG["run"], "devices": 2}})
    with pytest.raises(ConfigError, match="multiple of the 2 DDP ranks"):
        run_kfold(cfg, release, tmp_path / "run", folds=[1], progress=False)
    assert not (tmp_path / "run").exists()


# --- Run as a script (one rank of the test above) -------------------------------------------

def _record_and_run(trace: Path, argv: list[str]) -> None:
    import torch
    from torch.nn.modules.batchnorm import _BatchNorm

    import fervid.runs.results
    import fervid.runs.store
    from fervid.cli import app
    from fervid.representation.video_clips import DfewClipDataset
    from fervid.training import trainer

    rank = int(os.environ.get("RANK", "0"))
    seen = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "train_items": [], "batch_sizes": [], "losses": [], "logits": [], "writes": []}

    get_item = DfewClipDataset.__getitem__

    def item(self, i):
        if self.train:
            seen["train_items"].append(self.clips[i].clip_id)
        return get_item(self, i)

    one_epoch = trainer.train_one_epoch

    def epoch(model, criterion, *args, **kwargs):
        def spy(out, y):
            loss, parts = criterion(out, y)
            seen["losses"].append(float(loss))
            seen["logits"].append(out.logits.detach().tolist())
            seen["batch_sizes"].append(len(y))
            return loss, parts

        stats = one_epoch(model, spy, *args, **kwargs)
        bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
        seen["bn_types"] = sorted({type(m).__name__ for m in bns})
        seen["running"] = torch.cat([t for m in bns for t in (m.running_mean, m.running_var)]
                                    ).tolist()
        return stats

    def writes(module):
        write = module.atomic_write

        def spy(path, *args, **kwargs):
            seen["writes"].append(Path(path).name)
            return write(path, *args, **kwargs)

        module.atomic_write = spy

    DfewClipDataset.__getitem__ = item
    trainer.train_one_epoch = epoch
    writes(fervid.runs.results)
    writes(fervid.runs.store)
    try:
        app(args=argv, prog_name="fervid", standalone_mode=False)
    finally:
        (trace / f"rank{rank}.json").write_text(json.dumps(seen))


if __name__ == "__main__":
    _record_and_run(Path(sys.argv[1]), sys.argv[2:])
