"""Registration of a clip's frames onto its onset (``fervid.faces.registration``).

Generated clips with a known global motion must be recovered to sub-pixel accuracy, SynthME's
generated expressions must survive registration (the expression is not mistaken for head
motion), ``data.register`` must take head sway out of dynamic images, and ``prepare faces
--align register`` must register a real face photo moved by known sub-pixel shifts.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.datasets import read_casme2
from fervid.errors import OptionError
from fervid.faces import (
    register_cropped,
    register_frames,
    stable_mask,
    template_mask,
    template_points,
)
from fervid.representation.dssi import DssiParams, dssi_from_sample
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR, SHEET_NAME


def textured(size: int = 64, seed: int = 0) -> np.ndarray:
    """A smooth random texture 0..255, float32 (every region has gradients for ECC)."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 1.5)
    return cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX)


def moved(image: np.ndarray, dx: float, dy: float, degrees: float = 0.0) -> np.ndarray:
    """``image`` rotated about its centre and shifted, as a head would move it."""
    c = image.shape[0] / 2
    m = cv2.getRotationMatrix2D((c, c), degrees, 1.0)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(image, m, image.shape[::-1], flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT), m


def point_error(found: np.ndarray, truth: np.ndarray, points: np.ndarray) -> float:
    """Largest distance between where ``found`` (frame → onset) and the inverse of ``truth``
    (onset → frame) send ``points``."""
    inverse = cv2.invertAffineTransform(truth)
    a = points @ found[:, :2].T + found[:, 2]
    b = points @ inverse[:, :2].T + inverse[:, 2]
    return float(np.linalg.norm(a - b, axis=1).max())


FACE_POINTS = np.array([[20.0, 20.0], [44.0, 20.0], [32.0, 44.0]])


@pytest.mark.parametrize("motion,degrees", [("translation", 0.0), ("euclidean", 0.6),
                                            ("affine", 0.6)])
def test_a_known_global_motion_is_recovered_to_sub_pixel(motion, degrees):
    base = textured()
    shifts = [(0.37, -0.61), (-1.26, 0.44), (2.1, 1.73)]
    frames, truths = [base.astype(np.uint8)], []
    for k, (dx, dy) in enumerate(shifts, 1):
        frame, m = moved(base, dx, dy, degrees * k / 3)
        frames.append(frame.astype(np.uint8))
        truths.append(m)
    reg = register_frames(frames, motion=motion, mask=template_mask(64))
    assert reg.converged.all()
    errors = [point_error(reg.matrices[t], truths[t - 1], FACE_POINTS) for t in (1, 2, 3)]
    assert max(errors) < 0.15, errors
    # and the registered frames match the onset where the mask looks
    mask = template_mask(64) > 0
    before = np.abs(frames[3].astype(float) - frames[0])[mask].mean()
    after = np.abs(reg.frames[3].astype(float) - frames[0])[mask].mean()
    assert after < before / 4


def test_a_still_clip_stays_as_it_is():
    frames = [textured().astype(np.uint8)] * 3
    reg = register_frames(frames, mask=template_mask(64))
    assert np.abs(reg.matrices - np.eye(2, 3)).max() < 1e-3
    assert np.array_equal(reg.frames[0], frames[0])


def test_one_grey_channel_and_colour_keep_their_shape():
    grey = textured().astype(np.uint8)
    shifted = moved(grey.astype(np.float32), 0.5, 0.0)[0].astype(np.uint8)
    assert register_frames([grey[..., None], shifted[..., None]]).frames.shape == (2, 64, 64, 1)
    colour = np.repeat(grey[..., None], 3, axis=2)
    assert register_frames([colour, colour]).frames.shape == (2, 64, 64, 3)


def test_unknown_motion_is_an_option_error():
    with pytest.raises(OptionError, match="unknown registration motion 'shear'"):
        register_frames([textured()] * 2, motion="shear")


def test_stable_mask_covers_outline_nose_bridge_and_forehead_not_eyes_or_mouth():
    points = template_points("68point", size=128, margin=0.1)
    mask = stable_mask(points, (128, 128)) > 0
    x, y = np.round(points).astype(int).T
    assert mask[y[28], x[28]]                      # nose bridge
    assert not mask[y[36:48], x[36:48]].any()      # eyes
    assert not mask[y[48:68], x[48:68]].any()      # mouth
    assert not mask[y[5:12], x[5:12]].any()        # jaw (moves with the mouth)
    brow_top = int(points[17:27, 1].min())
    assert mask[: brow_top - 2].any()              # forehead
    assert 0.1 < mask.mean() < 0.45


# --- SynthME: the generated expression survives registration ------------------------------

def synth_clips(tmp_path: Path, **options) -> list[tuple[list[np.ndarray], int]]:
    """(frames, apex position) of every clip of a small generated set."""
    make_casme2_like(tmp_path, n_subjects=3, clips_per_subject=5, size=64, seed=3,
                     n_frames=(12, 16), **options)
    table = read_casme2(tmp_path / FRAMES_DIR, tmp_path / SHEET_NAME, protocol="5class")
    return [([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in s.frames], s.apex_position)
            for s in table]


def expression_motion(onset: np.ndarray, apex: np.ndarray) -> np.ndarray:
    """Farnebäck flow onset → apex, ``(H, W, 2)``."""
    return cv2.calcOpticalFlowFarneback(onset, apex, None, 0.5, 3, 9, 5, 5, 1.1, 0)


def test_synthme_expressions_are_not_warped_away(tmp_path):
    """A still head: every expression (1.4 px at 64 px) must leave the warp of the cropped
    registration (``data.register``) within 0.25 px of identity at the apex, and its onset →
    apex motion nearly unchanged."""
    checked = 0
    for frames, apex in synth_clips(tmp_path, head_jitter=0.0):
        reg = register_cropped(frames)
        drift = point_error(reg.matrices[apex], np.eye(2, 3), FACE_POINTS)
        assert drift < 0.25, drift
        before = expression_motion(frames[0], frames[apex])
        after = expression_motion(reg.frames[0], reg.frames[apex])
        moving = np.linalg.norm(before, axis=2) > 0.5
        if moving.sum() < 20:
            continue
        # the expression's own displacement, where it moves, is kept to within 0.15 px
        assert np.abs(after - before)[moving].mean() < 0.15
        checked += 1
    assert checked >= 10


def test_synthme_head_shift_is_recovered_under_the_expression(tmp_path):
    """The same clips, each frame moved by a known sub-pixel shift: registration recovers it
    and the onset → apex expression motion of the still head comes back."""
    rng = np.random.default_rng(0)
    for frames, apex in synth_clips(tmp_path, head_jitter=0.0)[:6]:
        shifts = rng.uniform(-1.5, 1.5, (len(frames), 2))
        shifts[0] = 0
        moved_frames = [moved(f.astype(np.float32), *s)[0].astype(np.uint8)
                        for f, s in zip(frames, shifts, strict=True)]
        reg = register_cropped(moved_frames)
        found = -reg.matrices[:, :, 2]  # frame → onset shift is minus the head's shift
        errors = np.abs(found[1:] - shifts[1:])
        assert errors.mean() < 0.08 and errors.max() < 0.25, errors  # the expression leaks in
        still = expression_motion(frames[0], frames[apex])
        back = expression_motion(reg.frames[0], reg.frames[apex])
        moving = np.linalg.norm(still, axis=2) > 0.5
        if moving.sum() >= 20:
            assert np.abs(back - still)[moving].mean() < 0.2


def test_data_register_takes_head_sway_out_of_the_global_dynamic_image(tmp_path):
    make_casme2_like(tmp_path, n_subjects=2, clips_per_subject=4, size=64, seed=5,
                     n_frames=(16, 20), head_jitter=1.5)
    table = read_casme2(tmp_path / FRAMES_DIR, tmp_path / SHEET_NAME, protocol="5class")
    mask = template_mask(64) > 0
    ratios = []
    for sample in table:
        plain = dssi_from_sample(sample, DssiParams(mode="gray"))
        registered = dssi_from_sample(sample, DssiParams(mode="gray", register=True))
        assert registered.global_.shape == plain.global_.shape
        ratios.append(np.abs(registered.global_[..., 0])[mask].mean()
                      / np.abs(plain.global_[..., 0])[mask].mean())
    assert np.median(ratios) < 0.6, ratios


def test_register_changes_the_dssi_cache_name_and_leaves_the_old_names():
    old = hashlib.sha256(json.dumps({"version": 1, "protocol": "phase", "segments_per_phase": 2,
                                     "n_segments": 4, "frames_per_segment": 4, "mode": "rgb"},
                                    sort_keys=True).encode()).hexdigest()[:12]
    assert DssiParams().digest() == old
    assert DssiParams(register=True).digest() != old


# --- prepare faces --align register, on a real photo moved by known sub-pixel shifts --------

SIZE = 96


def face_clip(folder: Path, shifts: np.ndarray) -> None:
    """A raw CASME II clip folder of the real photo on a grey canvas, frame k shifted by
    ``shifts[k]`` (sub-pixel, with a slow roll)."""
    image = cv2.imread(str(shared_path("faces", "single_face.jpg")))
    face = cv2.resize(image, (240, 236), interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 400, 3), 90, np.uint8)
    canvas[30:266, 50:290] = face
    folder.mkdir(parents=True)
    for k, (dx, dy) in enumerate(shifts):
        m = cv2.getRotationMatrix2D((170.0, 150.0), 0.15 * k, 1.0)
        m[:, 2] += (dx, dy)
        frame = cv2.warpAffine(canvas, m, (400, 300), flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        cv2.imwrite(str(folder / f"img{k + 1}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 98])


def crop_shift(a: np.ndarray, b: np.ndarray) -> float:
    """Size of the shift between two crops' stable regions: the median Farnebäck flow over
    the template's mask (an estimator other than the registration's own)."""
    ga, gb = (cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in (a, b))
    flow = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 3, 15, 5, 5, 1.1, 0)
    return float(np.linalg.norm(np.median(flow[template_mask(SIZE) > 0], axis=0)))


def test_prepare_faces_align_register_removes_a_known_drift(tmp_path):
    shifts = np.array([(0.0, 0.0), (0.7, 0.3), (1.4, 0.8), (2.3, 1.1), (3.1, 1.9), (3.6, 2.4)])
    face_clip(tmp_path / "raw" / "sub01" / "EP01_01", shifts)
    outs = {}
    for align in ("onset", "register"):
        out = tmp_path / align
        result = CliRunner().invoke(app, [
            "prepare", "faces", "--no-progress", "--dataset", "casme2", "--data-root",
            str(tmp_path / "raw"), "--out", str(out), "--size", str(SIZE), "--workers", "1",
            "--align", align])
        assert result.exit_code == 0, result.output
        files = sorted((out / "sub01" / "EP01_01").iterdir(), key=lambda p: int(p.stem[7:]))
        outs[align] = [cv2.imread(str(p)) for p in files]
    settings = json.loads((tmp_path / "register" / "prepare_faces.json").read_text())
    assert settings["align"] == "register" and settings["motion"] == "euclidean"
    assert "motion" not in json.loads((tmp_path / "onset" / "prepare_faces.json").read_text())
    before = crop_shift(outs["onset"][0], outs["onset"][-1])
    after = crop_shift(outs["register"][0], outs["register"][-1])
    assert before > 1.0  # the head's drift shows in one-warp crops
    assert after < 0.2, (before, after)


def test_demo_register_draws_a_raw_clip_before_and_after(tmp_path, monkeypatch):
    """``scripts/demo_register.py --raw``: one picture per raw clip, the DSSI of the default
    crops above the registered crops', whose global DI has less motion in the stable
    regions."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "scripts" / "demo_register.py"
    spec = importlib.util.spec_from_file_location("demo_register", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    shifts = np.array([(0.0, 0.0), (0.7, 0.3), (1.4, 0.8), (2.3, 1.1), (3.1, 1.9), (3.6, 2.4)])
    face_clip(tmp_path / "EP01_01", shifts)
    drawn = []
    original = script.dssi_rows

    def keep(crops):
        drawn.append(original(crops))
        return drawn[-1]

    monkeypatch.setattr(script, "dssi_rows", keep)
    monkeypatch.setattr(sys, "argv", ["demo_register.py", "--out", str(tmp_path / "out"),
                                      "--raw", str(tmp_path / "EP01_01"), "--size", str(SIZE)])
    script.main()
    picture = cv2.imread(str(tmp_path / "out" / "EP01_01_dssi_register.png"))
    assert picture is not None and picture.shape[0] > 300
    mask = template_mask(SIZE) > 0
    (before, _), (after, _) = drawn[0], drawn[1]
    assert np.abs(after[-1][..., 0])[mask].mean() < 0.5 * np.abs(before[-1][..., 0])[mask].mean()
