"""A small generated micro-expression set in the official CASME II layout.

It lets the whole pipeline (reader, flow, training, LOSO, reports) run on a fresh clone, with no
licensed data. The faces are drawings, not people: the set checks that the code works and that
onset-to-apex motion carries the class, nothing about accuracy on real faces.

Layout written under ``out_dir`` (as the CASME II release ships it)::

    CASME2_RAW_selected/sub01/EP03_02f/img117.jpg ... img131.jpg   onset..offset
    CASME2-coding-20140508.xlsx                                    the coding sheet
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import openpyxl

from fervid.errors import OptionError

#: Header of the official sheet, row 1 (``None`` = the two blank columns).
CASME2_HEADER: tuple[str | None, ...] = ("Subject", "Filename", None, "OnsetFrame", "ApexFrame",
                                         "OffsetFrame", None, "Action Units",
                                         "Estimated Emotion")
SHEET_NAME = "CASME2-coding-20140508.xlsx"
FRAMES_DIR = "CASME2_RAW_selected"

#: The emotions used (those of the CASME II 5-class protocol) and the action units written for
#: them; ints where the official sheet has a single AU, text for combinations, as there.
EMOTION_AUS: dict[str, tuple[int | str, ...]] = {
    "happiness": (12, "6+12"),
    "disgust": ("4+9", 4, 9),
    "repression": (14, 17, "14+17"),
    "surprise": ("1+2", 1),
    "others": ("L10", 4, 7, 15),
}
EMOTIONS = tuple(EMOTION_AUS)

#: Peak displacement (pixels at size 64) of the expression, and the sensor noise (grey levels).
PEAK_SHIFT_64 = 1.4
NOISE_SIGMA = 2.0
JPEG_QUALITY = 95
#: Written at the top of every generated tree, so reports know the data is not a real release.
SYNTHME_MARKER = "GENERATED_BY_FERVID.txt"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # zip entry dates, so the sheet is byte-reproducible


@dataclass(frozen=True)
class _Face:
    """Per-subject drawing parameters, in units of the image side."""

    cx: float
    cy: float
    ax: float  # face half-width
    ay: float  # face half-height
    eye_dx: float
    eye_y: float
    brow_gap: float
    mouth_y: float
    mouth_w: float
    skin: float  # grey level
    background: float


def _subject_face(rng: np.random.Generator) -> _Face:
    return _Face(cx=0.5 + rng.uniform(-0.02, 0.02), cy=0.52 + rng.uniform(-0.02, 0.02),
                 ax=rng.uniform(0.30, 0.40), ay=rng.uniform(0.38, 0.47),
                 eye_dx=rng.uniform(0.13, 0.17), eye_y=rng.uniform(-0.14, -0.09),
                 brow_gap=rng.uniform(0.08, 0.11), mouth_y=rng.uniform(0.20, 0.25),
                 mouth_w=rng.uniform(0.10, 0.14), skin=rng.uniform(120, 185),
                 background=rng.uniform(30, 80))


def _smooth_noise(rng: np.random.Generator, size: int, scale: float, sigma: float) -> np.ndarray:
    field = rng.standard_normal((size, size)).astype(np.float32)
    field = cv2.GaussianBlur(field, (0, 0), sigma)
    return field * (scale / (field.std() + 1e-6))


def _draw_face(face: _Face, size: int, rng: np.random.Generator) -> np.ndarray:
    """The neutral face, float32 grey levels; drawn at 4x and averaged down for soft edges."""
    k = 4
    big = size * k
    img = np.full((big, big), face.background, np.float32)

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round((face.cx + x) * big)), int(round((face.cy + y) * big))

    def ln(v: float) -> int:
        return max(1, int(round(v * big)))

    cv2.ellipse(img, pt(0, 0), (ln(face.ax), ln(face.ay)), 0, 0, 360, face.skin, -1)
    dark = face.skin * 0.35
    for side in (-1, 1):
        x = side * face.eye_dx
        cv2.ellipse(img, pt(x, face.eye_y), (ln(0.055), ln(0.025)), 0, 0, 360, dark + 30, -1)
        cv2.circle(img, pt(x, face.eye_y), ln(0.018), dark, -1)
        cv2.ellipse(img, pt(x, face.eye_y - face.brow_gap), (ln(0.07), ln(0.02)),
                    side * 8, 180, 360, dark + 15, ln(0.02))
        cv2.circle(img, pt(side * 0.03, 0.09), ln(0.012), dark + 20, -1)  # nostrils
    cv2.line(img, pt(0, -0.02), pt(0, 0.07), face.skin * 0.8, ln(0.012))  # nose ridge
    cv2.ellipse(img, pt(0, face.mouth_y), (ln(face.mouth_w), ln(0.025)), 0, 0, 360,
                dark + 25, -1)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    # Skin texture: without it TV-L1 finds no motion on flat cheeks (real skin has pores).
    return img + _smooth_noise(rng, size, 6.0, 0.8) + _smooth_noise(rng, size, 4.0, 3.0)


def _motion_field(emotion: str, face: _Face, size: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Displacement (dx, dy) at the apex, in pixels: Gaussian bumps where the AUs act."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    peak = PEAK_SHIFT_64 * size / 64 * rng.uniform(0.8, 1.2)
    bumps: list[tuple[float, float, float, float, float]] = []  # x, y, radius, dx, dy
    brow_y = face.eye_y - face.brow_gap
    if emotion == "happiness":  # AU12 lip-corner puller: corners up and out
        for s in (-1, 1):
            bumps.append((s * face.mouth_w, face.mouth_y, 0.07, 0.5 * s, -1.0))
    elif emotion == "disgust":  # AU4 brow lowerer (down, together) + AU9 nose wrinkler (up)
        for s in (-1, 1):
            bumps.append((s * face.eye_dx * 0.7, brow_y, 0.07, -0.4 * s, 1.0))
            bumps.append((s * 0.04, 0.05, 0.05, 0.0, -0.8))
    elif emotion == "surprise":  # AU1+2 brow raiser
        for s in (-1, 1):
            bumps.append((s * face.eye_dx, brow_y, 0.09, 0.0, -1.2))
    elif emotion == "repression":  # AU14/17 lip press: upper lip down, lower lip up
        bumps.append((0.0, face.mouth_y - 0.045, 0.045, 0.0, 1.0))
        bumps.append((0.0, face.mouth_y + 0.05, 0.045, 0.0, -1.0))
    else:  # others: a small random motion somewhere else on the face
        x, y = rng.uniform(-0.2, 0.2), rng.uniform(-0.05, 0.12)
        angle = rng.uniform(0, 2 * np.pi)
        bumps.append((x, y, 0.08, np.cos(angle), np.sin(angle)))
    dx = np.zeros((size, size), np.float32)
    dy = np.zeros((size, size), np.float32)
    for x, y, r, ux, uy in bumps:
        g = np.exp(-((xx - face.cx - x) ** 2 + (yy - face.cy - y) ** 2) / (2 * r * r))
        dx += peak * ux * g
        dy += peak * uy * g
    return dx, dy


def _intensity(n_frames: int, apex_pos: int) -> np.ndarray:
    """Expression strength per frame: 0 at onset, 1 at apex, back towards 0 at offset."""
    t = np.arange(n_frames, dtype=np.float64)
    rise = 0.5 - 0.5 * np.cos(np.pi * t / max(apex_pos, 1))
    fall = 0.5 + 0.5 * np.cos(np.pi * (t - apex_pos) / max(n_frames - 1 - apex_pos, 1))
    return np.where(t <= apex_pos, rise, 0.15 + 0.85 * fall)


def _lighting(size: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative illumination ramp in a random direction (1 ± strength/2 at the edges)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    return 1.0 + strength * (np.cos(angle) * xx + np.sin(angle) * yy)


def _head_motion(n_frames: int, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Whole-face shifts ``(n_frames, 2)`` in pixels: a slow sway of about ``amount`` px (a
    random sinusoid per axis) plus a tremor of ``amount / 4`` px per frame. Where the face sits
    at the apex then varies from clip to clip, so a single frame is a weak cue, while frames
    close in time stay nearly aligned, as in high-speed recordings."""
    if amount <= 0:
        return np.zeros((n_frames, 2))
    t = np.arange(n_frames)[:, None] / max(n_frames - 1, 1)
    amplitude = rng.uniform(0.5, 1.5, 2) * amount
    cycles, phase = rng.uniform(0.3, 1.0, 2), rng.uniform(0, 2 * np.pi, 2)
    sway = amplitude * np.sin(2 * np.pi * cycles * t + phase)
    return sway + rng.normal(0.0, amount / 4, (n_frames, 2))


def _write_clip(folder: Path, base: np.ndarray, dx: np.ndarray, dy: np.ndarray, onset: int,
                apex: int, offset: int, rng: np.random.Generator,
                head_jitter: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    size = base.shape[0]
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32)
    shifts = _head_motion(offset - onset + 1, head_jitter, rng)
    for pos, amount in enumerate(_intensity(offset - onset + 1, apex - onset).tolist()):
        jx, jy = shifts[pos].tolist()
        # Backward warp: the content at x moves to x + d (to first order).
        frame = cv2.remap(base, gx - amount * dx - jx, gy - amount * dy - jy, cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
        frame = frame + rng.normal(0.0, NOISE_SIGMA, frame.shape)
        image = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise RuntimeError(f"JPEG encoding failed for {folder}")
        (folder / f"img{onset + pos}.jpg").write_bytes(data.tobytes())


def _save_reproducible(workbook: openpyxl.Workbook, path: Path) -> None:
    """Save with fixed timestamps (openpyxl stamps the creation and save times in the file, and
    the zip stamps each entry)."""
    buffer = io.BytesIO()
    workbook.save(buffer)
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                # Both stamps: created is taken when the Workbook is made, so two sets written
                # either side of a second boundary would differ.
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                              rb"\g<1>2014-05-08T00:00:00Z", data)
            dst.writestr(zipfile.ZipInfo(info.filename, _FIXED_TIME), data,
                         compress_type=zipfile.ZIP_DEFLATED)


def make_casme2_like(out_dir: Path, *, n_subjects: int = 6, clips_per_subject: int = 6,
                     size: int = 64, seed: int = 0, n_frames: tuple[int, int] = (10, 20),
                     head_jitter: float = 0.0, lighting: float = 0.0,
                     class_shares: tuple[float, ...] | None = None) -> Path:
    """Write a small CASME II-format set of synthetic micro-expression clips.

    Each subject has its own face (shape, skin grey level, texture). Each clip is 10-20 frames
    ``onset..offset`` of that face with a subtle local motion (about 1.4 px at size 64) rising to
    the apex and fading: happiness lifts the lip corners, disgust lowers the brows and wrinkles
    the nose, surprise raises the brows, repression presses the lips, others moves a random spot.
    Gaussian sensor noise (sigma 2 grey levels) is added to every frame, then JPEG encoding.
    Emotions cycle through the five 5-class emotions so every class has clips; four of them map
    to the MEGC2019 3-class protocol as well.

    Parameters
    ----------
    out_dir : Path
        Created if needed; existing generated files are overwritten.
    n_subjects : int
        Subjects ``sub01..``; at most 99.
    clips_per_subject : int
        Clips per subject.
    size : int
        Side of the square frames, pixels (at least 32).
    seed : int
        Same seed, same bytes (frames and sheet).
    n_frames : (int, int)
        Shortest and longest clip, frames (inclusive).
    head_jitter : float
        Size of the head's sway over a clip, pixels, with a per-frame tremor of a quarter of
        it (0: a still head).
    lighting : float
        Strength of a per-subject illumination ramp (0: even lighting).
    class_shares : tuple of float, optional
        Probability of each emotion of :data:`EMOTIONS` per clip (imbalanced sets); None cycles
        through them so every class has clips.

    Returns
    -------
    Path
        The coding sheet ``out_dir/CASME2-coding-20140508.xlsx``; frames are under
        ``out_dir/CASME2_RAW_selected``.
    """
    if not 1 <= n_subjects <= 99 or clips_per_subject < 1 or size < 32:
        raise OptionError("need 1 <= n_subjects <= 99, clips_per_subject >= 1 and size >= 32; "
                          f"got {n_subjects}, {clips_per_subject}, {size}")
    if not 4 <= n_frames[0] <= n_frames[1]:
        raise OptionError(f"n_frames must be (shortest, longest) with 4 <= shortest <= longest, "
                          f"got {n_frames}")
    if class_shares is not None and (len(class_shares) != len(EMOTIONS)
                                     or min(class_shares) < 0 or sum(class_shares) <= 0):
        raise OptionError(f"class_shares needs {len(EMOTIONS)} non-negative shares "
                          f"({', '.join(EMOTIONS)}), got {class_shares}")
    out_dir = Path(out_dir)
    frames_root = out_dir / FRAMES_DIR
    rng = np.random.default_rng(seed)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    sheet.append(list(CASME2_HEADER))
    for s in range(1, n_subjects + 1):
        subject = f"{s:02d}"
        face = _subject_face(rng)
        base = _draw_face(face, size, rng)
        if lighting > 0:
            base = base * _lighting(size, lighting, rng)
        episodes = rng.choice(np.arange(1, max(30, clips_per_subject + 1)),
                              size=clips_per_subject, replace=False)
        for c, episode in enumerate(sorted(episodes)):
            if class_shares is None:
                emotion = EMOTIONS[(s + c) % len(EMOTIONS)]
            else:
                shares = np.asarray(class_shares, dtype=np.float64)
                emotion = EMOTIONS[int(rng.choice(len(EMOTIONS), p=shares / shares.sum()))]
            clip = f"EP{episode:02d}_{rng.integers(1, 10):02d}" + ("f" if rng.random() < .3 else "")
            onset = int(rng.integers(1, 300))
            length = int(rng.integers(n_frames[0], n_frames[1] + 1))
            apex = onset + int(rng.integers(3, length // 2 + 2))
            offset = onset + length - 1
            dx, dy = _motion_field(emotion, face, size, rng)
            _write_clip(frames_root / f"sub{subject}" / clip, base, dx, dy, onset, apex, offset,
                        rng, head_jitter)
            aus = EMOTION_AUS[emotion]
            sheet.append([subject, clip, None, onset, apex, offset, None,
                          aus[int(rng.integers(len(aus)))], emotion])
            sheet.cell(sheet.max_row, 1).number_format = "@"  # text, as in the official sheet
    sheet.cell(1, 1).number_format = "@"
    book.create_sheet("Sheet2")
    book.create_sheet("Sheet3")
    path = out_dir / SHEET_NAME
    _save_reproducible(book, path)
    (out_dir / SYNTHME_MARKER).write_text(
        "Synthetic micro-expression clips generated by fervid (fervid.synth), in the CASME II "
        "layout. Not a real dataset: no published figure applies.\n")
    return path


#: Shares of the CASME II 5-class emotions in the release (happiness 32, disgust 63,
#: repression 27, surprise 25, others 99), in :data:`EMOTIONS` order.
CASME2_SHARES: tuple[float, ...] = (32, 63, 27, 25, 99)


def make_synthme(out_dir: Path, *, n_subjects: int = 10, clips_per_subject: int = 10,
                 size: int = 64, seed: int = 0) -> Path:
    """SynthME, fervid's built-in micro-expression set, in the CASME II layout.

    :func:`make_casme2_like` with the settings that make a single frame a weak cue and the
    onset→apex motion the signal: clips of 20-60 frames, class sizes in CASME II's proportions,
    a per-subject lighting ramp (strength 0.4), head sway (about 0.4 px at 64 px) with a per-frame
    tremor (0.1 px) and sensor noise. The expression moves about 1.4 px at 64 px (2.5 px at
    112 px).

    Returns the coding sheet's path; frames are under ``out_dir/CASME2_RAW_selected``.
    """
    return make_casme2_like(out_dir, n_subjects=n_subjects, clips_per_subject=clips_per_subject,
                            size=size, seed=seed, n_frames=(20, 60),
                            head_jitter=0.4 * size / 64, lighting=0.4,
                            class_shares=CASME2_SHARES)
