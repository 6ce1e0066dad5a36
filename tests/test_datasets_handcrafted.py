"""MEGC2019's hand-crafted baseline features (LBP-TOP, HOOF): generated zips, then the release."""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy.io import savemat

from conftest import shared_path
from fervid.config import ConfigError
from fervid.datasets.megc2019_handcrafted import (
    FEATURE_SETS,
    LABEL_FILE,
    HandcraftedSet,
    read_handcrafted,
)
from fervid.samples import DatasetFormatError

LBP, HOOF = "LBPTOP_TIM10_333_4", "HOOF_TIM64_8"
SHAPES = {LBP: (3, 59), HOOF: (8, 64)}

#: (file-name key, apex image, label, fervid's (dataset, subject, clip), apex), in label order:
#: not the zip's (sorted) order; a SAMM subject unpadded; a clip holding '-'.
SAMPLES = [
    ("smic-s03-s03_ne_10", "image559757.bmp", 0, ("smic", "s03", "s03_ne_10"), 559757),
    ("casme2-sub01-EP02_01f", "img59.jpg", 1, ("casme2", "sub01", "EP02_01f"), 59),
    ("samm-11-011_1_4", "011_01234.jpg", 2, ("samm", "011", "011_1_4"), 1234),
    ("casme2-sub02-EP03-02f", "img7.jpg", 2, ("casme2", "sub02", "EP03-02f"), 7),
    ("samm-006-006_1_2", "006_05588.jpg", 0, ("samm", "006", "006_1_2"), 5588),
    ("smic-s01-s01_po_02", "image100.bmp", 1, ("smic", "s01", "s01_po_02"), 100),
]


def mat_bytes(**variables) -> bytes:
    buffer = io.BytesIO()
    savemat(buffer, variables)
    return buffer.getvalue()


def feature(i: int, shape: tuple[int, int]) -> np.ndarray:
    """A distinct array per sample, so rows and flattening order can be checked."""
    return np.arange(shape[0] * shape[1], dtype=np.float64).reshape(shape) + 1000.0 * i


def good_members(setting: str) -> dict[str, bytes]:
    variable = FEATURE_SETS[setting][1]
    return {f"{setting}/Features/{key}.mat": mat_bytes(**{variable: feature(i, SHAPES[setting])})
            for i, (key, *_) in enumerate(SAMPLES)}


def write_zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        folders = sorted({name.rsplit("/", 1)[0] + "/" for name in members})
        for folder in folders:
            archive.writestr(folder, b"")
        for name in sorted(members):
            archive.writestr(name, members[name])
    return path


def label_lines() -> list[str]:
    return [f"{key}-{image} {label}" for key, image, label, *_ in SAMPLES]


def write_labels(root, lines):
    (root / LABEL_FILE).write_bytes(("\r\n".join(lines) + "\r\n").encode())


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "megc2019_handcrafted"
    root.mkdir()
    write_zip(root / "lbptop_features.zip", good_members(LBP))
    write_zip(root / "hoof_features.zip", good_members(HOOF))
    write_labels(root, label_lines())
    return root


def fails(root, setting=LBP, match=""):
    with pytest.raises(DatasetFormatError, match=match) as info:
        read_handcrafted(root, setting)
    return info.value


# --- generated data ----------------------------------------------------------------------------

@pytest.mark.parametrize("setting", [LBP, HOOF])
def test_reads_features_in_label_order(root, setting):
    got = read_handcrafted(root, setting)
    assert isinstance(got, HandcraftedSet)
    assert got.setting == setting and len(got) == len(SAMPLES)
    rows, cols = SHAPES[setting]
    assert got.features.shape == (len(SAMPLES), rows * cols)
    assert got.features.dtype == np.float32
    for i, row in enumerate(got.features):
        # Sample i's array, flattened row-major: row r of the .mat is columns r*cols..
        np.testing.assert_array_equal(row, feature(i, SHAPES[setting]).reshape(-1))
        assert row[cols] == 1000.0 * i + cols  # element [1, 0]
    assert [(s.dataset, s.subject, s.clip) for s in got.table] == [ids for *_, ids, _ in SAMPLES]


def test_sample_table(root):
    table = read_handcrafted(root, LBP).table
    assert table.classes == ("negative", "positive", "surprise")
    assert table.protocol == "3class"
    assert [s.label for s in table] == [label for _, _, label, *_ in SAMPLES]
    assert [s.emotion for s in table] == [table.classes[s.label] for s in table]
    assert [(s.onset, s.apex, s.offset) for s in table] == [(a, a, a) for *_, a in SAMPLES]
    assert all(s.frames == () for s in table)
    samm = [s for s in table if s.dataset == "samm"]
    assert [s.subject for s in samm] == ["011", "006"]  # '11' padded as read_megc2019 does
    assert samm[0].key == "samm_011_011_1_4"
    assert table.subjects == ["smic/s03", "casme2/sub01", "samm/011", "casme2/sub02",
                              "samm/006", "smic/s01"]


def test_other_classes(root):
    got = read_handcrafted(root, HOOF, classes=("a", "b", "c"))
    assert got.table.classes == ("a", "b", "c") and got.table.protocol == ""
    assert got.table[1].emotion == "b"


def test_only_the_settings_zip_is_needed(root):
    (root / "hoof_features.zip").unlink()
    assert len(read_handcrafted(root, LBP)) == len(SAMPLES)


def test_unpadded_smic_and_blank_lines(root):
    lines = label_lines()
    lines[0] = "smic-s3-s3_ne_10-image559757.bmp  0 "  # unpadded, extra spaces
    write_labels(root, ["", *lines, "", ""])
    assert read_handcrafted(root, LBP).table[0].clip == "s03_ne_10"


# --- bad input ---------------------------------------------------------------------------------

def test_unknown_setting(root):
    with pytest.raises(ConfigError, match=r"'LBP'.*choices: LBPTOP_TIM10_333_4, .*HOOF_TIM64_8"):
        read_handcrafted(root, "LBP")


def test_missing_root(tmp_path):
    fails(tmp_path / "absent", match=r"absent: 1 problem\(s\): folder does not exist")


def test_missing_zip(root):
    (root / "lbptop_features.zip").unlink()
    err = fails(root, match=r"lbptop_features\.zip: .*does not exist")
    assert err.path == root / "lbptop_features.zip"


def test_missing_label_file(root):
    (root / LABEL_FILE).unlink()
    err = fails(root, HOOF, match=r"Apex_Cropped_images\.txt: .*label file does not exist")
    assert err.path == root / LABEL_FILE


def test_missing_zip_and_label_file_together(root):
    (root / LABEL_FILE).unlink()
    (root / "hoof_features.zip").unlink()
    err = fails(root, HOOF, match="2 problem")
    assert err.path == root
    assert any(p.startswith("hoof_features.zip: ") for p in err.problems)
    assert any(p.startswith(f"{LABEL_FILE}: ") for p in err.problems)


def test_not_a_zip(root):
    (root / "hoof_features.zip").write_bytes(b"not a zip at all")
    err = fails(root, HOOF, match=r"hoof_features\.zip: 1 problem\(s\): not a zip archive")
    assert err.path == root / "hoof_features.zip"


def test_zip_without_the_setting(root):
    write_zip(root / "lbptop_features.zip", good_members(HOOF))
    fails(root, LBP, match=rf"lbptop_features\.zip: .*no folder {LBP}/ .*{HOOF}")


def test_unreadable_member(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/casme2-sub01-EP02_01f.mat"] = b"garbage" * 20
    write_zip(root / "lbptop_features.zip", members)
    err = fails(root, match=r"lbptop_features\.zip: 1 problem\(s\): "
                            rf"{LBP}/Features/casme2-sub01-EP02_01f\.mat: cannot read as a "
                            "MATLAB file")
    assert err.path == root / "lbptop_features.zip"


def test_member_without_the_variable(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/samm-11-011_1_4.mat"] = mat_bytes(HOOF=np.ones((3, 59)))
    write_zip(root / "lbptop_features.zip", members)
    fails(root, match=r"samm-11-011_1_4\.mat: no variable 'Histogram' \(holds: HOOF\)")


def test_member_of_another_shape(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/smic-s01-s01_po_02.mat"] = mat_bytes(Histogram=np.ones((3, 58)))
    write_zip(root / "lbptop_features.zip", members)
    fails(root, match=r"differs in shape.*3x59 in 5, 3x58 in 1; odd ones: "
                      rf"{LBP}/Features/smic-s01-s01_po_02\.mat")


def test_member_with_nan_or_text(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/smic-s01-s01_po_02.mat"] = mat_bytes(
        Histogram=np.full((3, 59), np.nan))
    members[f"{LBP}/Features/smic-s03-s03_ne_10.mat"] = mat_bytes(Histogram="text")
    write_zip(root / "lbptop_features.zip", members)
    err = fails(root, match="2 problem")
    assert any("s01_po_02.mat: Histogram holds NaN" in p for p in err.problems)
    assert any("s03_ne_10.mat: Histogram is not a real numeric array" in p for p in err.problems)


def test_label_line_that_does_not_parse(root):
    lines = label_lines()
    lines[2] = "samm-11-011_1_4-011_01234.jpg"  # no label
    lines[4] = "samm-006-006_1_2-frame.jpg 0"  # no frame number
    write_labels(root, lines)
    err = fails(root, match=r"Apex_Cropped_images\.txt: .*line 3: 'samm-11-011_1_4-011_01234.jpg'"
                            " is not")
    assert f"{LABEL_FILE}: line 5: 'samm-006-006_1_2-frame.jpg 0' is not " \
           "'<dataset>-<subject>-<clip>-<apex frame>.<ext> <label>'" in err.problems


def test_label_line_of_an_unknown_dataset(root):
    write_labels(root, [*label_lines(), "cas2-sub01-EP02_01f-img59.jpg 1"])
    fails(root, match=r"line 7: unknown dataset 'cas2'")


@pytest.mark.parametrize("label", ["3", "-1", "x", "1.5"])
def test_label_out_of_range(root, label):
    lines = label_lines()
    lines[1] = lines[1].rsplit(" ", 1)[0] + f" {label}"
    write_labels(root, lines)
    fails(root, match=rf"Apex_Cropped_images\.txt: .*line 2: label '{re.escape(label)}' is not an"
                      r" integer in 0\.\.2")


def test_feature_without_label(root):
    write_labels(root, label_lines()[:-1])
    err = fails(root, match=rf"1 feature file\(s\) in lbptop_features\.zip without a label line "
                            rf"in {LABEL_FILE}: {LBP}/Features/smic-s01-s01_po_02\.mat")
    assert err.path == root


def test_label_without_feature(root):
    members = good_members(HOOF)
    del members[f"{HOOF}/Features/casme2-sub01-EP02_01f.mat"]
    write_zip(root / "hoof_features.zip", members)
    fails(root, HOOF, match=rf"1 label line\(s\) in {LABEL_FILE} without a feature file in "
                            rf"hoof_features\.zip {HOOF}/: line 2 \(casme2-sub01-EP02_01f\)")


def test_many_missing_features_are_counted(root):
    write_zip(root / "lbptop_features.zip", {f"{LBP}/Features/casme2-sub01-EP02_01f.mat":
                                             mat_bytes(Histogram=np.ones((3, 59)))})
    write_labels(root, label_lines() + [f"smic-s09-s09_ne_0{i}-image1.bmp 0"
                                        for i in range(1, 5)])
    fails(root, match=r"9 label line\(s\) .*line 1 \(smic-s03-s03_ne_10\), .*\(4 more\)")


def test_duplicate_label_lines(root):
    lines = label_lines()
    write_labels(root, [*lines, "samm-6-006_1_2-006_05588.jpg 0"])  # same as samm-006
    fails(root, match=r"line 7: samm-6-006_1_2 is listed twice \(also line 5\)")


def test_duplicate_members(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/samm-6-006_1_2.mat"] = mat_bytes(Histogram=np.ones((3, 59)))
    write_zip(root / "lbptop_features.zip", members)
    fails(root, match=rf"{LBP}/Features/samm-6-006_1_2\.mat: the same sample as "
                      rf"{LBP}/Features/samm-006-006_1_2\.mat")


def test_every_problem_in_one_error(root):
    members = good_members(LBP)
    members[f"{LBP}/Features/casme2-sub01-EP02_01f.mat"] = b"garbage"
    write_zip(root / "lbptop_features.zip", members)
    lines = label_lines()
    lines[0] = "nonsense"
    write_labels(root, lines)
    err = fails(root, match="problem")
    assert err.path == root
    assert any(p.startswith("lbptop_features.zip: ") and "EP02_01f.mat: cannot read" in p
               for p in err.problems)
    assert f"{LABEL_FILE}: line 1: 'nonsense' is not " \
           "'<dataset>-<subject>-<clip>-<apex frame>.<ext> <label>'" in err.problems


# --- the release -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def release_root():
    return shared_path("megc2019_handcrafted")


@pytest.fixture(scope="module")
def flow_index():
    return pd.read_csv(shared_path("megc2019_flow", "index.csv"), dtype={"subject": str})


EXPECTED_SHAPES = {"LBPTOP_TIM10_333_4": (3, 59), "LBPTOP_TIM10_333_8": (3, 59),
                   "LBPTOP_TIM64_333_4": (3, 59), "LBPTOP_TIM64_333_8": (3, 59),
                   "HOOF_TIM10_4": (4, 9), "HOOF_TIM10_8": (8, 9),
                   "HOOF_TIM64_4": (4, 64), "HOOF_TIM64_8": (8, 64)}


def test_expected_shapes_cover_the_settings():
    assert set(EXPECTED_SHAPES) == set(FEATURE_SETS)


@pytest.mark.parametrize("setting", list(FEATURE_SETS))
def test_release(release_root, flow_index, setting):
    got = read_handcrafted(release_root, setting)
    rows, cols = EXPECTED_SHAPES[setting]
    assert got.features.shape == (442, rows * cols)
    assert np.isfinite(got.features).all()
    table = got.table
    assert Counter(table.classes[s.label] for s in table) == {
        "negative": 250, "positive": 109, "surprise": 83}
    assert len(table.subjects) == 68
    # The label file's order is the flow index's order, row for row, with the same ids.
    ours = [(s.dataset, s.subject, s.clip, s.label) for s in table]
    theirs = list(flow_index[["dataset", "subject", "clip", "label"]].itertuples(
        index=False, name=None))
    assert ours == theirs


def test_release_ids_and_apex(release_root):
    by_key = {s.key: s for s in read_handcrafted(release_root, "HOOF_TIM10_4").table}
    assert by_key["casme2_sub01_EP02_01f"].apex == 59  # as in the CASME II sheet
    assert by_key["samm_011_011_1_4"].dataset == "samm"
    assert by_key["samm_006_006_1_2"].apex == 5588
    assert by_key["smic_s01_s01_ne_01"].apex == 559757
