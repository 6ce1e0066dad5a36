"""The package-level dispatcher ``load_dataset`` and its error messages."""

from __future__ import annotations

import pytest

import fervid.datasets as datasets
from fervid.datasets import DATASET_NAMES, PROTOCOLS, load_dataset, read_casme2, read_samm
from fervid.samples import DatasetFormatError

pytestmark = pytest.mark.filterwarnings("ignore:.*apex not annotated")


def test_names_and_protocols():
    assert DATASET_NAMES == ("casme2", "samm", "smic", "ckplus", "casme", "casme_sq", "casme3",
                             "dfme", "mmme", "4dme", "mmew")
    assert set(PROTOCOLS) == set(DATASET_NAMES)
    assert list(PROTOCOLS["casme2"]) == ["5class", "3class", "all"]
    assert list(PROTOCOLS["smic"]) == ["3class"]
    assert set(datasets.__all__) <= set(dir(datasets))


@pytest.mark.parametrize("name, reader, fixture", [("casme2", read_casme2, "casme2_release"),
                                                   ("samm", read_samm, "samm_release")])
def test_sheet_datasets(name, reader, fixture, request):
    root, sheet = request.getfixturevalue(fixture)
    table = load_dataset(name, root, "3class", sheet=sheet)
    assert [s.key for s in table] == [s.key for s in reader(root, sheet, "3class")]
    assert table.protocol == "3class" and table.samples[0].dataset == name
    with pytest.raises(ValueError, match=f"{name} needs its coding sheet"):
        load_dataset(name, root, "3class")


def test_smic(smic_release):
    table = load_dataset("smic", smic_release[0], "3class")
    assert len(table) == 164 and table.samples[0].dataset == "smic"
    # Its sheet is optional (third-party apexes): a named sheet that is absent is an error.
    with pytest.raises(DatasetFormatError, match=r"x\.xlsx: 1 problem\(s\): sheet file does not "
                                                 r"exist"):
        load_dataset("smic", smic_release[0], "3class", sheet=smic_release[0] / "x.xlsx")


def test_unknown_name_and_protocol(tmp_path, smic_release):
    with pytest.raises(ValueError, match="unknown dataset 'casme9'; valid names: casme2, samm, "
                                         "smic"):
        load_dataset("casme9", tmp_path, "3class")
    with pytest.raises(ValueError, match="unknown protocol '5class' for smic"):
        load_dataset("smic", smic_release[0], "5class")
