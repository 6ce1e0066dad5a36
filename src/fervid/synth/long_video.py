"""SynthME long videos: minutes of a drawn face with micro- and macro-expressions at known
intervals, among blinks, head motion and sensor noise, for spotting.

Written in CAS(ME)²'s long-video layout and read back with its real reader
(:func:`fervid.datasets.casme_sq_long.read_casme_sq_intervals`)::

    rawpic/s15/15_0101synthme/img1.jpg ...        one folder per video, frames from 1
    CAS(ME)^2code_final(Updated).csv              the sheet, in the release's CSV form
    GENERATED_BY_FERVID.txt

Subjects are participants 1, 2, ... (folders ``s15``, ``s16``, ...), videos take the
release's video names in order (``disgust1`` → code 0101, ...). Each video holds
``n_micro`` micro-expressions (0.2–0.45 s, the displacement of SynthME's clips) and
``n_macro`` macro-expressions (0.8–2.5 s, 2.5 times stronger), placed apart from each other;
blinks every few seconds (0.1–0.25 s, the eyes closing), a slow head sway with now and then
a quick head shift (distractors a spotter must ignore), and Gaussian sensor noise on every
frame. The faces are drawings: the videos check that spotting code finds motion where it is
and not where it is not, nothing about real faces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fervid.datasets.casme_sq import FOLDERS
from fervid.datasets.casme_sq_long import VIDEO_CODES, read_casme_sq_intervals
from fervid.datasets.long_videos import IntervalRelease
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError
from fervid.synth.casme2_like import (
    EMOTIONS,
    NOISE_SIGMA,
    SYNTHME_MARKER,
    _draw_face,
    _motion_field,
    _subject_face,
)

SHEET_NAME = "CAS(ME)^2code_final(Updated).csv"
#: How much stronger a macro-expression moves the face than a micro-expression.
MACRO_GAIN = 2.5
MICRO_SECONDS = (0.2, 0.45)
MACRO_SECONDS = (0.8, 2.5)
BLINK_SECONDS = (0.1, 0.25)


@dataclass(frozen=True)
class LongVideoSpec:
    """What each generated video holds; ``size`` the frame side in pixels."""

    seconds: float = 60.0
    fps: float = 30.0
    size: int = 160
    n_micro: int = 4
    n_macro: int = 3
    blinks_per_minute: float = 15.0
    head_shifts_per_minute: float = 3.0
    head_sway: float = 2.0


def _place(rng: np.random.Generator, n_frames: int, lengths: list[int],
           gap: int) -> list[int]:
    """Onsets for events of ``lengths`` frames (in that order), at least ``gap`` frames
    apart from each other and from both ends (rejection sampling)."""
    high = n_frames - gap - max(lengths)
    for _ in range(1000 if sum(lengths) + gap * (len(lengths) + 1) < n_frames else 0):
        onsets = [int(rng.integers(gap, high)) for _ in lengths]
        spans = sorted((o, o + length - 1) for o, length in zip(onsets, lengths, strict=True))
        if all(b[0] - a[1] > gap for a, b in zip(spans, spans[1:], strict=False)):
            return onsets
    raise OptionError(f"{len(lengths)} expressions do not fit in {n_frames} frames: make the "
                      f"videos longer or hold fewer expressions")


def _bump(n: int, apex: int) -> np.ndarray:
    """Strength over an expression's ``n`` frames: 0 at onset, 1 at apex, 0 at offset."""
    t = np.arange(n, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * t / max(apex, 1))
    fall = 0.5 + 0.5 * np.cos(np.pi * (t - apex) / max(n - 1 - apex, 1))
    return np.where(t <= apex, rise, fall)


def _video(folder: Path, spec: LongVideoSpec, face, rng: np.random.Generator) -> list[tuple]:
    """Write one video's frames; returns its expressions ``(onset, apex, offset, kind,
    emotion)`` with frames numbered from 1."""
    size, n = spec.size, int(round(spec.seconds * spec.fps))
    kinds = ["micro"] * spec.n_micro + ["macro"] * spec.n_macro
    rng.shuffle(kinds)
    lengths = [max(3, int(round(rng.uniform(*(MICRO_SECONDS if k == "micro" else
                                               MACRO_SECONDS)) * spec.fps))) for k in kinds]
    onsets = _place(rng, n, lengths, gap=int(spec.fps)) if kinds else []
    base = _draw_face(face, size, rng)
    fields, events = [], []
    for kind, onset, length in zip(kinds, onsets, lengths, strict=True):
        emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
        fdx, fdy = _motion_field(emotion, face, size, rng)
        gain = 1.0 if kind == "micro" else MACRO_GAIN
        apex = int(rng.integers(length // 3, max(length // 3 + 1, 2 * length // 3)))
        fields.append((onset, _bump(length, apex) * gain, fdx, fdy))
        events.append((onset + 1, onset + apex + 1, onset + length, kind, emotion))
    # Blinks: the eyes' drawn ellipses fade to skin; quick head shifts: a step of a few px.
    blinks = np.zeros(n)
    n_blinks = int(spec.blinks_per_minute * spec.seconds / 60)
    for start in rng.integers(0, max(n - 10, 1), n_blinks):
        length = max(2, int(round(rng.uniform(*BLINK_SECONDS) * spec.fps)))
        blinks[start:start + length] = np.maximum(blinks[start:start + length],
                                                  _bump(length, length // 2)[:n - start])
    t = np.arange(n) / spec.fps
    sway = spec.head_sway * np.stack([np.sin(2 * np.pi * t / rng.uniform(8, 20) + rng.uniform(
        0, 6)), np.sin(2 * np.pi * t / rng.uniform(8, 20) + rng.uniform(0, 6))], 1)
    for start in rng.integers(0, n, int(spec.head_shifts_per_minute * spec.seconds / 60)):
        ramp = np.clip((np.arange(n) - start) / max(spec.fps * 0.3, 1), 0, 1)
        sway += ramp[:, None] * rng.uniform(-4, 4, 2)
    eye_mask = np.zeros((size, size), np.float32)
    for side in (-1, 1):
        centre = (int(round((face.cx + side * face.eye_dx) * size)),
                  int(round((face.cy + face.eye_y) * size)))
        cv2.ellipse(eye_mask, centre, (max(1, int(0.06 * size)), max(1, int(0.032 * size))),
                    0, 0, 360, 1.0, -1)
    eye_mask = cv2.GaussianBlur(eye_mask, (0, 0), 1.0)
    closed = base * (1 - eye_mask) + face.skin * 0.9 * eye_mask
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image = base + blinks[i] * (closed - base) if blinks[i] > 0 else base
        mx = np.full((size, size), sway[i, 0], np.float32)
        my = np.full((size, size), sway[i, 1], np.float32)
        for onset, curve, fdx, fdy in fields:
            if onset <= i < onset + len(curve):
                mx = mx + curve[i - onset] * fdx
                my = my + curve[i - onset] * fdy
        frame = cv2.remap(np.float32(image), np.float32(gx - mx), np.float32(gy - my),
                          cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
        frame = frame + rng.normal(0.0, NOISE_SIGMA, frame.shape)
        pixels = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i + 1}.jpg"), pixels, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return events


def make_synthme_long(out_dir: Path, *, n_subjects: int = 2, videos_per_subject: int = 1,
                      spec: LongVideoSpec = LongVideoSpec(), seed: int = 0) -> Path:
    """Write SynthME long videos and their sheet under ``out_dir``; returns the sheet.

    Raises
    ------
    OptionError
        More subjects or videos than the layout names (22 and 9), or expressions that do not
        fit in the videos.
    """
    if not 1 <= n_subjects <= len(FOLDERS) or not 1 <= videos_per_subject <= len(VIDEO_CODES):
        raise OptionError(f"SynthME long videos: 1..{len(FOLDERS)} subjects and "
                          f"1..{len(VIDEO_CODES)} videos each, got {n_subjects}, "
                          f"{videos_per_subject}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for participant in range(1, n_subjects + 1):
        face = _subject_face(rng)
        folder = FOLDERS[participant]
        for name, code in list(VIDEO_CODES.items())[:videos_per_subject]:
            video = out_dir / "rawpic" / folder / f"{folder[1:]}_{code:04d}synthme"
            events = _video(video, spec, face, rng)
            for k, (onset, apex, offset, kind, emotion) in enumerate(sorted(events), 1):
                rows.append(f"{participant},{name}_{k},{onset},{apex},{offset},,{emotion},"
                            f"{kind}-expression,{emotion}")
    sheet = out_dir / SHEET_NAME
    sheet.write_text("\n".join(rows) + "\n")
    (out_dir / SYNTHME_MARKER).write_text("SynthME long videos, generated by fervid "
                                          f"(seed {seed}); not a real release.\n")
    return sheet


def read_synthme_long(root: Path, *, skip_missing: bool = False) -> IntervalRelease:
    """The SynthME long videos :func:`make_synthme_long` wrote under ``root`` (the
    ``synthme_long`` release of ``fervid spot --config``), read with CAS(ME)²'s reader.

    Raises
    ------
    DatasetFormatError
        ``root`` holds no generated sheet, or its frames are missing.
    """
    root = Path(root)
    sheet = root / SHEET_NAME
    if not sheet.is_file():
        raise DatasetFormatError(root, [f"no SynthME long videos here (no {SHEET_NAME}); "
                                        "write them with make_synthme_long or data.generate"])
    release = read_casme_sq_intervals(sheet, root / "rawpic", skip_missing=skip_missing)
    return IntervalRelease("synthme_long", release.videos, release.root, release.missing)
