"""SMIC-HS with the third-party apex sheet: the real sheet, and trees generated from it."""

from __future__ import annotations

import csv
import shutil
import warnings

import openpyxl
import pytest

from conftest import shared_path
from fervid.datasets import AnnotationWarning
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.datasets.smic import read_smic_apex_sheet
from fervid.samples import DatasetFormatError
from release_trees import smic_apex as tree


def read(root, sheet=None):
    return dataset_spec("smic").read(ReadRequest(root, "3class", sheet))


def test_the_real_sheet_lists_every_smic_clip_with_an_apex_inside_it():
    rows = read_smic_apex_sheet(tree.real_sheet())
    assert len(rows) == 164 and rows["offset"].isna().sum() == 7
    with open(shared_path("annotations", "megc2019", "combined_3class_gt.csv"), newline="") as f:
        gt = {r[2]: int(r[3]) for r in csv.reader(f) if r[0] == "smic"}
    assert set(rows["clip"]) == set(gt) and rows["clip"].iloc[0] == "s20_ne_01"
    assert all(gt[c] == label for c, label in zip(rows["clip"], rows["label"], strict=True))
    given = rows.dropna(subset=["offset"])
    assert ((given.onset <= given.apex) & (given.apex <= given.offset)).all()


def test_the_spec_takes_the_sheet_as_an_option():
    spec = dataset_spec("smic")
    assert spec.sheet == "smic_apex_third_party.xlsx" and spec.sheet_optional
    assert spec.sheet_problem(True) is None and spec.sheet_problem(False) is None


def test_a_generated_tree_read_with_the_sheet_gives_its_apexes(tmp_path):
    release = tree.build(tmp_path)
    rows = read_smic_apex_sheet(release["sheet"]).set_index("clip")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AnnotationWarning)  # every folder agrees with the sheet
        table = read(release["root"], release["sheet"])
    assert len(table) == 164 and len(table.subjects) == 16
    assert all(s.apex == rows.at[s.clip, "apex"] and s.onset == rows.at[s.clip, "onset"]
               for s in table)
    assert all(s.frames[s.apex_position].name == f"image{s.apex:06d}.bmp" for s in table)
    plain = read(release["root"])  # without the sheet: the middle frame, as before
    assert [s.key for s in plain] == [s.key for s in table]
    assert all(s.apex == (s.onset + s.offset) // 2 for s in plain)
    assert sum(a.apex != b.apex for a, b in zip(plain, table, strict=True)) > 100


def test_disagreements_are_reported_and_the_folders_kept(tmp_path):
    release = tree.build(tmp_path)
    hs = release["root"] / "HS"
    (hs / "s20" / "micro" / "negative" / "s20_ne_01" / "image17581039.bmp").unlink()
    shutil.rmtree(hs / "s20" / "micro" / "negative" / "s20_ne_02")
    with pytest.warns(AnnotationWarning) as caught:
        table = read(release["root"], release["sheet"])
    (note,) = [str(w.message) for w in caught]
    assert "2 disagreement(s)" in note
    assert "s20_ne_01 onset..offset 17581039..17581055 (folder 17581040..17581055)" in note
    assert "s20_ne_02 (not in the release)" in note
    first = next(s for s in table if s.clip == "s20_ne_01")
    assert len(table) == 163 and (first.onset, first.apex) == (17581040, 17581046)


def test_folders_the_sheet_does_not_fit_are_refused(smic_release, tmp_path):
    # The shared SMIC fixture numbers its frames from 59000: no sheet apex falls inside.
    with pytest.raises(DatasetFormatError) as err:
        read(smic_release[0], tree.real_sheet())
    assert len(err.value.problems) == 164
    assert "apex_frame 563884 is outside its folder's frames" in str(err.value)

    release = tree.build(tmp_path)
    workbook = openpyxl.load_workbook(release["sheet"])
    workbook.active.delete_rows(2)  # s20_ne_01
    workbook.save(tmp_path / "short.xlsx")
    with pytest.raises(DatasetFormatError, match="clip s20_ne_01 of the release is not in the "
                                                 "sheet"):
        read(release["root"], tmp_path / "short.xlsx")
