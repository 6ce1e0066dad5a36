"""GPU check: what a DFEW 5-fold run of each k-fold network costs on this machine, in one run.

For every DFEW benchmark network (the registered k-fold models, SMA-STN left out unless named)
and Former-DFER, at the papers' input (16 frames of 112 px, batch 24), it measures training
clips/s in ``bf16-mixed`` and in ``32-true``, alternately by

- fervid's training path: the network's ``configs/dfew_<name>.yaml`` (its loss and optimiser),
  :func:`fervid.training.setup.make_fabric` and the shared loop
  (:func:`fervid.training.loop.train_one_epoch`), as ``fervid kfold`` builds them;
- a plain PyTorch loop: the same network, Adam, cross-entropy, ``torch.autocast`` for bf16,
  ``loss.item()`` every step (as the published training scripts log it).

The clips are random tensors already on the device, so these rates are the model's alone. The
loading rate comes beside them: fervid's clip dataset (``data.source: clip_224x224``, TIM
sampling, 112 px) over a generated DFEW-like tree of 256-px JPEG frames (cut from
``../shared/data/videos`` as ``dfew_loader_speed.py`` does when they are there, else drawn),
through a DataLoader with one worker per core and in one process.

Implied time for DFEW's 5 folds: every one of the 11,697 clips sits in the training lists of 4
of the 5 folds, so the folds train ``4 x 11,697 x epochs`` clips together, and

    hours = 4 x 11,697 x epochs / min(training clips/s, loading clips/s) / 3600

(epochs from the network's config; the test passes, 11,697 clips forward once, left out).
GFLOPs are per clip, forward, counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs
per multiply-add; halve for multiply-adds); TFLOP/s is ``3 x GFLOPs x clips/s`` (a training
step is about 3 forward passes).

    python benchmarks/gpu_check.py [--json OUT] [--networks c3d former_dfer ...] [--steps 10]
    python benchmarks/gpu_check.py --costs    # parameters and GFLOPs only, no training
    python benchmarks/gpu_check.py --smoke    # tiny sizes on the CPU: checks that it runs
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dfew_loader_speed  # noqa: E402  (a sibling script: its tree builder)

from fervid.config import KfoldConfig, load_config  # noqa: E402
from fervid.datasets.dfew import DfewClip  # noqa: E402
from fervid.losses import build_training_loss  # noqa: E402
from fervid.models import create_model, model_from_config, model_names  # noqa: E402
from fervid.models.video import VIDEO_MODELS  # noqa: E402
from fervid.representation.video_clips import DfewClipDataset, clip_dssi_params  # noqa: E402
from fervid.training.loop import train_one_epoch  # noqa: E402
from fervid.training.setup import make_fabric, make_optimizer, make_scheduler  # noqa: E402
from fervid.training.trainer import seeded  # noqa: E402

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DFEW_CLIPS, DFEW_FOLDS = 11_697, 5
PRECISIONS = ("bf16-mixed", "32-true")
NUM_CLASSES = 7


@dataclass(frozen=True)
class Settings:
    """Clip size, batch and how long each measurement runs."""

    frames: int = 16
    size: int = 112
    batch: int = 24
    warmup: int = 3
    steps: int = 10
    repeats: int = 3
    #: Clips the loading rate is measured over (0: 96 per worker, so that startup is small).
    loader_clips: int = 0
    frames_per_clip: int = 40
    workers: int = os.cpu_count() or 1


SMOKE = Settings(frames=2, size=32, batch=2, warmup=0, steps=1, repeats=1, loader_clips=4,
                 frames_per_clip=8, workers=2)


def network_config(name: str, s: Settings) -> KfoldConfig:
    """The k-fold config of ``name`` (``configs/dfew_<name>.yaml`` where shipped, else the
    protocol's defaults) at the clip size and batch of ``s``."""
    path = CONFIGS / f"dfew_{name}.yaml"
    sets = [f"data.num_frames={s.frames}", f"data.size={s.size}", f"train.batch_size={s.batch}"]
    if not path.is_file():
        sets.append(f"model.name={name}")
    return load_config(path if path.is_file() else None, sets, schema=KfoldConfig)


def clip_shape(cfg: KfoldConfig) -> tuple[int, ...]:
    """One batch's input shape: ``(B, 3, T, S, S)``, or a DSSI stack ``(B, K+1, 3, S, S)``."""
    d, b = cfg.data, cfg.train.batch_size
    if d.representation == "dssi":
        return (b, clip_dssi_params(d.num_frames)["n_segments"] + 1, 3, d.size, d.size)
    return (b, 3, d.num_frames, d.size, d.size)


def costs(name: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Parameters (sum of ``numel``) and forward FLOPs of one clip (2 per multiply-add), on
    the meta device; attention through the math kernel so that its products are counted."""
    with torch.device("meta"):
        model = create_model(name, in_chans=3, num_classes=NUM_CLASSES).eval()  # BN, 1 clip
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(torch.empty(1, *shape[1:]))
    return sum(p.numel() for p in model.parameters()), counter.get_total_flops()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class FervidPath:
    """What ``fervid kfold`` trains a fold with: the config's loss and optimiser, Fabric, the
    shared loop, around ``net`` (built from the config)."""

    def __init__(self, net: torch.nn.Module, cfg: KfoldConfig, precision: str,
                 accelerator: str, labels: torch.Tensor):
        self.fabric = make_fabric(accelerator, precision)
        criterion = seeded(1, lambda: build_training_loss(
            cfg.train, num_classes=NUM_CLASSES, feature_dim=net.num_features,
            train_labels=labels))
        optimizer = make_optimizer(cfg.train, [*net.parameters(), *criterion.parameters()])
        self.model, self.optimizer = self.fabric.setup(net, optimizer)
        # The config's schedule (one-cycle for Former-DFER), over more steps than are timed.
        self.scheduler = make_scheduler(cfg.train, self.optimizer, 100_000)
        self.criterion = self.fabric.to_device(criterion)
        self.device = self.fabric.device

    def run(self, batches: list) -> None:
        train_one_epoch(self.model, self.criterion, self.optimizer, batches,
                        self.fabric.backward, self.scheduler)


class PlainPath:
    """``net``, Adam, cross-entropy and autocast, nothing else."""

    def __init__(self, net: torch.nn.Module, precision: str, device: torch.device):
        self.model = net.to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.bf16, self.device = precision == "bf16-mixed", device

    def run(self, batches: list) -> None:
        self.model.train()
        for x, y in batches:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = self.model(x).logits
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss.item()


def training_rates(cfg: KfoldConfig, s: Settings, accelerator: str) -> dict[str, dict]:
    """For each precision: median clips/s of the fervid path and the plain loop (their timed
    windows alternated), and the peak device memory of both (GiB; 0 on the CPU).

    The network (its config's) is built once; each path of each precision starts from a copy.
    """
    labels = torch.arange(s.batch) % NUM_CLASSES
    net = seeded(0, lambda: model_from_config(cfg.model, in_chans=3, num_classes=NUM_CLASSES))
    x = torch.randn(clip_shape(cfg), generator=torch.Generator().manual_seed(0))
    result = {}
    for precision in PRECISIONS:
        fervid = FervidPath(copy.deepcopy(net), cfg, precision, accelerator, labels)
        device = fervid.device
        paths = {"fervid": fervid, "plain": PlainPath(copy.deepcopy(net), precision, device)}
        batch = (x.to(device), labels.to(device))
        for path in paths.values():
            path.run([batch] * s.warmup)
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        rates: dict[str, list[float]] = {k: [] for k in paths}
        for _ in range(s.repeats):
            for key, path in paths.items():
                _sync(device)
                start = time.perf_counter()
                path.run([batch] * s.steps)
                _sync(device)
                rates[key].append(s.steps * s.batch / (time.perf_counter() - start))
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
        result[precision] = {**{k: statistics.median(v) for k, v in rates.items()},
                             "peak_gib": peak}
        del paths, fervid, batch
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return result


def _drawn_frame(rng: np.random.Generator, size: int) -> Image.Image:
    # Smooth colour fields plus sensor noise: the file size (about 13 kB) and decoding time of
    # the 256-px frames cut from the real face videos.
    coarse = rng.uniform(0, 255, (8, 8, 3)).astype(np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
    noisy = image.astype(np.float32) + rng.normal(0.0, 3.0, image.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def frame_tree(root: Path, clips: int, frames_per_clip: int) -> tuple[list[list[Path]], str]:
    """Clip folders of 256-px JPEGs: cut from the real videos where they are, else drawn (a
    few dozen distinct frames, hard-linked over the clips: decoding cost is per file)."""
    if any(dfew_loader_speed.VIDEOS.glob("*.mp4")):
        return dfew_loader_speed.build_tree(root, clips, frames_per_clip), "real videos"
    rng = np.random.default_rng(0)
    stock = root / "stock"
    stock.mkdir(parents=True, exist_ok=True)
    drawn = []
    for k in range(min(48, clips * frames_per_clip)):
        path = stock / f"{k}.jpg"
        _drawn_frame(rng, dfew_loader_speed.FRAME_SIZE).save(path, quality=90)
        drawn.append(path)
    tree = []
    for c in range(clips):
        folder = root / f"{c + 1:05d}"
        folder.mkdir(exist_ok=True)
        paths = [folder / f"{c + 1:05d}_{k + 1:05d}.jpg" for k in range(frames_per_clip)]
        for k, path in enumerate(paths):
            if not path.exists():
                os.link(drawn[(c * 7 + k) % len(drawn)], path)
        tree.append(paths)
    return tree, "drawn"


def loading_rates(s: Settings, scratch: Path) -> dict:
    """Clips/s of fervid's clip dataset over a generated tree, with ``s.workers`` DataLoader
    workers (second pass of persistent workers) and in one process."""
    n_clips = s.loader_clips or 96 * s.workers
    tree, frames = frame_tree(scratch / "clip_224x224", n_clips, s.frames_per_clip)
    clips = [DfewClip(f"{i + 1:05d}", i % NUM_CLASSES, tuple(p)) for i, p in enumerate(tree)]
    data = network_config("r3d_18", s).data
    dataset = DfewClipDataset(clips, data, train=True, seed=0)
    loader = DataLoader(dataset, batch_size=s.batch, num_workers=s.workers,
                        persistent_workers=True, prefetch_factor=4)
    for _ in loader:  # starts the workers and warms the page cache
        pass
    start = time.perf_counter()
    for _ in loader:
        pass
    parallel = len(dataset) / (time.perf_counter() - start)
    del loader
    one = range(min(len(clips), 48))
    start = time.perf_counter()
    for i in one:
        dataset[i]
    single = len(one) / (time.perf_counter() - start)
    return {"clips_per_s": parallel, "one_process_clips_per_s": single, "workers": s.workers,
            "clips": len(clips), "frames_per_clip": s.frames_per_clip, "frames": frames}


def dfew_hours(epochs: int, rate: float) -> float:
    """Hours to train DFEW's 5 folds at ``rate`` clips/s (see the module docstring)."""
    return (DFEW_FOLDS - 1) * DFEW_CLIPS * epochs / rate / 3600


def check(networks: list[str], s: Settings, accelerator: str, scratch: Path) -> dict:
    """Every measurement, as the JSON written by ``--json``."""
    loader = loading_rates(s, scratch)
    rows = []
    for name in networks:
        cfg = network_config(name, s)
        params, flops = costs(name, clip_shape(cfg))
        row = {"network": name, "params_m": params / 1e6, "gflops": flops / 1e9,
               "epochs": cfg.train.epochs, "optimizer": cfg.train.optimizer}
        for precision, r in training_rates(cfg, s, accelerator).items():
            tag = "bf16" if precision == "bf16-mixed" else "fp32"
            row |= {f"fervid_{tag}": r["fervid"], f"plain_{tag}": r["plain"],
                    f"ratio_{tag}": r["fervid"] / r["plain"], f"peak_gib_{tag}": r["peak_gib"],
                    f"tflops_{tag}": 3 * flops * r["fervid"] / 1e12}
        row["hours_5fold"] = dfew_hours(cfg.train.epochs,
                                        min(row["fervid_bf16"], loader["clips_per_s"]))
        rows.append(row)
        print(f"  {name}: done", file=sys.stderr, flush=True)
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              and accelerator != "cpu" else f"CPU ({os.cpu_count()} cores)")
    return {"device": device, "torch": torch.__version__, "settings": asdict(s),
            "hours_formula": "4 x 11697 x epochs / min(fervid bf16 clips/s, loading clips/s) "
                             "/ 3600", "loader": loader, "networks": rows}


def table(result: dict) -> str:
    """The markdown table of :func:`check`'s result."""
    s = result["settings"]
    lines = [f"{result['device']}, torch {result['torch']}: training clips/s at "
             f"{s['frames']}x{s['size']}² batch {s['batch']} (median of {s['repeats']} x "
             f"{s['steps']} steps), fervid beside a plain loop", "",
             "| network | params M | GFLOPs | bf16 fervid | bf16 plain | ratio | bf16 TFLOP/s "
             "| fp32 fervid | fp32 plain | ratio | peak GiB | epochs | 5-fold hours |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["networks"]:
        lines.append(
            f"| {r['network']} | {r['params_m']:.1f} | {r['gflops']:.1f} | {r['fervid_bf16']:.1f} "
            f"| {r['plain_bf16']:.1f} | {r['ratio_bf16']:.2f} | {r['tflops_bf16']:.1f} "
            f"| {r['fervid_fp32']:.1f} | {r['plain_fp32']:.1f} | {r['ratio_fp32']:.2f} "
            f"| {r['peak_gib_bf16']:.1f} | {r['epochs']} | {r['hours_5fold']:.2f} |")
    ld = result["loader"]
    lines += ["", f"Loading ({ld['frames']} 256-px JPEGs, {ld['clips']} clips of "
              f"{ld['frames_per_clip']} frames, TIM {s['frames']} frames at {s['size']} px): "
              f"{ld['clips_per_s']:.1f} clips/s with {ld['workers']} workers, "
              f"{ld['one_process_clips_per_s']:.1f} in one process. Peak GiB: device memory "
              "in bf16 with both paths' models and optimisers resident.",
              f"5-fold hours = {result['hours_formula']}."]
    return "\n".join(lines)


def costs_table(networks: list[str], s: Settings) -> str:
    lines = [f"Forward cost of one clip of {s.frames}x{s.size}² (FlopCounterMode):", "",
             "| network | params M | GFLOPs (2 / multiply-add) | G multiply-adds |",
             "|---|---|---|---|"]
    for name in networks:
        params, flops = costs(name, clip_shape(network_config(name, s)))
        lines.append(f"| {name} | {params / 1e6:.2f} | {flops / 1e9:.2f} | {flops / 2e9:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one step: checks it runs")
    ap.add_argument("--costs", action="store_true", help="parameters and GFLOPs only")
    ap.add_argument("--networks", nargs="+", help="default: every k-fold network but smastn")
    ap.add_argument("--steps", type=int, help="timed steps per window")
    ap.add_argument("--repeats", type=int, help="timed windows per path")
    ap.add_argument("--workers", type=int, help="loader workers (default: one per core)")
    ap.add_argument("--accelerator", default="auto", help="auto, cuda or cpu")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)
    s = SMOKE if args.smoke else Settings()
    s = replace(s, **{k: v for k, v in (("steps", args.steps), ("repeats", args.repeats),
                                        ("workers", args.workers)) if v is not None})
    # The DFEW paper's order, then the other k-fold networks (Former-DFER).
    networks = args.networks or list(dict.fromkeys(
        n for n in (*VIDEO_MODELS, *model_names("kfold")) if n != "smastn"))
    unknown = sorted(set(networks) - set(model_names("kfold")))
    if unknown:
        ap.error(f"not k-fold networks: {', '.join(unknown)}")
    if s.workers < 1:
        ap.error("--workers must be at least 1")
    if args.costs:
        print(costs_table(networks, s))
        return None
    accelerator = args.accelerator
    if accelerator == "auto":
        accelerator = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if accelerator == "cpu" and not args.smoke:
        print("no GPU: the full check on the CPU takes hours; --smoke checks that it runs",
              file=sys.stderr)
    threads = torch.get_num_threads()
    if args.smoke:  # tiny tensors: one thread wastes nothing, and spins on no busy core
        torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory() as scratch:
            result = check(networks, s, accelerator, Path(scratch))
    finally:
        torch.set_num_threads(threads)
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
