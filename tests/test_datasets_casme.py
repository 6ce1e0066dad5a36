"""CASME (I) reader on generated sheets and frame trees (no real CASME sheet is available)."""

from __future__ import annotations

from collections import Counter

import pytest

from fervid.datasets import AnnotationWarning
from fervid.datasets.casme import CASME_EMOTIONS, read_casme
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError
from release_trees import casme as tree


def read(root, sheet, protocol="all"):
    return dataset_spec("casme").read(ReadRequest(root, protocol, sheet))


def test_the_registered_reader_reads_the_generated_release(tmp_path):
    release = tree.build(tmp_path)
    with pytest.warns(AnnotationWarning, match=r"sub02/EP05_2 .*middle frame 65"):
        table = read(release["root"], release["sheet"], release["protocol"])
    assert table.classes == CASME_EMOTIONS and len(table) == len(tree.ROWS)
    assert table.subjects == ["casme/sub01", "casme/sub02", "casme/sub03", "casme/sub04"]
    first = table[0]
    assert (first.dataset, first.subject, first.clip) == ("casme", "sub01", "EP01_12")
    assert (first.onset, first.apex, first.offset, first.emotion) == (73, 81, 91, "tense")
    assert first.fps == 60.0 and first.au == "4"
    assert [p.name for p in first.frames] == [f"EP01_12-{n}.jpg" for n in range(73, 92)]
    assert first.frames[first.apex_position].name == "EP01_12-81.jpg"
    assert [s.au for s in table][:3] == ["4", "12", "4+17"]
    assert all(s.label is not None for s in table)


def test_3class_groups_negatives_and_leaves_tense_out(tmp_path):
    release = tree.build(tmp_path)
    with pytest.warns(AnnotationWarning):
        table = read(release["root"], release["sheet"], "3class")
    counts = Counter(table.classes[s.label] for s in table.labelled())
    # disgust x2, repression, sadness, contempt, fear; happiness; surprise x2; tense left out.
    assert counts == {"negative": 6, "positive": 1, "surprise": 2}
    assert table[0].label is None and table[0].emotion == "tense"


def test_section_folders_and_cropped_names_read_alike(tmp_path):
    sheet = tree.write_sheet(tmp_path / "sheet.xlsx")
    sections = tmp_path / "CASME"
    tree.write_frames(sections / "CASME_A" / "Section A", tree.ROWS[:3])
    tree.write_frames(sections / "CASME_B" / "Section B", tree.ROWS[3:])
    cropped = tree.write_frames(tmp_path / "Cropped", name="reg_{clip}-{n:03d}.jpg")
    with pytest.warns(AnnotationWarning):
        a = read(sections, sheet)
    with pytest.warns(AnnotationWarning):
        b = read(cropped, sheet)
    assert [s.key for s in a] == [s.key for s in b] and len(a) == len(tree.ROWS)
    assert b[0].frames[0].name == "reg_EP01_12-073.jpg"
    assert a[3].frames[0].parent == sections / "CASME_B" / "Section B" / "sub02" / "EP02_3"


def test_bad_rows_are_one_error_naming_row_and_field(tmp_path):
    rows = list(tree.ROWS)
    rows[1] = (1, None, 113, 121, 125, 133, 12, "happiness")
    rows[2] = (1, "EP03_1", "seventy", 91, 95, 105, "4+17", "repression")
    sheet = tree.write_sheet(tmp_path / "bad.xlsx", rows)
    with pytest.raises(DatasetFormatError) as err:
        read_casme(tmp_path, sheet)
    message = str(err.value)
    assert "\n" not in message and "2 problem(s)" in message
    assert "row 3: Filename is blank" in message and "row 4: OnsetF 'seventy'" in message

    rows = list(tree.ROWS)
    rows[4] = (2, "EP05_2", 60, 65, None, 70, "1+2", "joy")
    with pytest.raises(DatasetFormatError, match=r"row 6: Emotion 'joy' is not one of"):
        read_casme(tmp_path, tree.write_sheet(tmp_path / "emotion.xlsx", rows))


def test_missing_folders_and_frames_are_listed_together(tmp_path):
    release = tree.build(tmp_path)
    root = release["root"]
    (root / "sub01" / "EP01_5" / "EP01_5-120.jpg").unlink()
    for frame in (root / "sub03" / "EP07_1").iterdir():
        frame.unlink()
    (root / "sub03" / "EP07_1").rmdir()
    with pytest.raises(DatasetFormatError) as err, pytest.warns(AnnotationWarning):
        read(root, release["sheet"])
    assert err.value.problems == [
        "sub01/EP01_5: 1 of 21 frames missing (<clip>-{N}.jpg for N in 120)",
        "sub03/EP07_1: clip folder missing (EP07_1)"]


@pytest.mark.filterwarnings("ignore::fervid.datasets.AnnotationWarning")
def test_an_xls_sheet_and_unknown_protocol_are_refused(tmp_path):
    release = tree.build(tmp_path)
    xls = tmp_path / "CASME-coded-20190721.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(DatasetFormatError, match=r"save it as \.xlsx"):
        read(release["root"], xls)
    with pytest.raises(OptionError, match="unknown protocol '5class' for casme"):
        read(release["root"], release["sheet"], "5class")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetFormatError, match="no subNN/ subject folders"):
        read(tmp_path / "empty", release["sheet"])
