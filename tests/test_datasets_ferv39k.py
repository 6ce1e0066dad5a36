"""The FERV39k reader on the real split lists and on release trees built from them."""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from conftest import shared_path
from fervid.datasets.ferv39k import (
    EMOTION_FOLDERS,
    FERV39K_CLASSES,
    find_ferv39k_clips,
    read_ferv39k,
    read_ferv39k_splits,
    read_split_file,
)
from fervid.datasets.registry import dataset_spec
from fervid.datasets.video_release import release_of
from fervid.errors import OptionError, PathNotFoundError
from fervid.samples import DatasetFormatError
from release_trees.ferv39k import build, real_rows

#: Clips per class in the real lists, in label order (happiness .. fear).
TRAIN_COUNTS = (5854, 5523, 7790, 5906, 2502, 1833, 1680)
TEST_COUNTS = (1473, 1393, 1958, 1487, 638, 467, 431)


def test_classes_are_the_lists_label_order():
    assert EMOTION_FOLDERS == ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    assert FERV39K_CLASSES == ("happiness", "sadness", "neutral", "anger", "surprise", "disgust",
                               "fear")
    release = release_of(dataset_spec("ferv39k"))
    assert release.folds == (1,) and release.classes == FERV39K_CLASSES
    assert release.default_source == "2_ClipsforFaceCrop"


def test_real_lists_counts_and_every_emotion_folder_matches_its_label():
    (fold,) = read_ferv39k_splits(shared_path("annotations", "ferv39k"))
    assert fold.fold == 1 and (len(fold.train), len(fold.test)) == (31088, 7847)
    for clips, expected in ((fold.train, TRAIN_COUNTS), (fold.test, TEST_COUNTS)):
        counts = Counter(c.label for c in clips)
        assert tuple(counts[k] for k in range(7)) == expected
        for clip in clips:
            scene, emotion, number = clip.clip_id.split("/")
            assert emotion == EMOTION_FOLDERS[clip.label] and number.isdigit()
            assert clip.emotion == FERV39K_CLASSES[clip.label] and clip.frames is None
    ids = [c.clip_id for c in fold.train + fold.test]
    assert len(set(ids)) == len(ids) == 38935
    assert len({c.split("/")[0] for c in ids}) == 22  # scenes
    # The lists' own labels, read without the reader, agree clip for clip.
    listed = {clip: label for part in ("train", "test") for clip, _, label in real_rows(part)}
    assert all(listed[c.clip_id] == c.label for c in fold.train + fold.test)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("ferv39k"), limit=14, frames=3)["root"]


def test_official_layout_is_read(tree):
    split = read_ferv39k(tree)
    assert split.source == "2_ClipsforFaceCrop" and split.missing == ()
    assert split.classes == FERV39K_CLASSES and [f.fold for f in split.folds] == [1]
    fold = split.fold(1)
    assert len(fold.train) == len(fold.test) == 14
    assert {c.label for c in fold.train} == set(range(7))  # classes in turn
    clip = fold.train[0]
    assert clip.clip_id == "Action/Happy/0267" and clip.emotion == "happiness"
    assert [p.name for p in clip.frames] == ["0000.jpg", "0001.jpg", "0002.jpg"]
    assert clip.frames[0].parent == tree / "2_ClipsforFaceCrop" / "Action" / "Happy" / "0267"


def test_the_lists_are_read_from_split_dir_and_skip_missing(tree, caplog):
    lists = shared_path("annotations", "ferv39k")
    with pytest.raises(DatasetFormatError, match="frame folder .* not found"):
        read_ferv39k(tree, split_dir=lists)
    with caplog.at_level(logging.WARNING, logger="fervid.datasets.ferv39k"):
        split = read_ferv39k(tree, split_dir=lists, skip_missing=True)
    assert len(split.clips) == 28 and len(split.missing) == 38935 - 28
    assert any("skipping 38907 of 38935" in r.getMessage() for r in caplog.records)


def test_official_files_of_the_whole_split_read_as_the_lists(tmp_path):
    root = build(tmp_path, frames=0)["root"]  # the split files only
    assert not (root / "2_ClipsforFaceCrop").exists()
    (official,) = read_ferv39k_splits(root / "4_setups" / "All_scenes")
    assert Counter(c.label for c in official.test) == Counter(dict(enumerate(TEST_COUNTS)))
    (listed,) = read_ferv39k_splits(shared_path("annotations", "ferv39k"))
    assert official.train == listed.train and official.test == listed.test


@pytest.mark.parametrize("body, problem", [
    ("Action/Happy/0001 Sad\n", "line 1: Action/Happy/0001 is in the Happy folder but "
                                "labelled Sad"),
    ("path label\nAction/Happy/0001 Happy\nAction/Happy/0001 Happy\n",
     "line 3: Action/Happy/0001 repeats line 2"),
    ("Action/Happy/0001 Bored\n", "line 1: emotion 'Bored' is none of Happy, Sad"),
    ("Action/Happy/0001\n", "line 1: 1 fields, expected 2"),
    ("Action/Glad/0001 Happy\n", "emotion folder 'Glad' is none of"),
    ("Happy/0001 Happy\n", "does not end in <Scene>/<Emotion>/<id>"),
])
def test_bad_official_lines_name_file_and_line(tmp_path, body, problem):
    path = tmp_path / "train_All.csv"
    path.write_text(body)
    with pytest.raises(DatasetFormatError) as caught:
        read_split_file(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_header_line_and_list_form(tmp_path):
    official = tmp_path / "test_All.csv"
    official.write_text("video label\nAction/Happy/0001 Happy\nWar/Fear/0002 Fear\n")
    assert read_split_file(official) == [("Action/Happy/0001", 0), ("War/Fear/0002", 6)]
    listed = tmp_path / "FERV39K_test.txt"
    listed.write_text("/x/2_ClipsforFaceCrop/Action/Happy/0001 12 0\n/x/War/Fear/0002 9 6\n")
    assert read_split_file(listed) == [("Action/Happy/0001", 0), ("War/Fear/0002", 6)]
    listed.write_text("/x/Action/Happy/0001 12 3\n/x/War/Fear/0002 9 7\n")
    with pytest.raises(DatasetFormatError) as caught:
        read_split_file(listed)
    assert "line 1: Action/Happy/0001 is in the Happy folder but labelled Angry" in str(
        caught.value) and "line 2: label '7' outside 0..6" in str(caught.value)


def test_bad_arguments(tmp_path, tree):
    with pytest.raises(OptionError, match="unknown FERV39k source 'faces'; valid sources: "
                                          "2_ClipsforFaceCrop, 0_7_LabelClips"):
        read_ferv39k(tree, source="faces")
    with pytest.raises(OptionError, match=r"FERV39k folds are 1, got \[2\]"):
        read_ferv39k(tree, folds=[2])
    with pytest.raises(PathNotFoundError, match="FERV39k folder not found"):
        read_ferv39k(tmp_path / "absent")
    with pytest.raises(PathNotFoundError, match="no FERV39k split files"):
        read_ferv39k(tmp_path)


def _write_mp4(path: Path, frames: list[np.ndarray]) -> None:
    """RGB frames as an mpeg4 video."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_raw_clips_are_read_and_prepared_into_the_face_layout(tmp_path):
    from typer.testing import CliRunner

    from fervid.cli import app

    photo = cv2.imread(str(shared_path("faces", "single_face.jpg")))[..., ::-1]
    face = cv2.resize(photo, (240, 236), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(4):  # the real face on a grey canvas, moving a few pixels a frame
        canvas = np.full((300, 400, 3), 90, np.uint8)
        canvas[30 + k:266 + k, 50 + 5 * k:290 + 5 * k] = face
        frames.append(canvas)
    root = tmp_path / "FERV39k"
    _write_mp4(root / "0_7_LabelClips" / "Talkshow" / "Happy" / "0007.mp4", frames)
    _write_mp4(root / "0_7_LabelClips" / "War" / "Fear" / "0100.mp4", frames[:2])
    setups = root / "4_setups" / "All_scenes"
    setups.mkdir(parents=True)
    (setups / "train_All.csv").write_text("Talkshow/Happy/0007 Happy\n")
    (setups / "test_All.csv").write_text("War/Fear/0100 Fear\n")

    split = read_ferv39k(root, source="0_7_LabelClips")
    assert [c.video.name for c in split.clips] == ["0007.mp4", "0100.mp4"]
    jobs = find_ferv39k_clips(root, tmp_path / "out")
    assert [j.key for j in jobs] == ["Talkshow_Happy_0007", "War_Fear_0100"]
    assert jobs[0].out_dir == tmp_path / "out" / "2_ClipsforFaceCrop" / "Talkshow" / "Happy" / \
        "0007"

    result = CliRunner().invoke(app, ["prepare", "faces", "--dataset", "ferv39k", "--data-root",
                                      str(root), "--out", str(tmp_path / "out"), "--size", "64",
                                      "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    prepared = read_ferv39k(tmp_path / "out")  # the split was copied beside the faces
    assert [c.num_frames for c in prepared.clips] == [4, 2]
    assert prepared.clips[0].frames[0].name == "Talkshow_Happy_0007_00001.jpg"
    assert cv2.imread(str(prepared.clips[0].frames[0])).shape == (64, 64, 3)
    shutil.rmtree(root / "0_7_LabelClips")
    with pytest.raises(PathNotFoundError, match="FERV39k video folder not found"):
        find_ferv39k_clips(root, tmp_path / "out2")
