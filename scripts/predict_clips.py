"""`fervid predict` over every real clip: ../shared/data/videos (no labels) and the MAFW GIFs
(label: the file name's prefix before the numeric id, ``fear-sad-anxiety_09878.gif`` →
``fear-sad-anxiety``).

Prints one row per clip: frames, frames with a face, the most faces the detector saw in one
frame, the predicted clip label, the clip's own label and whether the prediction is one of its
(canonical) classes (``-`` when none of them is a class of the model, e.g. ``contempt``), then
the wall time. Made for frame models
(``fervid fit``'s RUN/model.pt), whose face frames are counted; window models run too.

    python scripts/predict_clips.py RUN/model.pt [--out OUT] [--face largest]
        [--videos ../shared/data/videos] [--gifs ../shared/data/mafw_samples]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

from fervid.datasets.class_names import canonical_class
from fervid.errors import FervidError
from fervid.predict import predict_video
from fervid.runs.checkpoint import load_checkpoint

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm")


def clip_label(path: Path) -> str:
    """A MAFW GIF's label: the name's ``_``-separated parts before the first all-digit one."""
    if path.suffix.lower() != ".gif":
        return ""
    parts = path.stem.split("_")
    ids = [i for i, part in enumerate(parts) if part.isdigit()]
    return "_".join(parts[:ids[0]]) if ids else path.stem


def label_hit(predicted: str, label: str, classes: tuple[str, ...]) -> str:
    """``yes``/``no``: the prediction is one of the label's classes; ``-``: none of them is
    a class of the model (or no label)."""
    names = {canonical_class(p) for p in re.split(r"[-_]", label) if p} - {None}
    names &= set(classes)
    if not names:
        return "-"
    return "yes" if predicted in names else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="RUN/model.pt (or any fervid checkpoint)")
    parser.add_argument("--videos", type=Path, default=SHARED / "videos")
    parser.add_argument("--gifs", type=Path, default=SHARED / "mafw_samples")
    parser.add_argument("--out", type=Path, default=None,
                        help="Keep each clip's predict outputs under OUT/<clip>/.")
    parser.add_argument("--face", default="largest", help="--face rule of fervid predict")
    args = parser.parse_args()
    clips = sorted(p for p in args.videos.glob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    clips += sorted(args.gifs.glob("*.gif"))
    if not clips:
        raise SystemExit(f"no clips under {args.videos} or {args.gifs}")

    rows, hits = [], []
    started = time.perf_counter()
    ckpt = load_checkpoint(args.checkpoint)  # once: it is read again for every clip otherwise
    with tempfile.TemporaryDirectory() as tmp:
        out_root = args.out or Path(tmp)
        for clip in clips:
            label = clip_label(clip)
            t0 = time.perf_counter()
            try:
                result = predict_video(clip, ckpt, out_dir=out_root / clip.stem,
                                       face=args.face)
            except FervidError as err:  # no face, no usable window: a row, not a stop
                rows.append((clip.name, "", "", "", f"({type(err).__name__})", label or "-",
                             "", f"{time.perf_counter() - t0:.1f}"))
                continue
            if result.frame_probs is not None:
                faces = result.n_face_frames
            else:  # window models keep only the fraction
                saved = json.loads(result.files["predictions"].read_text())
                faces = round(saved["face_present_fraction"] * result.n_frames)
            hit = label_hit(result.label, label, result.classes)
            if hit != "-":
                hits.append(hit == "yes")
            rows.append((clip.name, str(result.n_frames), str(faces), str(result.max_faces),
                         result.label, label or "-", hit, f"{time.perf_counter() - t0:.1f}"))
    total = time.perf_counter() - started

    header = ("clip", "frames", "face frames", "most faces", "predicted", "clip label", "hit",
              "s")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    summary = f"{sum(hits)}/{len(hits)} hits on clips with a model class" if hits else ""
    print(f"\n{len(clips)} clips, checkpoint {args.checkpoint}, face {args.face}: "
          f"{total:.1f} s wall. {summary}")


if __name__ == "__main__":
    main()
