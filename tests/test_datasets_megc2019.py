"""The MEGC2019 composite over the three fixture releases, against the real ground truth."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from conftest import shared_path
from fervid.datasets import AnnotationWarning, read_megc2019, read_megc2019_gt
from fervid.samples import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore:.*apex not annotated")


@pytest.fixture
def gt_csv():
    return shared_path("annotations", "megc2019", "combined_3class_gt.csv")


@pytest.fixture
def releases(casme2_release, samm_release, smic_release):
    """The keyword arguments of read_megc2019 but the ground truth."""
    return dict(casme2_root=casme2_release[0], casme2_sheet=casme2_release[1],
                samm_root=samm_release[0], samm_sheet=samm_release[1],
                smic_root=smic_release[0])


def gt_rows(path):
    with open(path, newline="") as f:
        return [tuple(r) for r in csv.reader(f)]


def write_gt(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_matches_the_ground_truth_row_for_row(gt_csv, releases):
    table = read_megc2019(gt_csv, **releases)
    # SAMM subjects: the file writes 6, the samples (and megc2019_flow/index.csv) use 006.
    expected = [(d, s.zfill(3) if d == "samm" else s, c, int(label))
                for d, s, c, label in gt_rows(gt_csv)]
    assert [(s.dataset, s.subject, s.clip, s.label) for s in table] == expected
    assert len(table) == 442
    assert len(table.subjects) == 68
    assert table.classes == ("negative", "positive", "surprise")
    assert Counter(table.classes[s.label] for s in table) == {
        "negative": 250, "positive": 109, "surprise": 83}
    assert Counter(s.dataset for s in table) == {"smic": 164, "casme2": 145, "samm": 133}


def test_frames_come_from_the_releases(gt_csv, releases, smic_release):
    table = read_megc2019(gt_csv, **releases)
    by_key = {s.key: s for s in table}
    casme = by_key["casme2_sub01_EP02_01f"]
    assert (casme.onset, casme.apex, casme.offset, casme.emotion) == (46, 59, 86, "happiness")
    assert casme.frames[casme.apex_position].name == "img59.jpg"
    samm = by_key["samm_006_006_1_2"]
    assert (samm.onset, samm.apex, samm.offset, samm.emotion) == (5562, 5588, 5632, "anger")
    expected = smic_release[1]
    for s in table:
        if s.dataset == "smic":
            assert (s.onset, s.offset) == expected[s.clip][:2]
            assert len(s.frames) == s.offset - s.onset + 1


def test_ground_truth_ids_are_normalised(gt_csv):
    gt = read_megc2019_gt(gt_csv)
    assert len(gt) == 442
    assert gt.iloc[0].tolist() == ["casme2", "sub01", "EP02_01f", 1]
    assert set(gt.loc[gt.dataset == "samm", "subject"].str.len()) == {3}


def test_only_ground_truth_clips_are_needed(tmp_path, casme2_release, samm_release):
    # Small releases with just the clips the (shortened) ground truth names.
    gt = write_gt(tmp_path / "gt.csv", [("samm", "6", "006_1_2", "0"),
                                        ("casme2", "sub01", "EP02_01f", "1"),
                                        ("smic", "s01", "s01_ne_01", "0")])
    casme = tmp_path / "CASME2_RAW_selected" / "sub01" / "EP02_01f"
    samm = tmp_path / "SAMM" / "006" / "006_1_2"
    smic = tmp_path / "HS" / "s1" / "micro" / "negative" / "s1_ne_01"
    for folder, names in ((casme, [f"img{n}.jpg" for n in range(46, 87)]),
                          (samm, [f"006_{n:05d}.jpg" for n in range(5562, 5633)]),
                          (smic, ["image000010.bmp", "image000011.bmp"])):
        folder.mkdir(parents=True)
        for name in names:
            (folder / name).touch()
    table = read_megc2019(gt, tmp_path / "CASME2_RAW_selected", casme2_release[1],
                          tmp_path / "SAMM", samm_release[1], tmp_path)
    assert [s.key for s in table] == ["samm_006_006_1_2", "casme2_sub01_EP02_01f",
                                      "smic_s01_s01_ne_01"]
    assert [s.label for s in table] == [0, 1, 0]
    # A ground truth naming one dataset needs only that release.
    only_smic = write_gt(tmp_path / "smic_gt.csv", [("smic", "s01", "s01_ne_01", "0")])
    table = read_megc2019(only_smic, tmp_path / "absent", tmp_path / "absent.xlsx",
                          tmp_path / "absent", tmp_path / "absent.xlsx", tmp_path)
    assert [(s.key, s.label) for s in table] == [("smic_s01_s01_ne_01", 0)]


def test_ground_truth_clips_absent_from_the_releases(tmp_path, gt_csv, releases):
    rows = gt_rows(gt_csv) + [("casme2", "sub01", "EP99_01", "0"), ("samm", "6", "006_9_9", "0"),
                              ("smic", "s01", "s01_ne_99", "0")]
    gt = write_gt(tmp_path / "gt.csv", rows)
    with pytest.raises(DatasetFormatError) as caught:
        read_megc2019(gt, **releases)
    err = caught.value
    assert err.path == gt
    assert len(err.problems) == 3
    assert "CASME II sub01/EP99_01 (ground truth) is not in the sheet" in err.problems[0]
    assert "SAMM 006/006_9_9 (ground truth) is not in the sheet" in err.problems[1]
    assert "SMIC s01/s01_ne_99 (ground truth) is not in the release" in err.problems[2]


def test_problems_of_all_releases_are_listed_together(tmp_path, gt_csv, releases):
    args = dict(releases, casme2_root=tmp_path / "no_casme", smic_root=tmp_path)
    with pytest.raises(DatasetFormatError) as caught:
        read_megc2019(gt_csv, **args)
    problems = caught.value.problems
    assert problems[0] == f"{tmp_path / 'no_casme'}: CASME II folder does not exist"
    assert problems[1].startswith(f"{tmp_path}: no HS/ folder")
    assert len(problems) == 2


def test_label_disagreement_warns_and_keeps_the_ground_truth(tmp_path, gt_csv, releases):
    rows = gt_rows(gt_csv)
    i = rows.index(("casme2", "sub01", "EP02_01f", "1"))
    rows[i] = ("casme2", "sub01", "EP02_01f", "2")
    with pytest.warns(AnnotationWarning, match=r"1 clip\(s\).*casme2_sub01_EP02_01f "
                                               r"\(happiness -> positive, ground truth surprise"):
        table = read_megc2019(write_gt(tmp_path / "gt.csv", rows), **releases)
    assert table[i].label == 2


def test_bad_ground_truth_lines(tmp_path, releases):
    gt = write_gt(tmp_path / "gt.csv", [("casme2", "sub01", "EP02_01f", "3"),
                                        ("casme3", "sub01", "EP02_01f", "0"),
                                        ("smic", "s01", "s01_ne_01", "x")])
    with pytest.raises(DatasetFormatError) as caught:
        read_megc2019(gt, **releases)
    assert caught.value.path == gt
    assert caught.value.problems == [
        "line 2: unknown dataset 'casme3' (expected one of casme2, samm, smic)",
        "line 1: label '3' is not 0..2",
        "line 3: label 'x' is not 0..2"]
