"""Residual motion of face crops before and after registration onto the onset frame.

For every clip and every way of making its crops, the motion of the regions an expression moves
least (the template's stable mask: upper face outline, nose bridge, forehead;
:func:`fervid.faces.template_mask`) is measured with Farnebäck dense optical flow, an estimator
independent of the registration's own (ECC): the median flow vector over the mask, from the
onset to each frame (**drift**) and from each frame to the next (**jitter**), in crop pixels.

Raw releases (CASME II, CK+) are read with the face tracks a ``fervid prepare faces`` run wrote
(``--tracks``), so no face is tracked again; the crops of every alignment are made in memory:

    clip      one warp per clip, from the clip's mean landmarks (the micro-expression default)
    onset     one warp per clip, from the onset's landmarks (CK+'s default)
    frame     one warp per frame, from its own landmarks
    reg-*     onset, then each frame registered onto the onset (translation, euclidean, affine)

SynthME (generated here, 64 px, known head sway and tremor) has no landmarks: its frames are
measured as written (``raw``) and registered as an already-cropped release is (``data.register``).

    python benchmarks/registration_motion.py casme2 \\
        --data-root ../shared/data/casme2_raw/CASME2_RAW_selected \\
        --tracks runs/c2raw/_face_tracks --size 224 [--gallery docs/registration_dssi.png]
    python benchmarks/registration_motion.py ckplus --data-root ../shared/data/ckplus \\
        --tracks runs/ckplus_reg/_face_tracks --size 112
    python benchmarks/registration_motion.py synthme
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pandas as pd

from fervid.faces import align_face, register_frames, template_mask
from fervid.prepare.face_clip import FaceSettings, frame_landmarks, registration_warps
from fervid.prepare.raw_clips import find_clips

MOTIONS = ("translation", "euclidean", "affine")


def median_flow(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Median (dx, dy) of the Farnebäck flow a → b over ``mask``."""
    flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 5, 5, 1.1, 0)
    inside = mask > 0
    return np.median(flow[inside], axis=0)


def motion_of(crops: list[np.ndarray], mask: np.ndarray) -> dict:
    """Drift from the onset and jitter between neighbours, in pixels, for one clip."""
    grey = [c if c.ndim == 2 else cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops]
    drift = [np.linalg.norm(median_flow(grey[0], g, mask)) for g in grey[1:]]
    jitter = [np.linalg.norm(median_flow(a, b, mask)) for a, b in zip(grey, grey[1:], strict=False)]
    return {"drift": np.array(drift), "jitter": np.array(jitter)}


class _Track(SimpleNamespace):
    """The parts of a :class:`fervid.faces.FaceTrack` the crops need."""

    def __len__(self) -> int:
        return self.n


def read_track(path: Path) -> _Track:
    """A face track from its sidecar CSV (``prepare faces``' ``_face_tracks/``)."""
    table = pd.read_csv(path)
    points = table[[f"l{a}{i}" for i in range(68) for a in "xy"]].to_numpy(np.float32)
    present = (table["status"] != "missing").to_numpy()
    return _Track(landmarks=points.reshape(len(table), 68, 2), present=present, n=len(table))


def raw_variants(dataset: str, data_root: Path, tracks: Path, size: int):
    """Per clip: (key, {variant: crops}) from the raw frames and their tracks."""
    for job in find_clips(dataset, data_root, Path(tempfile.gettempdir()) / "unused"):
        csv = tracks / f"{job.key}.csv"
        if not csv.is_file():
            continue
        track = read_track(csv)
        frames = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in job.frames][:len(track)]
        out = {}
        for align in ("clip", "onset", "frame"):
            points = frame_landmarks(track.landmarks, track.present, align)
            out[align] = [align_face(f, p, size=size).image
                          for f, p in zip(frames, points, strict=True)]
        points = frame_landmarks(track.landmarks, track.present, "onset")
        for motion in MOTIONS:
            settings = FaceSettings(dataset, size, align="register", motion=motion)
            warps = registration_warps(job, settings, track, points)
            crops = []
            for f, p, w in zip(frames, points, warps, strict=True):
                m = align_face(f, p, size=size).matrix
                m = (np.vstack([w, [0, 0, 1]]) @ np.vstack([m, [0, 0, 1]]))[:2]
                crops.append(cv2.warpAffine(f, m, (size, size), flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_REPLICATE))
            out[f"reg-{motion}"] = crops
        yield job.key, out


def synthme_variants(seed: int = 0):
    """Per SynthME clip: its frames as written, and registered as a cropped release is."""
    from fervid.synth import make_synthme

    root = Path(tempfile.mkdtemp(prefix="synthme_reg_"))
    make_synthme(root, seed=seed)
    for clip in sorted((root / "CASME2_RAW_selected").glob("sub*/*")):
        paths = sorted(clip.glob("img*.jpg"), key=lambda p: int(p.stem[3:]))
        frames = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths]
        out = {"raw": frames}
        for motion in MOTIONS:
            out[f"reg-{motion}"] = list(register_frames(frames, motion=motion).frames)
        yield f"{clip.parent.name}/{clip.name}", out


def still_head_warps(seed: int = 0) -> None:
    """SynthME clips with a still head (no sway, no tremor): the warp the registration finds
    at the apex is all expression taken for head motion. Largest displacement of the face's
    corners, per motion model."""
    from fervid.datasets import read_casme2
    from fervid.synth.casme2_like import SHEET_NAME, make_casme2_like

    root = Path(tempfile.mkdtemp(prefix="synthme_still_"))
    make_casme2_like(root, n_subjects=10, clips_per_subject=10, size=64, seed=seed,
                     n_frames=(20, 60), lighting=0.4, head_jitter=0.0)
    table = read_casme2(root / "CASME2_RAW_selected", root / SHEET_NAME, protocol="5class")
    corners = np.array([[12.0, 12.0], [52.0, 12.0], [12.0, 52.0], [52.0, 52.0]])
    print(f"SynthME, still head, {len(table)} clips: warp at the apex (px at the face's "
          "corners; the expression moves 1.4 px)")
    print("| motion | mean | p95 | max |")
    print("| --- | --- | --- | --- |")
    for motion in MOTIONS:
        found = []
        for sample in table:
            frames = [cv2.imread(str(sample.frames[i]), cv2.IMREAD_GRAYSCALE)
                      for i in (0, sample.apex_position)]
            m = register_frames(frames, motion=motion).matrices[1]
            moved = corners @ m[:, :2].T + m[:, 2] - corners
            found.append(np.linalg.norm(moved, axis=1).max())
        print(f"| {motion} | {np.mean(found):.3f} | {np.percentile(found, 95):.3f} | "
              f"{np.max(found):.3f} |")


def gallery(path: Path, before: list[np.ndarray], after: list[np.ndarray], title: str) -> None:
    """DSSI (uniform, K = 4, grey) of one clip before and after, as one small PNG."""
    from fervid.representation.dssi import dssi

    rows = []
    for crops in (before, after):
        grey = np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops])
        result = dssi(grey, 0, len(grey) // 2, len(grey) - 1, protocol="uniform")
        tiles = [*result.local, result.global_]
        shown = []
        for t in tiles:
            t = t[..., 0]
            lo, hi = np.percentile(t, [1, 99])
            shown.append(np.clip((t - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8))
        rows.append(np.hstack([cv2.resize(s, (112, 112), interpolation=cv2.INTER_AREA)
                               for s in shown]))
    image = np.vstack([rows[0], np.full((4, rows[0].shape[1]), 255, np.uint8), rows[1]])
    cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path} ({title}): top {len(before)} frames before, bottom after; "
          "4 local DIs then the global DI, each stretched to its 1-99th percentiles")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dataset", choices=("casme2", "ckplus", "synthme"))
    parser.add_argument("--data-root", type=Path)
    parser.add_argument("--tracks", type=Path, help="_face_tracks/ of a prepare faces run")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--gallery", type=Path, help="PNG: DSSI of --gallery-clip, clip vs "
                                                     "reg-euclidean")
    parser.add_argument("--gallery-clip", default="sub01/EP02_01f")
    args = parser.parse_args()

    if args.dataset == "synthme":
        still_head_warps()
    started = time.perf_counter()
    if args.dataset == "synthme":
        clips = synthme_variants()
        size = 64
    else:
        clips = raw_variants(args.dataset, args.data_root, args.tracks, args.size)
        size = args.size
    mask = template_mask(size)
    stats: dict[str, dict[str, list]] = {}
    n_clips = 0
    for key, variants in clips:
        n_clips += 1
        for name, crops in variants.items():
            m = motion_of(crops, mask)
            s = stats.setdefault(name, {"drift": [], "max_drift": [], "jitter": []})
            s["drift"] += list(m["drift"])
            s["max_drift"].append(m["drift"].max())
            s["jitter"] += list(m["jitter"])
        if args.gallery and key == args.gallery_clip:
            gallery(args.gallery, variants["clip"], variants["reg-euclidean"], key)
    seconds = time.perf_counter() - started
    print(f"{args.dataset}: {n_clips} clips, crops {size} px, {seconds:.0f} s")
    print("| crops | drift from onset, mean px | max drift per clip, mean px | "
          "jitter, mean px | jitter p95 px |")
    print("| --- | --- | --- | --- | --- |")
    for name, s in stats.items():
        print(f"| {name} | {np.mean(s['drift']):.3f} | {np.mean(s['max_drift']):.3f} | "
              f"{np.mean(s['jitter']):.3f} | {np.percentile(s['jitter'], 95):.3f} |")


if __name__ == "__main__":
    main()
