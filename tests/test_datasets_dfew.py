from __future__ import annotations

import logging
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import shared_path
from dfew_fixture import real_frame_counts, real_rows, write_dfew_tree
from fervid.datasets.dfew import (
    DFEW_CLASSES,
    DfewClip,
    read_dfew,
    read_dfew_splits,
    read_split_csv,
)
from fervid.representation.frame_loading import count_video_frames, load_clip, load_video_frames
from fervid.samples import DatasetFormatError

#: The official fold sizes (train, test), from the release notes.
FOLD_SIZES = {1: (9356, 2341), 2: (9356, 2341), 3: (9357, 2340), 4: (9358, 2339),
              5: (9361, 2336)}


def _split_dir() -> Path:
    return shared_path("annotations", "dfew", "EmoLabel_DataSplit")


@pytest.fixture(scope="module")
def subset():
    """(clip numbers, labels by number, frame counts): 20 train and 10 test clips of set_1,
    plus the shortest clips of the release (under 16 frames)."""
    split_dir = _split_dir()
    counts = real_frame_counts(split_dir.parent / "clip_224x224_frame_counts.csv")
    train, test = real_rows(split_dir, "train", 1), real_rows(split_dir, "test", 1)
    short = sorted(n for n, c in counts.items() if c < 16)[:2]
    labels = dict(train + test)
    numbers = {n for n, _ in train[:20]} | {n for n, _ in test[:10]} | set(short)
    return numbers, labels, counts, short


@pytest.fixture(scope="module")
def release(tmp_path_factory, subset):
    numbers, _, counts, _ = subset
    root = tmp_path_factory.mktemp("dfew") / "DFEW"
    return write_dfew_tree(root, _split_dir(), numbers, counts, max_frames=20)


def test_classes_are_the_release_label_order():
    assert DFEW_CLASSES == ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")


def test_real_fold_sizes():
    folds = read_dfew_splits(_split_dir())
    assert {f.fold: (len(f.train), len(f.test)) for f in folds} == FOLD_SIZES
    for fold in folds:  # each fold partitions the same 11,697 clips
        ids = [c.clip_id for c in fold.train + fold.test]
        assert len(set(ids)) == len(ids) == 11697
        assert all(c.frames is None and 0 <= c.label < 7 for c in fold.train[:50])


def test_reader_finds_exactly_the_subset(release, subset):
    numbers, labels, _, _ = subset
    split = read_dfew(release)
    assert split.source == "clip_224x224_16f" and split.missing == ()
    assert {c.clip_id for c in split.clips} == {f"{n:05d}" for n in numbers}
    for clip in split.clips:
        assert clip.label == labels[int(clip.clip_id)] - 1
        assert clip.emotion == DFEW_CLASSES[clip.label]
    fold1 = split.fold(1)
    assert len(fold1.train) + len(fold1.test) == len(numbers)
    assert len(split.folds) == 5
    with pytest.raises(ValueError, match="fold 2 was not read"):
        read_dfew(release, folds=[1]).fold(2)


def test_16f_frames_sorted_numerically(release):
    clip = read_dfew(release, folds=[1]).clips[0]
    assert [p.name for p in clip.frames] == [f"{k}.jpg" for k in range(1, 17)]
    grey = load_clip(clip.frames, size=8)[:, 4, 4, 0].astype(int)
    assert np.all(np.abs(grey - 12 * np.arange(1, 17)) <= 3)


def test_clip_224x224_source_keeps_frame_counts(release, subset):
    _, _, counts, short = subset
    split = read_dfew(release, source="clip_224x224", folds=[2, 3])
    by_id = {c.clip_id: c for c in split.clips}
    for clip_id, clip in by_id.items():
        assert clip.num_frames == min(counts[int(clip_id)], 20)
        assert clip.frames[0].name == f"{clip_id}_00001.jpg"
    assert by_id[f"{short[0]:05d}"].num_frames < 16


def test_missing_clips_listed_in_one_error(tmp_path, subset):
    numbers, _, counts, _ = subset
    root = write_dfew_tree(tmp_path / "DFEW", _split_dir(), numbers, counts, max_frames=2)
    gone = sorted(numbers)[:3]
    for n in gone:
        shutil.rmtree(root / "Clip" / "clip_224x224_16f" / f"{n:05d}")
    (root / "Clip" / "clip_224x224_16f" / f"{sorted(numbers)[3]:05d}" / "16.jpg").unlink()
    with pytest.raises(DatasetFormatError) as caught:
        read_dfew(root)
    message = str(caught.value)
    assert str(root) in message and "4 problem(s)" in message
    for n in gone:
        assert f"clip {n:05d}: frame folder {n:05d}/ not found" in message
    assert "holds 15 frames, expected 16" in message


def test_skip_missing_drops_and_warns(tmp_path, subset, caplog):
    numbers, _, counts, _ = subset
    root = write_dfew_tree(tmp_path / "DFEW", _split_dir(), numbers, counts, max_frames=2,
                           sources=("clip_224x224",))
    gone = sorted(numbers)[:2]
    for n in gone:
        shutil.rmtree(root / "Clip" / "clip_224x224" / f"{n:05d}")
    with caplog.at_level(logging.WARNING, logger="fervid.datasets.dfew"):
        split = read_dfew(root, source="clip_224x224", skip_missing=True)
    assert split.missing == tuple(f"{n:05d}" for n in gone)
    assert {c.clip_id for c in split.clips} == {f"{n:05d}" for n in numbers - set(gone)}
    assert any("skipping 2 of" in r.getMessage() for r in caplog.records)


def _write_mp4(path: Path, frames: int, width: int = 48, height: int = 32) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for k in range(frames):
            image = np.full((height, width, 3), 20 * k, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_original_source_reads_mp4(tmp_path, subset):
    numbers, _, counts, _ = subset
    root = write_dfew_tree(tmp_path / "DFEW", _split_dir(), numbers, counts, sources=())
    videos = root / "Clip" / "original"
    videos.mkdir(parents=True)
    for n in numbers:
        (videos / f"{n:05d}.mp4").touch()
    first = f"{min(numbers):05d}"
    _write_mp4(videos / f"{first}.mp4", frames=10)
    with pytest.raises(DatasetFormatError, match="is empty"):
        read_dfew(root, source="original")
    split = read_dfew(root, source="original", skip_missing=True)
    assert [c.clip_id for c in split.clips] == [first]
    clip = split.clips[0]
    assert clip.frames is None and clip.video == videos / f"{first}.mp4"
    assert count_video_frames(clip.video) == 10
    frames = load_video_frames(clip.video, [0, 4, 9, 9], size=16)
    assert frames.shape == (4, 16, 16, 3) and frames.dtype == np.uint8
    assert np.all(np.abs(frames[:, 8, 8, 0].astype(int) - [0, 80, 180, 180]) <= 12)


@pytest.mark.parametrize("body, problem", [
    ("name,label\n1,1\n", "header is 'name,label'"),
    ("video_name,label\n1,1\n2,8\n", "line 3: label '8' outside 1..7"),
    ("video_name,label\n1,0\nabc,2\n", "line 3: video_name 'abc' is not a clip number"),
    ("video_name,label\n7,1\n7,1\n", "line 3: clip 00007 repeats line 2"),
])
def test_bad_split_csv_names_file_and_row(tmp_path, body, problem):
    path = tmp_path / "set_1.csv"
    path.write_text(body)
    with pytest.raises(DatasetFormatError) as caught:
        read_split_csv(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_split_csv_ids_padded_labels_zero_based(tmp_path):
    path = tmp_path / "set_1.csv"
    path.write_text("\ufeffvideo_name,label\n1,1\n\n12345,7\n9,x\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match="line 5: label 'x'"):
        read_split_csv(path)
    path.write_text("video_name,label\n1,1\n\n12345,7\n")
    assert read_split_csv(path) == [("00001", 0), ("12345", 6)]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown DFEW source"):
        read_dfew(tmp_path, source="clip_112")
    with pytest.raises(ValueError, match="folds are 1..5"):
        read_dfew_splits(tmp_path, folds=[6])
    with pytest.raises(FileNotFoundError, match="DFEW folder not found"):
        read_dfew(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="split file not found"):
        read_dfew(tmp_path)
    assert DfewClip("00001", 3).num_frames is None
