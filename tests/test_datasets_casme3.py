"""CAS(ME)³: the real Part A and Part C sheets, the errata table, the release's exception lists,
a release tree read through the registered spec, and a LOSO run through the CLI."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest
from typer.testing import CliRunner

from fervid.cli import app
from fervid.datasets import errata
from fervid.datasets.casme3 import (
    CASME3_PROTOCOLS,
    casme3_labels,
    read_casme3,
    read_casme3_sheet,
    unique_clip_ids,
)
from fervid.datasets.registry import ReadRequest, dataset_spec
from fervid.datasets.sheets import AnnotationWarning
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError
from release_trees import casme3 as casme3_tree

PART_A = ("annotations", "casme3", "partA", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx")
PART_C = ("annotations", "casme3", "partC", "CAS(ME)3_part_C_ME.xlsx")
HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]

#: Class counts of the 860 Part A rows under each protocol (``others`` + ``Others`` = 161).
EXPECTED = {
    "7class": {"anger": 64, "disgust": 250, "fear": 86, "happiness": 55, "sadness": 57,
               "surprise": 187, "others": 161},
    "4class": {"negative": 457, "positive": 55, "surprise": 187, "others": 161},
    "3class": {"negative": 457, "positive": 55, "surprise": 187},
}


def _counts(labels, classes) -> dict[str, int]:
    found = Counter(classes[i] for i in labels if i is not None)
    return {c: found[c] for c in classes if found[c]}


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    return result, [str(w.message) for w in caught if w.category is AnnotationWarning]


def test_real_part_a_sheet_counts_ids_and_errata(shared):
    rows, notes = _quiet(read_casme3_sheet, shared(*PART_A))
    assert len(rows) == 860 and rows["subject"].nunique() == 94
    for protocol, classes in CASME3_PROTOCOLS.items():
        counts = _counts(casme3_labels(rows, protocol), classes)
        print(protocol, counts)
        assert counts == EXPECTED[protocol]
    # Repeated task letters made unique in sheet order.
    first = rows[rows["subject"] == "spNO.1"]
    assert list(first["clip"]) == ["a", "b", "e", "e_2", "f", "f_2", "h", "j", "j_2", "k"]
    assert not rows.duplicated(["subject", "clip"]).any()
    assert (rows["clip"].str.contains("_")).sum() == 397
    # The seven corrections, each announced.
    applied = rows.attrs["errata"]
    assert applied == list(errata.ERRATA)
    assert sum(n.startswith("corrected by errata:") for n in notes) == 7
    fixed = rows.set_index("excel_row")
    assert fixed.loc[130, ["onset", "apex", "offset"]].tolist() == [112, 160, 358]
    assert fixed.loc[710, "offset"] == 34 and fixed.loc[751, "onset"] == 2647
    assert fixed.loc[752, ["onset", "apex"]].tolist() == [1, 1]
    assert fixed.loc[798, "offset"] == 1845 and fixed.loc[800, "offset"] == 2403
    assert ((rows.onset <= rows.apex) & (rows.apex <= rows.offset) & (rows.onset >= 1)).all()
    assert fixed.loc[2, "au"] == "5" and fixed.loc[4, "au"] == "R12"


def test_the_errata_table_names_a_source_and_only_fixes_what_is_wrong():
    for e in errata.ERRATA:
        assert e.source and e.wrong != e.corrected and e.excel_row > 1, e
        assert "MEB" in e.source
    import pandas as pd

    good = pd.DataFrame({"Subject": ["spNO.149"], "Filename": ["d"], "Apex": [160],
                         "excel_row": [130]})
    out, applied = errata.apply_errata(errata.CASME3_TITLE, errata.CASME3_PART_A_SHEET, good)
    assert applied == [] and out["Apex"].tolist() == [160]  # already right: left alone
    moved = good.assign(Subject="spNO.150", Apex=83)
    _, applied = errata.apply_errata(errata.CASME3_TITLE, errata.CASME3_PART_A_SHEET, moved)
    assert applied == []  # another row now: not ours to correct
    wrong = good.assign(Apex="83")
    (out, applied), notes = _quiet(errata.apply_errata, errata.CASME3_TITLE,
                                   "CAS(ME)3_PART_A_ME_LABEL_JpgIndex_v2.xlsx", wrong)
    assert out["Apex"].tolist() == [160] and wrong["Apex"].tolist() == ["83"]
    assert len(applied) == 1 and notes == [f"corrected by errata: {applied[0].describe()}"]


def test_real_part_c_sheet(shared):
    rows, notes = _quiet(read_casme3_sheet, shared(*PART_C))
    assert len(rows) == 165 and rows["subject"].nunique() == 30
    assert rows["subject"].iloc[0] == "01" and (rows["part"] == "C").all()
    assert (rows["apex"] == (rows["onset"] + rows["offset"]) // 2).all()
    assert any("codes no apex" in n for n in notes)
    counts = _counts(casme3_labels(rows, "4class"), CASME3_PROTOCOLS["4class"])
    print("part C 4class", counts)
    assert counts == {"negative": 99, "positive": 16, "surprise": 30, "others": 20}
    with pytest.raises(OptionError, match="Part C codes only"):
        casme3_labels(rows, "7class")


def test_unique_clip_ids_rule():
    import pandas as pd

    subjects = pd.Series(["s1", "s1", "s2", "s1", "s1"])
    letters = pd.Series(["a", "b", "a", "A", "a"])
    assert unique_clip_ids(subjects, letters) == ["a", "b", "a", "A_2", "a_3"]


@pytest.fixture(scope="module")
def casme3_release(tmp_path_factory):
    return casme3_tree.build(tmp_path_factory.mktemp("casme3"))


def test_release_tree_through_the_registered_spec(casme3_release):
    spec = dataset_spec("casme3")
    assert spec.sheet == casme3_release["sheet"].name and spec.fps == 30.0
    root, sheet = casme3_release["root"], casme3_release["sheet"]
    table, notes = _quiet(spec.read, ReadRequest(root, "7class", sheet))
    assert len(table) == 860 and len(table.subjects) == 94
    assert _counts([s.label for s in table], table.classes) == EXPECTED["7class"]
    sample = table[0]
    assert (sample.subject, sample.clip, sample.au, sample.fps) == ("spNO.1", "a", "5", 30.0)
    assert sample.frames[0] == root / "spNO.1" / "a" / "color" / "355.jpg"
    assert len(sample.frames) == 6 and sample.frames[sample.apex_position].name == "359.jpg"
    assert sum(len(s.frames) for s in table) == 27285
    # The real damaged frames lie outside every coded clip; the poor-quality ones do not.
    assert not any("damaged" in n for n in notes)
    poor = [n for n in notes if "poor quality" in n]
    print(poor)
    assert len(poor) == 1 and poor[0].startswith("CAS(ME)³: 4 clip(s) hold 25 frame(s)")
    three, _ = _quiet(spec.read, ReadRequest(root, "3class", sheet))
    assert len(three.labelled()) == 699


def _write_sheet(path: Path, rows: list[list], title: str = "label") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def _frames(folder: Path, numbers, image: np.ndarray | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        if image is None:
            (folder / f"{n}.jpg").touch()
        else:
            cv2.imwrite(str(folder / f"{n}.jpg"), image)


def test_bad_rows_are_named_in_one_line(tmp_path):
    sheet = _write_sheet(tmp_path / "bad.xlsx", [
        ["spNO.1", "a", "10", "12", "20", "4", "III", "disgust"],
        ["spNO.1", "a", None, "12", "20", "4", "III", "disgust"],
        ["spNO.2", "b", "10", "12", "x", "4", "III", "disgust"],
    ])
    with pytest.raises(DatasetFormatError) as err:
        read_casme3_sheet(sheet)
    text = str(err.value)
    assert "\n" not in text and "2 problem(s)" in text
    assert "row 3: Onset is blank" in text and "row 4: Offset 'x' is not a frame number" in text
    sheet = _write_sheet(tmp_path / "emotion.xlsx", [
        ["spNO.1", "a", "10", "12", "20", "4", "III", "joyful"],
        ["spNO.1", "b", "10", "12", "20", "4", "III", "Others"],
    ])
    with pytest.raises(DatasetFormatError, match=r"row 2: emotion 'joyful' is not one of anger"):
        read_casme3_sheet(sheet)
    sheet = _write_sheet(tmp_path / "order.xlsx", [["spNO.1", "a", "10", "30", "20", "4", "I",
                                                    "fear"]])
    with pytest.raises(DatasetFormatError, match=r"row 2: spNO.1/a needs 0 <= onset <= apex"):
        read_casme3_sheet(sheet)
    with pytest.raises(OptionError, match="unknown protocol '5class' for casme3"):
        read_casme3(tmp_path, sheet, "5class")


@pytest.mark.filterwarnings("ignore::fervid.datasets.sheets.AnnotationWarning")
def test_damaged_frames_are_replaced_and_absent_frames_listed(tmp_path):
    sheet = _write_sheet(tmp_path / "s.xlsx", [
        ["spNO.3", "J", "10", "12", "14", "4", "III", "disgust"],
        ["spNO.3", "j", "20", "21", "22", "R12", "I", "happy"],
        ["spNO.4", "a", "1", "2", "3", "4", "I", "sad"],
    ])
    root = tmp_path / "partA"
    _frames(root / "spNO.3" / "j" / "color", [10, 13, 14, 20, 21, 22])  # 11, 12 damaged
    _frames(root / "spNO.4" / "a" / "color", [1, 2, 3])
    (root / "exception").mkdir()
    (root / "exception" / "error_info_damaged_image_partA.txt").write_text(
        "spNO.3 J 11.jpg  the image cannot open\nspNO.3 J 12.jpg  the image cannot open\n")
    table, notes = _quiet(read_casme3, root, sheet, "7class")
    first, second = table[0], table[1]
    assert (first.clip, second.clip) == ("J", "j_2")
    assert [f.name for f in first.frames] == ["10.jpg", "10.jpg", "13.jpg", "13.jpg", "14.jpg"]
    assert first.frames[first.apex_position].name == "13.jpg"
    damaged = [n for n in notes if "damaged" in n]
    assert len(damaged) == 1 and "the apex 12 is among them, its image is frame 13" in damaged[0]
    # Frames not in any list must be on disk; every absence is listed at once.
    (root / "spNO.3" / "j" / "color" / "21.jpg").unlink()
    (root / "spNO.4" / "a" / "color" / "2.jpg").unlink()
    with pytest.raises(DatasetFormatError) as err:
        read_casme3(root, sheet, "7class")
    assert "2 problem(s)" in str(err.value) and "spNO.4/a (sheet row 4): 1 of 3 frames missing" \
        in str(err.value)
    # Without the lists nothing is skipped.
    (root / "exception" / "error_info_damaged_image_partA.txt").unlink()
    with pytest.raises(DatasetFormatError, match="spNO.3/J .*2 of 5 frames missing"):
        read_casme3(root, sheet, "7class")


def test_loso_through_the_cli_on_a_small_tree(tmp_path):
    """Two subjects, each with a negative, a positive and a surprise clip (two of them on the
    same task letter), moving-blob frames; LOSO by the registered reader end to end."""
    rng = np.random.default_rng(0)
    data = tmp_path / "CASME3"
    rows = []
    for s in (1, 2):
        for c, (letter, emotion, step) in enumerate([("a", "disgust", -1), ("a", "happy", 1),
                                                      ("b", "surprise", 0)]):
            onset = 10 + 20 * c
            folder = data / f"spNO.{s}" / letter / "color"
            for n in range(6):
                image = rng.normal(100, 5, (24, 24)).clip(0, 255).astype(np.uint8)
                cv2.circle(image, (12 + step * n, 12 - (step == 0) * n), 3, 220, -1)
                _frames(folder, [onset + n], cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
            rows.append([f"spNO.{s}", letter, str(onset), str(onset + 3), str(onset + 5), "4",
                         "III", emotion])
    _write_sheet(data / "sheet.xlsx", rows)
    config = tmp_path / "casme3.yaml"
    config.write_text(
        "name: casme3_apex\n"
        "model: {name: apex_resnet, drop_rate: 0.0, stem: small}\n"
        "data: {format: apex, dataset: casme3, sheet: sheet.xlsx, protocol: 3class,\n"
        "       classes: [negative, positive, surprise], size: 16, dssi: {mode: gray}}\n"
        "train: {optimizer: adam, lr: 0.001, batch_size: 8, epochs: 1}\n"
        "run: {engine: sequential, workers: 1, accelerator: cpu, precision: 32-true}\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["loso", "--config", str(config), "--data-root", str(data),
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 6
    assert any(",a_2," in line for line in predictions), predictions[:3]
