"""sha256 of ``predictions.csv`` for the runs whose behaviour a refactor must keep.

    python scripts/behaviour_sums.py OUT_DIR [--data ../shared/data] [--only NAME ...]

Runs, each into ``OUT_DIR/NAME``: the demo (``fervid demo``), 20 epochs of STSTNet on the
MEGC2019 composite in float32, the DFEW k-fold fixture (fold 1's first 6 training and 3 test
clips, generated frames) for seeds 0-2 with r3d_18 + EC-STFL and with SMA-STN, and ``fervid
fit`` on a generated image folder. For the k-fold runs the fold file (with the class
probabilities, which ``predictions.csv`` leaves out) is summed too. Prints one ``sha256  NAME``
line per run; a run whose data is absent is left out. Compare two checkouts by running this in
each.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def fervid(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fervid", *args, "--no-progress"], check=True,
                   cwd=ROOT)


def kfold_config(path: Path, model: str, seed: int, ecstfl: bool) -> Path:
    lines = [f"name: sums_{model}", f"seed: {seed}", f"model: {{name: {model}}}",
             "data: {num_frames: 8, size: 32, representation: %s}"
             % ("dssi" if model == "smastn" else "clip"),
             "train: {lr: 0.001, batch_size: 3, epochs: 2%s}"
             % (", feature_loss: ec_stfl" if ecstfl else ""),
             "run: {num_workers: 0}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def image_folder(root: Path) -> Path:
    """Three classes told apart by where a bright band lies (as tests/test_fit.py)."""
    import cv2

    rng = np.random.default_rng(0)
    for split in ("train", "validation", "test"):
        for k, name in enumerate(("angry", "happy", "sad")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(12):
                img = rng.integers(0, 60, (24, 24), dtype=np.uint8)
                img[2 + 7 * k:8 + 7 * k] += 150
                cv2.imwrite(str(folder / f"{split}_{i}.png"), img)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Path] = {}

    def want(name: str) -> bool:
        return not args.only or any(name.startswith(o) for o in args.only)

    if want("demo"):
        fervid("demo", "--out", str(out / "demo"))
        runs.update({f"demo/{p.parent.relative_to(out / 'demo')}": p
                     for p in sorted((out / "demo").rglob("predictions.csv"))})
    flow = args.data / "megc2019_flow"
    if want("ststnet20") and flow.exists():
        fervid("loso", "--config", "configs/ststnet_megc2019.yaml", "--data-root", str(flow),
               "--out", str(out / "ststnet20"), "--epochs", "20", "--seed", "0",
               "--set", "run.precision=32-true")
        runs["ststnet20"] = out / "ststnet20" / "predictions.csv"
    annotations = args.data / "annotations" / "dfew"
    if want("kfold") and annotations.exists():
        from dfew_fixture import fold1_release

        release = out / "dfew_fixture" / "DFEW"
        if not release.exists():
            fold1_release(release, annotations)
        for model, ecstfl in (("r3d_18", True), ("smastn", False)):
            for seed in (0, 1, 2):
                name = f"kfold_{model}_s{seed}"
                cfg = kfold_config(out / f"{name}.yaml", model, seed, ecstfl)
                fervid("kfold", "--config", str(cfg), "--data-root", str(release),
                       "--out", str(out / name), "--folds", "1")
                runs[name] = out / name / "predictions.csv"
                # predictions.csv holds no probabilities; the fold file does.
                runs[f"{name}/folds/fold_001.csv"] = out / name / "folds" / "fold_001.csv"
    if want("fit"):
        folder = image_folder(out / "fit_images")
        cfg = out / "fit.yaml"
        cfg.write_text("data: {dataset: image_folder, resize: 24, size: 20}\n"
                       "model: {name: frame_resnet, stem: small}\n"
                       "train: {epochs: 3, batch_size: 8, lr: 0.01, optimizer: sgd}\n")
        for seed in (0, 1, 2):
            name = "fit" if seed == 0 else f"fit_s{seed}"
            fervid("fit", "--config", str(cfg), "--data-root", str(folder), "--out",
                   str(out / name), "--seed", str(seed))
            runs[name] = out / name / "predictions.csv"
    for name, path in runs.items():
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
        print(f"{digest}  {name}  {figures(path.parent)}")


def figures(run: Path) -> str:
    """The headline metrics of a run directory, for runs whose sums differ."""
    metrics = run / "metrics.json"
    if not metrics.exists():
        return ""
    m = json.loads(metrics.read_text())
    if "uf1" in m:
        return f"UF1 {m['uf1']:.4f} UAR {m['uar']:.4f}"
    if "pooled" in m:
        return f"WAR {m['pooled']['war']:.4f} UAR {m['pooled']['uar']:.4f}"
    if "test" in m:
        return (f"val acc {m['validation']['acc']:.4f} test acc {m['test']['acc']:.4f} "
                f"test UAR {m['test']['uar']:.4f} (epoch {m['selection']['epoch']})")
    return ""


if __name__ == "__main__":
    main()
