"""Bad input to the readers of still faces and precomputed inputs (FER2013 CSV, image folders,
index.csv + images): one FervidError, one line naming the file (and row or field) and the
problem; unusual but valid input reads. Release readers: test_bad_input_readers.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from bad_input import GARBAGE, PNG_BYTES, assert_refused
from generated import make_precomputed

# --- FER2013 CSV and image folders ----------------------------------------------------------

def fer_csv(rows: int = 3) -> str:
    pixels = " ".join(["128"] * 48 * 48)
    usage = ["Training", "PublicTest", "PrivateTest"]
    return "emotion,pixels,Usage\n" + "".join(f"{i % 7},{pixels},{usage[i % 3]}\n"
                                               for i in range(rows))


FER_CASES = {
    "zero_byte": (b"", "empty"),
    "garbage": (GARBAGE, "UTF-8"),
    "png": (PNG_BYTES, ""),
    "missing_column": (fer_csv().replace("emotion,pixels,Usage", "emotion,pixel,Usage")
                       .encode(), "pixels"),
    "cut_short": (fer_csv().encode()[:-400], "row 4"),
    "emotion_9": (fer_csv().replace("\n1,", "\n9,", 1).encode(), "row 3"),
    "usage_unknown": (fer_csv().replace("PublicTest", "Validation").encode(), "row 3"),
    "pixel_300": (fer_csv().replace("emotion,pixels,Usage\n0,128", "emotion,pixels,Usage\n"
                                    "0,300").encode(), "row 2"),
    "pixel_a_word": (fer_csv().replace("\n0,128 ", "\n0,grey ").encode(), "row 2"),
    "header_only": (b"emotion,pixels,Usage\n", "no rows"),
}


@pytest.mark.parametrize("case", sorted(FER_CASES))
def test_bad_fer2013_csv(case, tmp_path):
    from fervid.datasets.fer2013 import read_fer2013

    content, says = FER_CASES[case]
    path = tmp_path / "fer2013.csv"
    path.write_bytes(content)
    assert_refused(lambda: read_fer2013(tmp_path), must_name=path, says=says)


def test_fer2013_csv_with_an_extra_column_and_crlf_in_an_accented_path_reads(tmp_path):
    from fervid.datasets.fer2013 import read_fer2013

    folder = tmp_path / "données FER"
    folder.mkdir()
    text = fer_csv().replace("Usage\n", "Usage,note\n").replace("Test\n", "Test,x\n")
    text = text.replace("Training\n", "Training,y\n")
    (folder / "fer2013.csv").write_bytes(text.replace("\n", "\r\n").encode())
    assert len(read_fer2013(folder).table) == 3


def _faces(root: Path) -> Path:
    for name in ("angry", "happy"):
        (root / name).mkdir(parents=True)
        cv2.imwrite(str(root / name / "a.png"), np.full((8, 8), 90, np.uint8))
    return root


IMAGE_FOLDER_CASES = {
    "unknown_class": (lambda r: (r / "banana").mkdir(), "banana"),
    "empty_class": (lambda r: (r / "sad").mkdir(), "sad"),
    "two_names_one_class": (lambda r: shutil.copytree(r / "angry", r / "anger"), "anger"),
    "no_class_folder": (lambda r: [shutil.rmtree(p) for p in list(r.iterdir())], "class"),
}


@pytest.mark.parametrize("case", sorted(IMAGE_FOLDER_CASES))
def test_bad_image_folder(case, tmp_path):
    from fervid.datasets.image_folder import read_face_folders

    root = _faces(tmp_path / "faces")
    change, says = IMAGE_FOLDER_CASES[case]
    change(root)
    assert_refused(lambda: read_face_folders(root), must_name=root, says=says)


# --- Precomputed inputs (index.csv + images) --------------------------------------------

def _index(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / "index.csv", dtype=str)


def _png16(path: Path) -> None:
    cv2.imwrite(str(path), np.full((28, 28, 3), 4000, np.uint16))


PRECOMPUTED_CASES = {
    "index_zero_byte": (lambda f: (f / "index.csv").write_bytes(b""), "index.csv", "CSV"),
    "index_garbage": (lambda f: (f / "index.csv").write_bytes(GARBAGE), "index.csv", ""),
    "index_is_a_png": (lambda f: (f / "index.csv").write_bytes(PNG_BYTES), "index.csv", ""),
    "index_missing": (lambda f: (f / "index.csv").unlink(), "index.csv", "no index.csv"),
    "missing_column": (lambda f: _index(f).drop(columns="label").to_csv(f / "index.csv",
                                                                          index=False),
                       "label", "missing column"),
    "renamed_column": (lambda f: _index(f).rename(columns={"file": "path"}).to_csv(
        f / "index.csv", index=False), "file", "missing column"),
    "header_only": (lambda f: _index(f).iloc[:0].to_csv(f / "index.csv", index=False),
                    "index.csv", "no rows"),
    "label_a_word": (lambda f: _index(f).assign(label="happy").to_csv(f / "index.csv",
                                                                      index=False),
                     "line 2", "label 'happy'"),
    "label_out_of_range": (lambda f: _index(f).assign(label="5").to_csv(f / "index.csv",
                                                                        index=False),
                           "line 2", "label '5'"),
    "cut_short": (lambda f: (f / "index.csv").write_bytes(
        (f / "index.csv").read_bytes().rstrip(b"\n")[:-12]), "index.csv", "line 13"),
    "image_text": (lambda f: (f / "s00_c01.png").write_text("hello"), "s00_c01.png",
                   "not a readable image"),
    "image_zero_byte": (lambda f: (f / "s00_c01.png").write_bytes(b""), "s00_c01.png",
                        "not a readable image"),
    "image_truncated": (lambda f: (f / "s00_c01.png").write_bytes(
        (f / "s00_c01.png").read_bytes()[:200]), "s00_c01.png", "not a readable image"),
    "image_16_bit": (lambda f: _png16(f / "s00_c01.png"), "s00_c01.png", "uint16"),
    "image_other_size": (lambda f: cv2.imwrite(str(f / "s00_c01.png"),
                                               np.zeros((10, 10, 3), np.uint8)),
                         "s00_c01.png", "differ"),
    "image_missing": (lambda f: (f / "s00_c01.png").unlink(), "s00_c01.png", "missing"),
    "clip_twice": (lambda f: pd.concat([_index(f), _index(f).iloc[:1]]).to_csv(
        f / "index.csv", index=False), "line 14", "twice"),
}


@pytest.mark.parametrize("case", sorted(PRECOMPUTED_CASES))
def test_bad_precomputed_folder(case, tmp_path):
    from fervid.datasets import read_precomputed

    folder = make_precomputed(tmp_path / "flow", n_subjects=3, per_subject=4)
    change, names, says = PRECOMPUTED_CASES[case]
    change(folder)
    message = assert_refused(lambda: read_precomputed(folder), must_name=folder, says=says)
    assert names in message


def test_precomputed_with_extra_columns_in_an_accented_path_reads(tmp_path):
    from fervid.datasets import read_precomputed

    folder = make_precomputed(tmp_path / "flux optique é", n_subjects=2, per_subject=2)
    _index(folder).assign(note="x", onset="1").to_csv(folder / "index.csv", index=False)
    assert len(read_precomputed(folder)) == 4
