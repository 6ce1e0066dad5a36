"""``fervid prepare faces`` on generated raw releases made of a real face photo.

The photo ``../shared/data/faces/single_face.jpg`` is pasted on a grey canvas with a shift of a
few pixels per frame, in the raw CASME II, SAMM, SMIC and DFEW layouts; the output must be read
by the same readers, in the same colours, and resume.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.datasets import read_casme2, read_samm, read_smic
from fervid.datasets.dfew import read_dfew
from fervid.faces import DlibFaceDetector, align_face, template_points
from fervid.faces.detection import NUM_LANDMARKS
from fervid.files import TMP_MARK
from fervid.representation.frame_loading import load_clip
from fervid.samples import PROTOCOL_CLASSES
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR
from generated import apex_loso_metrics

SIZE = 96  # small crops keep the tests fast; the default is 224
runner = CliRunner()


def prepare(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["prepare", "faces", "--no-progress", *args])
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def face() -> np.ndarray:
    """The real photo, BGR, shrunk so a frame is cheap to search (face box about 80 px)."""
    image = cv2.imread(str(shared_path("faces", "single_face.jpg")))
    return cv2.resize(image, (240, 236), interpolation=cv2.INTER_AREA)


def face_frame(face: np.ndarray, dx: int = 0, dy: int = 0) -> np.ndarray:
    """The photo on a grey 400x300 canvas, shifted by (dx, dy) pixels (0 to 50, 0 to 30)."""
    canvas = np.full((300, 400, 3), 90, np.uint8)
    canvas[30 + dy:266 + dy, 50 + dx:290 + dx] = face
    return canvas


def jitter(k: int) -> tuple[int, int]:
    """A still head's sway: a few pixels from frame to frame."""
    return 2 * (k % 4), k % 2


def paint_clips(folders, face: np.ndarray) -> None:
    """Overwrite every frame of the folders with face frames (same file names)."""
    for folder in folders:
        for k, path in enumerate(sorted(folder.iterdir())):
            cv2.imwrite(str(path), face_frame(face, *jitter(k)))


@pytest.fixture(scope="module")
def casme2(tmp_path_factory, face) -> tuple[Path, Path]:
    """(raw frame root, sheet): 3 subjects x 2 clips of 6-8 face frames, CASME II layout."""
    sheet = make_casme2_like(tmp_path_factory.mktemp("raw"), n_subjects=3, clips_per_subject=2,
                             size=32, n_frames=(6, 8), seed=0)
    root = sheet.parent / FRAMES_DIR
    paint_clips(sorted(root.glob("sub*/*")), face)
    return root, sheet


@pytest.fixture(scope="module")
def prepared(casme2, tmp_path_factory) -> tuple[Path, str, float]:
    """(out, output, seconds) of one in-process run."""
    root, _ = casme2
    out = tmp_path_factory.mktemp("faces") / "Aligned"
    started = time.perf_counter()
    code, output = prepare("--dataset", "casme2", "--data-root", str(root), "--out", str(out),
                           "--size", str(SIZE), "--workers", "1")
    seconds = time.perf_counter() - started
    assert code == 0, output
    return out, output, seconds


def _count(output: str, row: str) -> int:
    """A row of the closing summary table."""
    match = re.search(rf"{row}\W+(\d+)", output)
    assert match, f"no {row!r} row in {output}"
    return int(match.group(1))


def track_landmarks(csv: Path) -> np.ndarray:
    """``(T, 68, 2)`` landmarks of a face-track sidecar (its last 136 columns)."""
    table = pd.read_csv(csv)
    return table.iloc[:, -2 * NUM_LANDMARKS:].to_numpy(np.float32).reshape(len(table), -1, 2)


def test_output_is_read_by_the_casme2_reader_with_the_same_sheet(casme2, prepared):
    root, sheet = casme2
    out, output, seconds = prepared
    raw, aligned = read_casme2(root, sheet, "5class"), read_casme2(out, sheet, "5class")
    ids = [(s.subject, s.clip, s.onset, s.apex, s.offset, s.label) for s in raw]
    assert [(s.subject, s.clip, s.onset, s.apex, s.offset, s.label) for s in aligned] == ids
    for r, a in zip(raw, aligned, strict=True):
        assert [f"reg_{p.name}" for p in r.frames] == [p.name for p in a.frames]  # Cropped names
        assert a.frames[0].parent == out / r.subject / r.clip
    n_frames = sum(len(s.frames) for s in raw)
    assert _count(output, "clips written") == 6 and _count(output, "failed") == 0, output
    assert _count(output, "frames written") == n_frames
    print(f"prepare faces, generated CASME II tree: {n_frames} frames of 360x300 in "
          f"{seconds:.2f} s ({n_frames / seconds:.1f} frames/s, 1 worker, incl. model load)")
    settings = json.loads((out / "prepare_faces.json").read_text())
    assert settings == {"dataset": "casme2", "size": SIZE, "margin": 0.1, "template": "5point",
                        "align": "clip", "detector": "hog", "detect_every": 5}


def test_crops_have_the_size_true_colours_and_one_warp_per_clip(casme2, prepared):
    root, sheet = casme2
    out, _, _ = prepared
    for raw in list(read_casme2(root, sheet, "5class"))[:2]:
        csv = out / "_face_tracks" / raw.subject / f"{raw.clip}.csv"
        track = pd.read_csv(csv)
        assert len(track) == len(raw.frames) and set(track.status) <= {"detected", "tracked"}
        mean = track_landmarks(csv).mean(axis=0)  # align clip: one fit to the mean landmarks
        for path in raw.frames:
            written = cv2.imread(str(out / raw.subject / raw.clip / f"reg_{path.name}"))
            assert written.shape == (SIZE, SIZE, 3)
            expected = align_face(cv2.imread(str(path)), mean, size=SIZE).image.astype(float)
            error = np.abs(written - expected).mean()
            swapped = np.abs(written[..., ::-1] - expected).mean()
            assert error < 3 and swapped > 3 * error, (path, error, swapped)


def test_eyes_of_the_crop_land_on_the_template(prepared):
    out, _, _ = prepared
    crop = cv2.imread(str(min(out.glob("sub01/*/reg_img*.jpg"))))
    faces = DlibFaceDetector(upsample=1).detect_faces(crop)
    assert len(faces) == 1
    points = faces[0].landmarks
    eyes = np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])
    target = template_points("5point", size=SIZE, margin=0.1)[:2]
    assert np.abs(eyes - target).max() < 0.05 * SIZE


def test_rerun_resumes_and_redoes_an_unfinished_clip(casme2, prepared, tmp_path):
    root, _ = casme2
    out, _, _ = prepared
    copy = tmp_path / "Aligned"
    shutil.copytree(out, copy)
    before = {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()}
    args = ("--dataset", "casme2", "--data-root", str(root), "--out", str(copy),
            "--size", str(SIZE), "--workers", "1")
    code, output = prepare(*args)
    assert code == 0 and _count(output, "clips written") == 0, output
    assert _count(output, "already done") == 6
    assert {p: p.stat().st_mtime_ns for p in copy.rglob("*") if p.is_file()} == before

    clip = min(copy.glob("sub02/*"))
    min(clip.iterdir()).unlink()  # a clip someone damaged
    stale = clip.parent / f".{clip.name}{TMP_MARK}999"  # left by a killed run
    stale.mkdir()
    code, output = prepare(*args)
    assert code == 0 and _count(output, "clips written") == 1, output
    assert _count(output, "already done") == 5
    assert not stale.exists() and not list(copy.rglob(f"*{TMP_MARK}*"))
    assert sorted(p.name for p in clip.iterdir()) == sorted(
        p.name for p in (out / clip.relative_to(copy)).iterdir())

    code, output = prepare(*args[:-3], "64", "--workers", "1")  # other settings: refused
    assert code == 2 and "other settings (size" in output


def test_clip_without_a_face_fails_and_the_others_are_written(casme2, tmp_path):
    root, sheet = casme2
    raw = tmp_path / "raw"
    shutil.copytree(root, raw)
    blank = min(raw.glob("sub02/*"))
    for path in blank.iterdir():
        cv2.imwrite(str(path), np.full((300, 400, 3), 90, np.uint8))
    out = tmp_path / "out"
    code, output = prepare("--dataset", "casme2", "--data-root", str(raw), "--out", str(out),
                           "--size", "64", "--workers", "2")  # the process pool
    assert code == 1, output
    assert _count(output, "clips written") == 5 and _count(output, "failed") == 1, output
    assert f"sub02/{blank.name}: no face found in {blank}" in output
    assert not (out / "sub02" / blank.name).exists()
    assert not list(out.rglob(f"*{TMP_MARK}*"))
    done = {f"{p.parent.name}/{p.name}" for p in out.glob("sub*/*")}
    assert done == {f"{p.parent.name}/{p.name}" for p in raw.glob("sub*/*")} - {
        f"sub02/{blank.name}"}


def test_unusable_input_exits_2(casme2, tmp_path):
    root, _ = casme2
    cases = [
        (["--dataset", "casme2", "--data-root", str(tmp_path / "nowhere")], "nowhere"),
        (["--dataset", "casme2", "--data-root", str(root), "--clips", "1"], "DFEW videos"),
        (["--dataset", "samm", "--data-root", str(root)], "no clips found"),
        (["--dataset", "dfew", "--data-root", str(root)], "Clip/original"),
        (["--dataset", "casme2", "--data-root", str(root), "--size", "4"], "--size"),
    ]
    for args, message in cases:
        code, output = prepare(*args, "--out", str(tmp_path / "out"))
        assert code == 2 and message in output, (args, output)
        assert not (tmp_path / "out").exists()  # nothing written for unusable input
    code, output = prepare("--dataset", "casme2", "--data-root", str(root), "--out", str(root))
    assert code == 2 and "would overwrite" in output


def test_prepare_then_loso(casme2, prepared, tmp_path):
    _, sheet = casme2
    out, _, _ = prepared
    metrics = apex_loso_metrics(tmp_path, out, {
        "dataset": "casme2", "protocol": "5class", "sheet": str(sheet),
        "classes": list(PROTOCOL_CLASSES["casme2_5class"])})
    assert metrics["n_samples"] == 6 and metrics["n_folds"] == 3


def write_samm_sheet(path: Path, rows: list[tuple]) -> None:
    book = openpyxl.Workbook()
    book.active.append(["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
                        "Estimated Emotion"])
    for row in rows:
        book.active.append(list(row))
    book.save(path)


def test_samm_and_smic_layouts_are_kept(face, tmp_path):
    samm = tmp_path / "SAMM" / "006" / "006_1_2"
    smic = tmp_path / "SMIC_all_raw" / "HS" / "s1" / "micro" / "positive" / "s1_po_1"
    for folder, names in ((samm, [f"006_{n:05d}.jpg" for n in (98, 99, 100)]),
                          (smic, [f"image{n:06d}.bmp" for n in (59001, 59002, 59003)])):
        folder.mkdir(parents=True)
        for k, name in enumerate(names):
            cv2.imwrite(str(folder / name), face_frame(face, *jitter(k)))
    sheet = tmp_path / "samm.xlsx"
    write_samm_sheet(sheet, [("006", "006_1_2", 98, 99, 100, "Happiness")])

    code, output = prepare("--dataset", "samm", "--data-root", str(tmp_path / "SAMM"),
                           "--out", str(tmp_path / "samm_out"), "--size", "64", "--workers", "1")
    assert code == 0, output
    (clip,) = read_samm(tmp_path / "samm_out", sheet, "all")
    assert [p.name for p in clip.frames] == ["006_00098.jpg", "006_00099.jpg", "006_00100.jpg"]
    assert cv2.imread(str(clip.frames[0])).shape == (64, 64, 3)

    code, output = prepare("--dataset", "smic", "--data-root", str(tmp_path / "SMIC_all_raw"),
                           "--out", str(tmp_path / "smic_out"), "--size", "64", "--workers", "1")
    assert code == 0, output
    (clip,) = read_smic(tmp_path / "smic_out")
    assert (clip.clip, clip.emotion, len(clip.frames)) == ("s01_po_01", "positive", 3)
    assert clip.frames[0] == tmp_path / "smic_out" / smic.relative_to(
        tmp_path / "SMIC_all_raw") / "image059001.bmp"
    assert (tmp_path / "smic_out" / "_face_tracks" / "HS" / "s1" / "micro" / "positive"
            / "s1_po_1.csv").is_file()


def write_mp4(path: Path, frames_bgr: list[np.ndarray], fps: int = 25) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames_bgr[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "12"}
        for image in frames_bgr:
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
                                               format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_dfew_videos_to_clip_224x224(face, tmp_path):
    from fervid.faces import read_video_frames

    root = tmp_path / "DFEW"
    videos = root / "Clip" / "original"
    write_mp4(videos / "00001.mp4", [face_frame(face, 5 * k, k) for k in range(10)])
    write_mp4(videos / "00002.mp4", [np.full((300, 400, 3), 90, np.uint8)] * 4)  # no face
    write_mp4(videos / "00009.mp4", [face_frame(face)] * 2)  # not asked for
    (videos / "00003.mp4").symlink_to(shared_path("videos", "single_face.mp4"))  # real, 72 frames
    for part in ("train", "test"):
        split = root / "EmoLabel_DataSplit" / f"{part}(single-labeled)"
        split.mkdir(parents=True)
        (split / "set_1.csv").write_text("video_name,label\n1,1\n" if part == "train" else
                                         "video_name,label\n")
    out = tmp_path / "DFEW_aligned"
    args = ("--dataset", "dfew", "--data-root", str(root), "--out", str(out), "--workers", "1")
    started = time.perf_counter()
    code, output = prepare(*args, "--clips", "1-3")
    seconds = time.perf_counter() - started
    assert code == 1 and f"00002: no face found in {videos / '00002.mp4'}" in output, output
    assert _count(output, "clips written") == 2 and _count(output, "frames written") == 82
    print(f"prepare faces, DFEW: 10 generated + 72 real 640x360 frames in {seconds:.2f} s")
    assert not (out / "Clip" / "clip_224x224" / "00009").exists()
    real = sorted((out / "Clip" / "clip_224x224" / "00003").iterdir())
    assert len(real) == 72 and cv2.imread(str(real[-1])).shape == (224, 224, 3)

    split = read_dfew(out, source="clip_224x224", folds=[1])  # split files copied
    (clip,) = split.fold(1).train
    assert [p.name for p in clip.frames] == [f"00001_{k:05d}.jpg" for k in range(1, 11)]
    frames = load_clip(clip.frames, 224)  # RGB, as the DFEW models load it
    assert frames.shape == (10, 224, 224, 3)

    # align frame (DFEW's default): each frame fitted to its own landmarks, in true colours,
    # so the 45 px of head motion in the video is taken out of the crops.
    landmarks = track_landmarks(out / "_face_tracks" / "00001.csv")
    decoded = list(read_video_frames(videos / "00001.mp4"))
    for k in (0, 9):
        expected = align_face(decoded[k], landmarks[k], size=224).image.astype(float)
        error = np.abs(frames[k] - expected).mean()
        assert error < 3 and np.abs(frames[k][..., ::-1] - expected).mean() > 3 * error
    # Frames 2 and 7 (25 px apart in the video): the track's centred 5-frame smoothing has its
    # full window there (at a run's ends it lags behind a moving face).
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames[[2, 7]]]
    (shift_x, shift_y), _ = cv2.phaseCorrelate(*gray)
    assert abs(shift_x) < 1.5 and abs(shift_y) < 1.5

    code, output = prepare(*args, "--clips", "1,5")
    assert code == 2 and "00005" in output
