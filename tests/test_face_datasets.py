"""Still-face readers: FER2013 (CSV and image folders), the generic image folder, the class
vocabulary."""

from __future__ import annotations

import csv
from collections import Counter

import cv2
import numpy as np
import pytest

from fervid.datasets.class_names import UnknownClassError, canonical_class, require_class
from fervid.datasets.fer2013 import FER2013_CLASSES, read_fer2013, read_fer2013_csv
from fervid.datasets.image_folder import SkippedFilesWarning, read_image_folder
from fervid.representation.face_images import load_face_images
from fervid.samples import DatasetFormatError


def _faces(root, spec: dict[str, int], size=48, seed=0):
    rng = np.random.default_rng(seed)
    for name, n in spec.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            cv2.imwrite(str(root / name / f"img_{i}.png"),
                        rng.integers(0, 256, (size, size), dtype=np.uint8))


def test_aliases_map_to_one_vocabulary():
    assert canonical_class("Angry") == "anger"
    assert canonical_class("happy") == "happiness"
    assert canonical_class("sad") == "sadness"
    assert canonical_class("surprised") == "surprise"
    assert canonical_class("other") == "others"
    assert canonical_class("helpless") == "helplessness"
    assert canonical_class("bored") is None
    with pytest.raises(UnknownClassError, match="bored"):
        require_class("bored", "faces/bored")


def test_image_folder_reads_classes_by_alias(tmp_path):
    _faces(tmp_path, {"angry": 2, "Happy": 3, "neutral": 1})
    (tmp_path / "Happy" / "notes.txt").write_text("not an image")
    with pytest.warns(SkippedFilesWarning, match="notes.txt"):
        table = read_image_folder(tmp_path)
    assert table.classes == ("anger", "happiness", "neutral")
    assert Counter(s.emotion for s in table) == {"anger": 2, "happiness": 3, "neutral": 1}
    assert {s.label for s in table if s.emotion == "happiness"} == {1}
    faces = load_face_images(table, 40, show_progress=False)
    assert faces.x.shape == (6, 1, 40, 40) and faces.x.dtype.is_floating_point is False


def test_image_folder_unknown_class_is_named(tmp_path):
    _faces(tmp_path, {"happy": 1, "bored": 1})
    with pytest.raises(UnknownClassError, match=r"bored"):
        read_image_folder(tmp_path)


def test_image_folder_layout_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_image_folder(tmp_path / "missing")
    with pytest.raises(DatasetFormatError, match="no class folders"):
        read_image_folder(tmp_path)
    _faces(tmp_path, {"happy": 1, "happiness": 1})
    (tmp_path / "sad").mkdir()
    with pytest.raises(DatasetFormatError) as err:
        read_image_folder(tmp_path)
    text = str(err.value)
    assert "both name class happiness" in text and "sad/: no images" in text


def _write_csv(path, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)


def test_fer2013_csv_and_folder_agree(tmp_path):
    # A CSV written from a generated image-folder release reads as the same faces.
    tree = tmp_path / "tree"
    for split, n in (("train", 3), ("validation", 2), ("test", 2)):
        _faces(tree / split, {"angry": n, "happy": n}, seed=n)
    folder = read_fer2013(tree)
    folder_faces = load_face_images(folder.table, 48, show_progress=False)
    usage = {"train": "Training", "validation": "PublicTest", "test": "PrivateTest"}
    rows = [[s.label, " ".join(map(str, folder_faces.x[i, 0].flatten().tolist())),
             usage[s.split]] for i, s in enumerate(folder.table)]
    _write_csv(tmp_path / "fer2013.csv", rows)
    from_csv = read_fer2013(tmp_path)  # a folder holding fer2013.csv
    assert [s.split for s in from_csv.table] == [s.split for s in folder.table]
    assert [s.emotion for s in from_csv.table] == [s.emotion for s in folder.table]
    csv_faces = load_face_images(from_csv.table, 48, pixels=from_csv.pixels,
                                 show_progress=False)
    assert np.array_equal(csv_faces.x.numpy(), folder_faces.x.numpy())
    assert from_csv.table.classes == FER2013_CLASSES


def test_fer2013_csv_bad_rows_are_named(tmp_path):
    good = " ".join(["7"] * 2304)
    _write_csv(tmp_path / "fer2013.csv", [
        [0, good, "Training"],
        [3, " ".join(["7"] * 2303), "Training"],
        [9, good, "PublicTest"],
        [1, good, "Holdout"],
        [2, good.replace("7", "x", 1), "PrivateTest"],
    ])
    with pytest.raises(DatasetFormatError) as err:
        read_fer2013_csv(tmp_path / "fer2013.csv")
    text = str(err.value)
    assert "fer2013.csv: 4 problem(s)" in text
    assert "row 3: 2303 pixel values, expected 2304" in text
    assert "row 4: emotion '9'" in text
    assert "row 5: Usage 'Holdout'" in text
    assert "row 6: pixels are not integers" in text


def test_fer2013_real_release(shared):
    images = read_fer2013(shared("fer2013"))
    counts = Counter(s.split for s in images.table)
    assert counts == {"train": 28709, "validation": 3589, "test": 3589}
    assert images.table.classes == FER2013_CLASSES
    assert all(s.label is not None for s in images.table)
