"""Precomputed-input folders: the real megc2019_flow and generated ones."""

from __future__ import annotations

import csv
from collections import Counter

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import shared_path
from fervid.datasets import PrecomputedSet, read_precomputed
from fervid.samples import DatasetFormatError

COLUMNS = ["dataset", "subject", "clip", "label", "file"]


def write_folder(folder, images, labels, columns=COLUMNS):
    """``images``: name -> array (written with cv2, so in its channel order)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, ((name, image), label) in enumerate(zip(images.items(), labels, strict=True)):
        if image is not None:
            assert cv2.imwrite(str(folder / name), image)
        rows.append(["toy", f"p{i % 2}", f"c{i}", label, name])
    with open(folder / "index.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return folder


def test_megc2019_flow():
    folder = shared_path("megc2019_flow")
    data = read_precomputed(folder)
    assert isinstance(data, PrecomputedSet)
    assert data.images.shape == (442, 28, 28, 3)
    assert data.images.dtype == np.uint8
    assert len(data) == 442 and len(data.table.subjects) == 68
    with open(folder / "index.csv", newline="") as f:
        index = list(csv.DictReader(f))
    assert [(s.dataset, s.subject, s.clip, s.label) for s in data.table] == [
        (r["dataset"], r["subject"], r["clip"], int(r["label"])) for r in index]
    assert Counter(s.emotion for s in data.table) == {"negative": 250, "positive": 109,
                                                      "surprise": 83}
    first = data.table[0]
    assert first.frames == (folder / index[0]["file"],)
    assert (first.onset, first.apex, first.offset) == (0, 0, 0)
    # Channels in the file's (OpenCV BGR) order: PIL decodes RGB, so reversed it must agree.
    for i in (0, 200, 441):
        rgb = np.asarray(Image.open(data.table[i].frames[0]).convert("RGB"))
        np.testing.assert_array_equal(data.images[i], rgb[:, :, ::-1])
    assert not np.array_equal(data.images[0], data.images[0][:, :, ::-1])


def test_generated_folder_any_size_channels_and_classes(tmp_path):
    rng = np.random.default_rng(0)
    images = {f"{i}.png": rng.integers(0, 256, (5, 7, 4), dtype=np.uint8) for i in range(3)}
    folder = write_folder(tmp_path / "toy", images, [1, 0, 1])
    data = read_precomputed(folder, classes=("calm", "tense"))
    assert data.images.shape == (3, 5, 7, 4)
    for i, image in enumerate(images.values()):
        np.testing.assert_array_equal(data.images[i], image)
    assert [s.emotion for s in data.table] == ["tense", "calm", "tense"]
    assert data.table.classes == ("calm", "tense")
    assert data.table.subjects == ["toy/p0", "toy/p1"]


def test_grayscale_images_keep_a_channel_axis(tmp_path):
    images = {f"{i}.png": np.full((4, 6), 10 * i, np.uint8) for i in range(2)}
    data = read_precomputed(write_folder(tmp_path / "gray", images, [0, 2]))
    assert data.images.shape == (2, 4, 6, 1)
    assert data.images[1, 0, 0, 0] == 10


def test_no_index_csv(tmp_path):
    with pytest.raises(DatasetFormatError, match="no index.csv") as caught:
        read_precomputed(tmp_path)
    assert caught.value.path == tmp_path


def test_wrong_columns(tmp_path):
    images = {"a.png": np.zeros((2, 2, 3), np.uint8)}
    folder = write_folder(tmp_path / "f", images, [0],
                          columns=["dataset", "subject", "video", "class", "file"])
    with pytest.raises(DatasetFormatError) as caught:
        read_precomputed(folder)
    assert caught.value.problems[:2] == ["index.csv: missing column 'clip'",
                                         "index.csv: missing column 'label'"]


def test_every_problem_is_listed(tmp_path):
    ok = np.zeros((8, 8, 3), np.uint8)
    images = {"ok.png": ok, "ok2.png": ok, "big.png": np.zeros((9, 8, 3), np.uint8),
              "gone.png": None, "text.png": None, "deep.png": np.zeros((8, 8, 3), np.uint16)}
    folder = write_folder(tmp_path / "bad", images, [0, 5, 1, 2, 0, "neg"])
    (folder / "text.png").write_text("not an image")
    with pytest.raises(DatasetFormatError) as caught:
        read_precomputed(folder)
    err = caught.value
    assert err.path == folder
    assert err.problems == [
        "index.csv line 3: label '5' is not an integer in 0..2 (negative, positive, surprise)",
        "index.csv line 7: label 'neg' is not an integer in 0..2 (negative, positive, surprise)",
        "gone.png: file missing",
        "text.png: not a readable image",
        "deep.png: uint16 pixels, expected uint8",
        "images differ in size or channels (H x W x C): 8x8x3 in 2 file(s), 9x8x3 in 1 "
        "file(s); first odd ones: big.png",
    ]
