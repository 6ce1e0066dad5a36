"""The AU-string parser on the forms the sheets use, on every AU string of the real sheets,
and AU targets of a table."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from conftest import shared_path
from fervid.datasets.action_units import (
    MEB_AUS,
    AuStringError,
    au_targets,
    count_parsed,
    parse_au,
    read_au,
    read_au_sheets,
    with_sheet_aus,
)
from fervid.samples import DatasetFormatError, Sample, SampleTable


def fields(text):
    return [(u.number, u.side, u.intensity, u.kind, u.alternative, u.ref, u.uncertain)
            for u in parse_au(text).units]


@pytest.mark.parametrize("text, expected", [
    ("4+7+L10", [(4, "", "", "AU", False, False, False), (7, "", "", "AU", False, False, False),
                 (10, "L", "", "AU", False, False, False)]),
    ("R12", [(12, "R", "", "AU", False, False, False)]),
    ("4(B/C)+7B", [(4, "", "B/C", "AU", False, False, False),
                   (7, "", "B", "AU", False, False, False)]),
    ("AU4, AU7", [(4, "", "", "AU", False, False, False), (7, "", "", "AU", False, False, False)]),
    ("R12 or R15", [(12, "R", "", "AU", True, False, False),
                    (15, "R", "", "AU", True, False, False)]),
    ("L14A", [(14, "L", "A", "AU", False, False, False)]),
    ("(R6 or R12) + R15", [(6, "R", "", "AU", True, False, False),
                           (12, "R", "", "AU", True, False, False),
                           (15, "R", "", "AU", False, False, False)]),
    ("ref(7B)+43", [(7, "", "B", "AU", False, True, False),
                    (43, "", "", "AU", False, False, False)]),
    ("A/L12", [(12, "A/L", "", "AU", False, False, False)]),
    ("13?", [(13, "", "", "AU", False, False, True)]),
    ("4，11", [(4, "", "", "AU", False, False, False), (11, "", "", "AU", False, False, False)]),
    ("4+7+AD38+M58", [(4, "", "", "AU", False, False, False),
                      (7, "", "", "AU", False, False, False),
                      (38, "", "", "AD", False, False, False),
                      (58, "", "", "M", False, False, False)]),
])
def test_forms_of_the_sheets(text, expected):
    assert fields(text) == expected


def test_numbers_notes_and_uncoded():
    assert parse_au("R14+17+soft focus").numbers == {14, 17}
    assert parse_au("R14+17+soft focus").notes == ("soft focus",)
    assert parse_au("4+AD38").numbers == {4}  # descriptors are not action units
    assert parse_au(12.0).numbers == {12}  # a number cell
    assert parse_au("L1,10,11,38,").numbers == {1, 10, 11, 38}
    for blank in ("", "?", None, float("nan")):
        assert not parse_au(blank).coded and parse_au(blank).numbers == frozenset()


@pytest.mark.parametrize("text", ["4+(7", "12)", "abc+", "4+X9", "12F"])
def test_unreadable_strings_are_refused(text):
    with pytest.raises(AuStringError):
        parse_au(text)
    with pytest.raises(DatasetFormatError) as err:
        read_au(text, Path("sheet.xlsx"), 17)
    message = str(err.value)
    assert "sheet.xlsx" in message and "row 17" in message and repr(text) in message
    assert "\n" not in message


def _real_au_strings() -> dict[str, list]:
    from fervid.datasets.casme2 import read_casme2_sheet
    from fervid.datasets.casme3 import read_casme3_sheet
    from fervid.datasets.dfme import read_dfme_sheets
    from fervid.datasets.mmme import read_mmme_sheet
    from fervid.datasets.samm import read_samm_sheet

    ann = shared_path("annotations")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "casme2": list(read_casme2_sheet(ann / "casme2" / "CASME2-coding-20140508.xlsx").au),
            "samm": list(read_samm_sheet(ann / "samm" / "SAMM_Micro_FACS_Codes_v2.xlsx").au),
            "casme3_a": list(read_casme3_sheet(
                ann / "casme3" / "partA" / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx").au),
            "casme3_c": list(read_casme3_sheet(
                ann / "casme3" / "partC" / "CAS(ME)3_part_C_ME.xlsx").au),
            "dfme": list(read_dfme_sheets(ann / "dfme" / "training_full_with_AU.xlsx").au),
            "mmme": list(read_mmme_sheet(ann / "mmme" / "coding_file.xlsx").au),
        }


def test_every_au_string_of_the_real_sheets():
    """Read / not coded / refused per sheet: CASME II's five ``?`` cells are not coded, and
    no string of the six sheets is refused."""
    expected = {"casme2": (250, 5), "samm": (159, 0), "casme3_a": (860, 0),
                "casme3_c": (165, 0), "dfme": (2629, 0), "mmme": (944, 0)}
    for name, texts in _real_au_strings().items():
        counts, refused = count_parsed(texts)
        assert refused == [], name
        assert (counts["read"], counts["not coded"]) == expected[name], name


def test_meb_aus_on_the_flow_set():
    """The 278 CASME II and SAMM samples of the MEGC2019 flow set get AUs from the sheets;
    each of MEB's 12 AUs occurs 12..82 times among them; SMIC's samples stay uncoded."""
    from fervid.datasets.precomputed import read_precomputed

    pre = read_precomputed(shared_path("megc2019_flow"),
                           classes=("negative", "positive", "surprise"))
    table, matched = with_sheet_aus(pre.table, shared_path("annotations"))
    assert matched == 278
    targets = au_targets(table)
    assert int(targets.coded.sum()) == 278
    assert {s.dataset for s, c in zip(table, targets.coded, strict=True) if not c} == {"smic"}
    assert targets.names == tuple(f"AU{n}" for n in MEB_AUS)
    assert targets.counts["AU4"] == 82 and targets.counts["AU5"] == 12
    assert min(targets.counts.values()) == 12 and max(targets.counts.values()) == 82
    keys = read_au_sheets(shared_path("annotations"))
    assert keys[("casme2", "sub01", "EP02_01f")][0] == "12"


def _table(aus):
    return SampleTable([Sample("d", f"s{i % 3}", f"c{i}", 0, 1, 2, "x", 0, au=a)
                        for i, a in enumerate(aus)], ("x",))


def test_targets_min_count_and_uncoded():
    table = _table(["4+7", "R12", "4", "?", "", "L4B+12"])
    t = au_targets(table, (4, 7, 12, 15), min_count=2)
    assert t.names == ("AU4", "AU12")  # AU7 once, AU15 never
    assert t.counts == {"AU4": 3, "AU7": 1, "AU12": 2, "AU15": 0}
    assert t.coded.tolist() == [True, True, True, False, False, True]
    assert t.y.tolist() == [[1, 0], [0, 1], [1, 0], [0, 0], [0, 0], [1, 1]]
    with pytest.raises(DatasetFormatError, match="no AU"):
        au_targets(table, (15,))
    with pytest.raises(DatasetFormatError, match=r"d/s0/c0 .*'4\+\(7'"):
        au_targets(_table(["4+(7"]), (4,))


def test_au_sheets_folder_without_sheets(tmp_path):
    with pytest.raises(DatasetFormatError, match="holds none of"):
        read_au_sheets(tmp_path)
