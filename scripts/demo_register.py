"""The demo's SMA-STN ablation (``fervid demo``) with ``data.register`` on or off, and the
DSSI of raw clips before and after registration.

Same SynthME, same configs (:func:`fervid.cli.demo.demo_config`), same seed; the only change is
``data.register``: every frame of a clip registered onto its onset before the DSSI, the global
dynamic image or the apex frame is made (:func:`fervid.faces.register_cropped`).

    python scripts/demo_register.py --out runs/demo_register            # registered
    python scripts/demo_register.py --out runs/demo_plain --no-register  # as fervid demo
    python scripts/demo_register.py --out runs/demo_register_s1 --seed 1 --only smastn global_di

``--raw`` draws instead, for each raw clip given (a video, or a folder of numbered frames),
one picture ``OUT/<clip>_dssi_register.png``: its DSSI (uniform, K = 4, grey) from the crops
``fervid prepare faces`` writes by default (``--align clip``: one warp per clip) above the DSSI
from the crops of ``--align register`` (each frame registered onto the onset), with the onset
frame of each. The face is tracked once (dlib HOG), as ``prepare faces`` does. Licence-gated
footage stays out of the repository: write the pictures under ``runs/`` (ignored).

    python scripts/demo_register.py --out runs/register_gallery \\
        --raw ../shared/data/casme2_raw/EP02_01f_30fps.avi \\
              ../shared/data/casme2_raw/CASME2_RAW_selected/sub01/EP02_01f
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import cv2
import numpy as np

from fervid.cli.demo import (
    DEMO_CLIPS,
    DEMO_FRAME_SIZE,
    DEMO_SUBJECTS,
    SHEET,
    VARIANTS,
    ablation_table,
    demo_config,
)
from fervid.config import LosoConfig, deep_merge
from fervid.faces import MOTIONS, track_faces
from fervid.prepare.face_clip import FaceSettings, clip_crops, face_detector, read_clip_frames
from fervid.prepare.raw_clips import ClipJob
from fervid.protocol.loso import load_loso_data, run_loso
from fervid.representation.dssi import dssi
from fervid.synth import make_synthme
from fervid.synth.casme2_like import FRAMES_DIR

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def raw_clip_job(source: Path, out: Path) -> ClipJob:
    """A raw clip as ``prepare faces`` reads it: a video, or a folder's frames in number order
    (CASME II ``img{N}.jpg``, at its 200 fps)."""
    if source.is_dir():
        frames = sorted((p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                        key=lambda p: [int(t) if t.isdigit() else t
                                       for t in re.split(r"(\d+)", p.name)])
        if len(frames) < 2:
            raise SystemExit(f"error: {source}: fewer than 2 frames")
        return ClipJob(source.name, source, out, frames=tuple(frames), fps=200.0)
    if not source.is_file():
        raise SystemExit(f"error: {source}: no such video or frame folder")
    return ClipJob(source.stem, source, out)


def dssi_rows(crops: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """The K = 4 local DIs and the global DI (uniform protocol) of grey crops, and the onset."""
    grey = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) if c.ndim == 3 else c for c in crops])
    result = dssi(grey, 0, len(grey) // 2, len(grey) - 1, protocol="uniform", n_segments=4)
    return [*result.local, result.global_], grey[0]


def stretched(image: np.ndarray) -> np.ndarray:
    """A dynamic image stretched over its 1st..99th percentiles to 0..255 (one outlier pixel
    does not grey out the rest)."""
    image = np.asarray(image, np.float32).squeeze()
    lo, hi = np.percentile(image, [1, 99])
    return np.clip((image - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)


def raw_gallery(source: Path, out: Path, *, size: int, motion: str) -> Path:
    """``out/<clip>_dssi_register.png``: the clip's DSSI from ``clip`` crops (top) and from
    registered crops (bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    job = raw_clip_job(source, out / "unused")
    track = track_faces(read_clip_frames(job), detector=face_detector("hog"), detect_every=5,
                        fps=job.fps, source=str(source))
    rows = {}
    for name, settings in (
            ("before: one warp per clip (--align clip)",
             FaceSettings("casme2", size, align="clip")),
            (f"after: registered onto the onset (--align register, {motion})",
             FaceSettings("casme2", size, align="register", motion=motion))):
        rows[name] = dssi_rows([crop for crop, _ in clip_crops(job, settings, track)])
    titles = ["onset frame", *(f"segment {k + 1}" for k in range(4)), "global DI"]
    fig, axes = plt.subplots(2, len(titles), figsize=(1.9 * len(titles), 4.9))
    fig.subplots_adjust(left=0.01, right=0.99, top=0.84, bottom=0.01, hspace=0.32, wspace=0.04)
    for r, (name, (tiles, onset)) in enumerate(rows.items()):
        for c, (title, image) in enumerate(zip(titles, [onset, *map(stretched, tiles)],
                                               strict=True)):
            axes[r, c].imshow(image, cmap="gray", vmin=0, vmax=255)
            axes[r, c].set_title(f"{name}\n{title}" if c == 0 else f"\n{title}", fontsize=8,
                                 loc="left" if c == 0 else "center")
            axes[r, c].axis("off")
    fig.suptitle(f"{source.name}: {len(track)} frames, {size} px crops; DSSI uniform, K = 4, "
                 "grey; each DI stretched to its 1-99th percentiles", fontsize=9)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{job.key}_dssi_register.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--raw", type=Path, nargs="+", metavar="CLIP",
                        help="draw the DSSI of these raw clips (videos or frame folders) "
                             "before and after registration, instead of the ablation")
    parser.add_argument("--size", type=int, default=224, help="--raw: crop side, pixels")
    parser.add_argument("--motion", default="euclidean", choices=MOTIONS,
                        help="--raw: the registration's motion model")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--register", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--only", nargs="+", metavar="MODEL",
                        help="rows to run (default all): " + " ".join(v.name for v in VARIANTS))
    args = parser.parse_args()
    if args.raw:
        for source in args.raw:
            started = time.monotonic()
            path = raw_gallery(source, args.out, size=args.size, motion=args.motion)
            print(f"wrote {path} ({time.monotonic() - started:.0f} s)", flush=True)
        return

    data_dir = args.out / "synthme"
    if not (data_dir / SHEET).exists():
        make_synthme(data_dir, n_subjects=DEMO_SUBJECTS, clips_per_subject=DEMO_CLIPS,
                     size=DEMO_FRAME_SIZE, seed=0)
    frames = data_dir / FRAMES_DIR
    rows = []
    for variant in (v for v in VARIANTS if args.only is None or v.name in args.only):
        base = demo_config(variant, epochs=args.epochs, seed=args.seed).model_dump()
        cfg = LosoConfig.model_validate(deep_merge(base, {"data": {"register": args.register}}))
        started = time.monotonic()
        data = load_loso_data(cfg, frames, cache_dir=args.out / "cache", progress=False)
        m = run_loso(cfg, data, args.out / variant.name, data_root=str(frames),
                     progress=False).metrics
        rows.append({"model": variant.name, "uf1": m["uf1"], "uar": m["uar"], "acc": m["acc"],
                     "f1_macro": m["f1_macro"], "n_samples": m["n_samples"],
                     "n_folds": m["n_folds"], "wall_s": round(time.monotonic() - started, 1)})
        print(variant.name, {k: round(v, 4) for k, v in m.items() if k in ("uf1", "uar", "acc")},
              flush=True)
    (args.out / "ablation.json").write_text(json.dumps(
        {"epochs": args.epochs, "seed": args.seed, "register": args.register, "rows": rows},
        indent=2))
    from rich.console import Console

    Console().print(ablation_table(rows, args.epochs))


if __name__ == "__main__":
    main()
