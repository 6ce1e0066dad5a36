"""`fervid predict` end to end on a real video: frames per second and per-stage times, with
the torch model and with its ONNX export through onnxruntime, side by side in one run.

The target: at least 30 video frames per second end to end on a 2-core CPU with the SMA-STN
demo checkpoint (32 px gray DSSI, K = 2). Without ``--checkpoint`` an untrained checkpoint of
the demo's SMA-STN config is used: the weights do not change the work done.

    python benchmarks/predict_speed.py [--video ../shared/data/videos/WolfgangLanger_Pexels.mp4]
        [--checkpoint runs/demo/smastn/models/fold_000.pt] [--repeats 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from fervid.cli.demo import VARIANTS, demo_config
from fervid.models import model_from_config
from fervid.predict import STAGES, predict_video
from fervid.predict.onnx import export_onnx
from fervid.runs.checkpoint import save_checkpoint

TARGET_FPS = 30.0
DEFAULT_VIDEO = (Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"
                 / "WolfgangLanger_Pexels.mp4")


def demo_checkpoint(folder: Path) -> Path:
    cfg = demo_config(VARIANTS[0], epochs=1)
    torch.manual_seed(0)
    model = model_from_config(cfg.model.model_copy(update={"pretrained_path": None}),
                              in_chans=1, num_classes=len(cfg.data.classes))
    return save_checkpoint(folder / "smastn_demo.pt", model.state_dict(), config=cfg,
                           classes=cfg.data.classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video} does not exist (pass --video)")
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.checkpoint or demo_checkpoint(tmp)
        onnx_path = tmp / "model.onnx"
        export_onnx(ckpt, onnx_path)
        runs = {"torch": [], "onnxruntime": []}
        for r in range(args.repeats):  # alternate, so both see the same machine load
            for name, onnx in (("torch", None), ("onnxruntime", onnx_path)):
                runs[name].append(predict_video(args.video, ckpt, out_dir=tmp / f"{name}{r}",
                                                onnx_path=onnx))
    first = runs["torch"][0]
    print(f"{args.video.name}: {first.n_frames} frames at {first.fps:.2f} fps, "
          f"{len(first.windows)} windows of 1 s every 0.5 s; checkpoint "
          f"{args.checkpoint or 'untrained demo SMA-STN'}; median of {args.repeats}")
    header = "".join(f"{s:>15}" for s in (*STAGES, "total"))
    print(f"{'backend':<12}{header}{'frames/s':>10}")
    fps = {}
    for name, results in runs.items():
        med = {s: statistics.median(r.stage_s[s] for r in results) for s in (*STAGES, "total")}
        fps[name] = first.n_frames / med["total"]
        print(f"{name:<12}" + "".join(f"{med[s]:>14.3f}s" for s in (*STAGES, "total"))
              + f"{fps[name]:>10.1f}")
    print(f"torch: {fps['torch'] / TARGET_FPS:.2f}x the {TARGET_FPS:.0f} frames/s target, "
          f"{fps['torch'] / first.fps:.2f}x real time; onnxruntime / torch end to end: "
          f"{fps['onnxruntime'] / fps['torch']:.2f}")


if __name__ == "__main__":
    main()
