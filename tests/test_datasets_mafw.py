"""The MAFW reader on the real fold lists, release trees built from them, and real MAFW clips."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import cv2
import pytest
from typer.testing import CliRunner

from conftest import shared_path
from fervid.cli import app
from fervid.datasets.mafw import (
    LIST_ORDER,
    MAFW_CLASSES,
    find_mafw_clips,
    read_mafw,
    read_mafw_splits,
    read_split_file,
)
from fervid.datasets.registry import dataset_spec
from fervid.datasets.video_release import release_of
from fervid.errors import OptionError, PathNotFoundError
from fervid.samples import DatasetFormatError
from release_trees.mafw import build, real_rows

#: Clips per class of each fold, (train, test), in the release's label order (anger ..
#: disappointment).
FOLD_COUNTS = {
    1: ((1112, 511, 500, 993, 910, 1176, 857, 188, 732, 209, 145),
        (278, 128, 125, 249, 228, 294, 215, 48, 184, 53, 37)),
    2: ((1112, 511, 500, 993, 910, 1176, 857, 189, 733, 209, 145),
        (278, 128, 125, 249, 228, 294, 215, 47, 183, 53, 37)),
    3: ((1112, 511, 500, 994, 910, 1176, 858, 189, 733, 210, 146),
        (278, 128, 125, 248, 228, 294, 214, 47, 183, 52, 36)),
    4: ((1112, 511, 500, 994, 911, 1176, 858, 189, 733, 210, 146),
        (278, 128, 125, 248, 227, 294, 214, 47, 183, 52, 36)),
    5: ((1112, 512, 500, 994, 911, 1176, 858, 189, 733, 210, 146),
        (278, 127, 125, 248, 227, 294, 214, 47, 183, 52, 36)),
}
#: Clips per class of MAFW's single-label set (its ``single-set.xlsx``, as published).
SINGLE_SET = (1390, 639, 625, 1242, 1138, 1470, 1072, 236, 916, 262, 182)


def test_classes_are_the_release_label_order():
    assert MAFW_CLASSES == ("anger", "disgust", "fear", "happiness", "neutral", "sadness",
                            "surprise", "contempt", "anxiety", "helplessness", "disappointment")
    assert set(LIST_ORDER) == set(MAFW_CLASSES) and LIST_ORDER[:4] == (
        "happiness", "sadness", "neutral", "anger")
    release = release_of(dataset_spec("mafw"))
    assert release.folds == (1, 2, 3, 4, 5) and release.classes == MAFW_CLASSES
    assert release.sources == ("faces", "frames", "clips")


def test_real_fold_sizes_per_class():
    folds = read_mafw_splits(split_dir=shared_path("annotations", "mafw"))
    assert [f.fold for f in folds] == [1, 2, 3, 4, 5]
    tested: list[str] = []
    for fold in folds:
        for clips, expected in zip((fold.train, fold.test), FOLD_COUNTS[fold.fold], strict=True):
            counts = Counter(c.label for c in clips)
            assert tuple(counts[k] for k in range(11)) == expected, fold.fold
        ids = {c.clip_id for c in fold.train + fold.test}
        assert len(ids) == len(fold.train) + len(fold.test) == 9172
        tested += [c.clip_id for c in fold.test]
    assert len(set(tested)) == len(tested) == 9172  # the test lists partition the set
    # The lists' classes are MAFW's: per class, exactly its single-label set's clips.
    every = {c.clip_id: c for f in folds for c in f.test}
    assert tuple(Counter(c.emotion for c in every.values())[k] for k in MAFW_CLASSES) == \
        SINGLE_SET
    # The release's own example line, "03747.mp4 anger", is the lists' first clip, label 3.
    assert real_rows(1, "train")[0][::2] == ("03747", 3)
    assert (folds[0].train[0].clip_id, folds[0].train[0].emotion) == ("03747", "anger")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("mafw"), limit=33, frames=3)["root"]


def test_official_layout_is_read(tree):
    split = read_mafw(tree)
    assert split.source == "faces" and split.missing == () and split.classes == MAFW_CLASSES
    fold1 = split.fold(1)
    assert (len(fold1.train), len(fold1.test)) == (27, 6)
    assert {c.label for c in fold1.train} == set(range(11))
    assert len(split.clips) == 33 and [f.fold for f in split.folds] == [1, 2, 3, 4, 5]
    clip = fold1.train[0]
    assert re.fullmatch(r"\d{5}", clip.clip_id) and clip.emotion == MAFW_CLASSES[clip.label]
    assert [p.name for p in clip.frames] == ["00001.jpg", "00002.jpg", "00003.jpg"]
    assert clip.frames[0].parent == tree / "data" / "faces" / clip.clip_id
    listed = {c: LIST_ORDER[k] for c, _, k in real_rows(1, "train") + real_rows(1, "test")}
    assert all(listed[c.clip_id] == c.emotion for c in split.clips)


def test_the_lists_are_read_from_split_dir_and_skip_missing(tree, caplog):
    lists = shared_path("annotations", "mafw")
    with pytest.raises(DatasetFormatError, match="frame folder .* not found"):
        read_mafw(tree, folds=[1], split_dir=lists)
    with caplog.at_level(logging.WARNING, logger="fervid.datasets.mafw"):
        split = read_mafw(tree, folds=[1], split_dir=lists, skip_missing=True)
    assert len(split.clips) == 33 and len(split.missing) == 9172 - 33
    assert any("skipping 9139 of 9172" in r.getMessage() for r in caplog.records)


def test_whole_release_tree_reads_as_the_lists(tmp_path):
    root = build(tmp_path, frames=0)["root"]  # the split files only
    official = read_mafw_splits(root)
    listed = read_mafw_splits(split_dir=shared_path("annotations", "mafw"))
    for a, b in zip(official, listed, strict=True):
        assert (a.fold, a.train, a.test) == (b.fold, b.train, b.test)


@pytest.mark.parametrize("body, problem", [
    ("00025.mp4 anger_disgust\n", "line 1: class 'anger_disgust' is none of MAFW's 11"),
    ("0025.mp4 anger\n", "line 1: '0025.mp4' is not a 5-digit clip id"),
    ("00025.mp4 anger\n\n00025.mp4 anger\n", "line 3: clip 00025 repeats line 1"),
    ("00025.mp4\n", "line 1: 1 fields, expected 2"),
])
def test_bad_release_lines_name_file_and_line(tmp_path, body, problem):
    path = tmp_path / "set_1" / "train.txt"
    path.parent.mkdir()
    path.write_text(body)
    with pytest.raises(DatasetFormatError) as caught:
        read_split_file(path)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_list_labels_map_to_the_release_order(tmp_path):
    path = tmp_path / "MAFW_set_1_test.txt"
    path.write_text("/x/data/faces/00025 47 3\n/x/data/faces/00120 30 2\n/x/00467 60 0\n")
    assert read_split_file(path) == [("00025", 0), ("00120", 4), ("00467", 3)]
    path.write_text("/x/data/faces/00025 47 11\n/x/25 4 1\n")
    with pytest.raises(DatasetFormatError) as caught:
        read_split_file(path)
    assert "line 1: label '11' outside 0..10" in str(caught.value)
    assert "line 2: '25' is not a 5-digit clip id" in str(caught.value)


def test_a_clip_in_both_parts_of_a_fold_is_refused(tmp_path):
    folder = tmp_path / "Train & Test Set" / "single" / "no_caption" / "set_1"
    folder.mkdir(parents=True)
    (folder / "train.txt").write_text("00025.mp4 anger\n00026.mp4 fear\n")
    (folder / "test.txt").write_text("00025.mp4 anger\n")
    with pytest.raises(DatasetFormatError, match="clip 00025: in both the training and the "
                                                 "test list of fold 1"):
        read_mafw_splits(tmp_path, folds=[1])


def test_bad_arguments(tmp_path, tree):
    with pytest.raises(OptionError, match="unknown MAFW source 'clip_224x224'; valid sources: "
                                          "faces, frames, clips"):
        read_mafw(tree, source="clip_224x224")
    with pytest.raises(OptionError, match=r"MAFW folds are 1..5, got \[0\]"):
        read_mafw(tree, folds=[0])
    with pytest.raises(PathNotFoundError, match="MAFW folder not found"):
        read_mafw(tmp_path / "absent")
    with pytest.raises(PathNotFoundError, match="no MAFW split files of fold 1"):
        read_mafw(tmp_path)
    with pytest.raises(PathNotFoundError, match="MAFW video folder not found"):
        find_mafw_clips(tmp_path, tmp_path / "out")


#: Real MAFW clips (GIFs of the release's samples) with one label each: file, class.
SAMPLES = {"happy_01440.gif": "happiness", "anxiety_07499.gif": "anxiety"}


def test_real_clips_are_read_and_prepared_into_the_face_layout(tmp_path):
    from fervid.faces import DlibFaceDetector

    root = tmp_path / "MAFW"
    clips = root / "data" / "clips"
    clips.mkdir(parents=True)
    ids = {}
    for name, label in SAMPLES.items():
        clip_id = re.search(r"\d{5}", name).group()
        shutil.copyfile(shared_path("mafw_samples", name), clips / f"{clip_id}.gif")
        ids[clip_id] = label
    folder = root / "Train & Test Set" / "single" / "no_caption" / "set_1"
    folder.mkdir(parents=True)
    first, second = sorted(ids)
    (folder / "train.txt").write_text(f"{first}.mp4 {ids[first]}\n")
    (folder / "test.txt").write_text(f"{second}.mp4 {ids[second]}\n")

    videos = read_mafw(root, source="clips", folds=[1])
    assert [c.video.name for c in videos.clips] == [f"{first}.gif", f"{second}.gif"]
    assert [j.key for j in find_mafw_clips(root, tmp_path / "o")] == sorted(ids)

    out = tmp_path / "MAFW_faces"
    result = CliRunner().invoke(app, ["prepare", "faces", "--dataset", "mafw", "--data-root",
                                      str(root), "--out", str(out), "--size", "112",
                                      "--workers", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    faces = read_mafw(out, folds=[1])  # the folds were copied beside the faces
    assert [c.emotion for c in faces.clips] == [ids[first], ids[second]]
    assert [c.num_frames for c in faces.clips] == [19, 20]  # every frame of each GIF
    assert faces.clips[0].frames[0].name == f"{first}_00001.jpg"
    detector = DlibFaceDetector(upsample=1)
    for clip in faces.clips:  # an aligned face fills each crop
        crop = cv2.imread(str(clip.frames[len(clip.frames) // 2]))
        assert crop.shape == (112, 112, 3) and len(detector.detect_faces(crop)) == 1
