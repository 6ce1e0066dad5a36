"""Cross-dataset composites built from the dataset table (fervid.datasets.composite)."""

from __future__ import annotations

import csv
import warnings

import pytest

from fervid.datasets.composite import Part, parts_from_paths, read_composite
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError


@pytest.fixture(scope="module")
def megc_parts(casme2_release, samm_release, smic_release):
    (casme2_root, casme2_sheet), (samm_root, samm_sheet) = casme2_release, samm_release
    # The ground truth's order: CASME II, SMIC, SAMM.
    return [Part("casme2", casme2_root, casme2_sheet), Part("smic", smic_release[0]),
            Part("samm", samm_root, samm_sheet)]


def test_megc2019_from_the_registry_equals_its_ground_truth_row_for_row(shared, megc_parts):
    with open(shared("annotations", "megc2019", "combined_3class_gt.csv"), newline="") as f:
        gt = [(d, s, c, int(label)) for d, s, c, label in csv.reader(f)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = read_composite(megc_parts, "3class")
    # SAMM's ground-truth subjects are unpadded ("6"); the reader's are the folder's ("006").
    got = [(s.dataset, s.subject.lstrip("0") if s.dataset == "samm" else s.subject, s.clip,
            s.label) for s in table]
    assert got == gt
    assert len(table) == 442 and len(table.subjects) == 68
    assert table.classes == ("negative", "positive", "surprise")


def test_subjects_stay_distinct_per_dataset_and_a_drop_list_applies(megc_parts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = read_composite(megc_parts[:1], "3class")
        dropped = read_composite(megc_parts[:1], "3class", drop=[whole[0].key])
    assert len(dropped) == len(whole) - 1 and dropped[0].key != whole[0].key
    with pytest.raises(DatasetFormatError, match="drop list: no labelled sample casme2_x_y"):
        read_composite(megc_parts[:1], "3class", drop=["casme2_x_y"])


def test_composite_refusals_are_one_line(megc_parts, tmp_path):
    with pytest.raises(OptionError, match="casme2 listed more than once"):
        read_composite([megc_parts[0], megc_parts[0]], "3class")
    with pytest.raises(OptionError, match="smic has no protocol '5class'"):
        read_composite(megc_parts, "5class")
    with pytest.raises(OptionError, match="unknown dataset 'nope'"):
        read_composite([Part("nope", tmp_path)], "3class")
    with pytest.raises(OptionError, match="samm_sheet name"):
        parts_from_paths({"casme2": tmp_path, "samm_sheet": tmp_path / "x.xlsx"})
    # Every part's problems at once, each named by its dataset.
    with pytest.raises(DatasetFormatError) as err:
        read_composite([Part("casme2", tmp_path / "none", megc_parts[0].sheet),
                        Part("smic", tmp_path / "nothing")], "3class")
    assert "casme2: " in str(err.value) and "smic: " in str(err.value)
    assert "\n" not in str(err.value)
