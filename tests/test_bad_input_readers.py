"""Bad input to every reader (src/fervid/datasets): one FervidError, one line naming the file (and
row or field) and the problem; unusual but valid input (extra columns, spaces and accents in
paths) reads. The commands' side: test_bad_input_commands.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from bad_input import GARBAGE, PNG_BYTES, assert_one_line_error, assert_refused, fervid

# --- Sheet releases: CASME II and SAMM ------------------------------------------------------

#: Per release: sheet columns (subject, clip, onset, apex, offset, emotion), subject text,
#: frame file name, reader.
SHEETS = {
    "casme2": (["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                "Estimated Emotion"], ["01", "02"], "img{n}.jpg", "sub{s}"),
    "samm": (["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame",
              "Estimated Emotion"], ["006", "007"], "{s}_{n:05d}.jpg", "{s}"),
}


def sheet_release(base: Path, dataset: str) -> tuple[Path, Path, pd.DataFrame]:
    """(root, sheet, rows): two subjects of two clips, frames 1..5, as the release names them."""
    columns, subjects, frame, folder = SHEETS[dataset]
    rows = []
    for s in subjects:
        for k, emotion in enumerate(("happiness", "surprise")):
            clip = f"{s}_{k + 1}" if dataset == "samm" else f"EP0{k + 1}_0{s[-1]}"
            rows.append([s, clip, 1, 3, 5, emotion])
            clip_dir = base / "frames" / folder.format(s=s) / clip
            clip_dir.mkdir(parents=True)
            for n in range(1, 6):
                (clip_dir / frame.format(s=s, n=n)).touch()
    table = pd.DataFrame(rows, columns=columns)
    sheet = base / "coding sheet.xlsx"
    table.to_excel(sheet, index=False)
    return base / "frames", sheet, table


def _rewrite(sheet: Path, table: pd.DataFrame) -> None:
    table.to_excel(sheet, index=False)


#: Damage to the sheet (or release): (change, what is named: "sheet" / "root", says).
SHEET_CASES = {
    "zero_byte": (lambda root, sheet, t: sheet.write_bytes(b""), "sheet", "Excel"),
    "csv_named_xlsx": (lambda root, sheet, t: sheet.write_text(t.to_csv(index=False)),
                       "sheet", "Excel"),
    "png_named_xlsx": (lambda root, sheet, t: sheet.write_bytes(PNG_BYTES), "sheet", "Excel"),
    "truncated": (lambda root, sheet, t: sheet.write_bytes(sheet.read_bytes()[:900]), "sheet",
                  "Excel"),
    "missing_column": (lambda root, sheet, t: _rewrite(sheet, t.drop(columns=t.columns[3])),
                       "sheet", "missing column"),
    "renamed_column": (lambda root, sheet, t: _rewrite(sheet, t.rename(
        columns={t.columns[2]: "Onset"})), "sheet", "missing column"),
    "header_only": (lambda root, sheet, t: _rewrite(sheet, t.iloc[:0]), "sheet", "no clip"),
    "onset_is_text": (lambda root, sheet, t: _rewrite(sheet, t.assign(
        **{t.columns[2]: ["abc", 1, 1, 1]})), "sheet", "row 2"),
    "unknown_emotion": (lambda root, sheet, t: _rewrite(sheet, t.assign(
        **{t.columns[5]: ["banana", "happiness", "surprise", "happiness"]})), "sheet",
        "banana"),
    "apex_after_offset": (lambda root, sheet, t: _rewrite(sheet, t.assign(
        **{t.columns[3]: [3, 3, 9, 3]})), "sheet", "row 4"),
    "clip_twice": (lambda root, sheet, t: _rewrite(sheet, pd.concat([t, t.iloc[:1]])), "sheet",
                   "twice"),
    "sheet_missing": (lambda root, sheet, t: sheet.unlink(), "sheet", "does not exist"),
    "sheet_is_a_folder": (lambda root, sheet, t: (sheet.unlink(), sheet.mkdir()), "sheet",
                          ""),
    "frames_missing": (lambda root, sheet, t: next(root.rglob("*3.jpg")).unlink(), "root",
                       "missing"),
    "root_is_a_file": (lambda root, sheet, t: (shutil.rmtree(root), root.write_text("x")),
                       "root", "folder"),
}


@pytest.mark.parametrize("dataset", sorted(SHEETS))
@pytest.mark.parametrize("case", sorted(SHEET_CASES))
def test_bad_coding_sheet(dataset, case, tmp_path):
    from fervid.datasets import load_dataset

    root, sheet, table = sheet_release(tmp_path, dataset)
    change, named, says = SHEET_CASES[case]
    change(root, sheet, table)
    assert_refused(lambda: load_dataset(dataset, root, "5class", sheet=sheet),
                   must_name=sheet if named == "sheet" else root, says=says)


@pytest.mark.parametrize("dataset", sorted(SHEETS))
def test_sheet_with_extra_columns_in_an_accented_path_reads(dataset, tmp_path):
    from fervid.datasets import load_dataset

    root, sheet, table = sheet_release(tmp_path / "données été", dataset)
    _rewrite(sheet, table.assign(Notes=["a", "b", "c", "d"], **{"Action Units": "4"}))
    read = load_dataset(dataset, root, "5class", sheet=sheet)
    assert len(read.labelled()) == 4


def test_prepare_flow_names_a_csv_behind_xlsx(tmp_path):
    root, sheet, table = sheet_release(tmp_path, "casme2")
    sheet.write_text(table.to_csv(index=False))
    result = fervid("prepare", "flow", "--dataset", "casme2", "--data-root", root, "--sheet",
                    sheet, "--out", tmp_path / "flow", "--no-progress")
    assert_one_line_error(result, must_name=sheet, says="Excel")
    assert not (tmp_path / "flow").exists()


def test_loso_names_a_bad_sheet_row_from_the_config(tmp_path):
    from bad_input import write_json

    root, sheet, table = sheet_release(tmp_path, "casme2")
    _rewrite(sheet, table.assign(OnsetFrame=["abc", 1, 1, 1]))
    cfg = write_json(tmp_path / "apex.yaml", {
        "model": {"name": "apex_resnet"}, "run": {"engine": "sequential"},
        "data": {"format": "apex", "dataset": "casme2", "sheet": str(sheet), "size": 16,
                 "protocol": "5class",
                 "classes": ["happiness", "disgust", "repression", "surprise", "others"]}})
    result = fervid("loso", "--config", cfg, "--data-root", root, "--out", tmp_path / "run",
                    "--cache-dir", tmp_path / "cache", "--no-progress")
    assert_one_line_error(result, must_name=sheet, says="row 2")


# --- SMIC: folders only, and the HS-E sheet ---------------------------------------------

def smic_release(base: Path) -> Path:
    for subject in ("s1", "s2"):
        for emotion, code in (("negative", "ne"), ("positive", "po")):
            clip = base / "HS" / subject / "micro" / emotion / f"{subject}_{code}_01"
            clip.mkdir(parents=True)
            for n in range(100, 105):
                (clip / f"image{n:06d}.bmp").touch()
    return base


SMIC_CASES = {
    "no_hs_folder": (lambda b: shutil.rmtree(b / "HS"), "", "no HS/"),
    "unknown_emotion_folder": (lambda b: (b / "HS/s1/micro/happy").mkdir(), "happy",
                               "not an emotion folder"),
    "frame_gap": (lambda b: (b / "HS/s1/micro/negative/s1_ne_01/image000102.bmp").unlink(),
                  "s1_ne_01", "gaps"),
    "no_frames": (lambda b: [p.unlink() for p in (b / "HS/s2/micro/positive/s2_po_01")
                             .iterdir()], "s2_po_01", "no image"),
    "badly_named_clip": (lambda b: (b / "HS/s1/micro/negative/s1_ne_01").rename(
        b / "HS/s1/micro/negative/clip one"), "clip one", "name"),
    "no_micro_folder": (lambda b: (b / "HS/s2/micro").rename(b / "HS/s2/macro"), "s2",
                        "micro"),
}


@pytest.mark.parametrize("case", sorted(SMIC_CASES))
def test_bad_smic_release(case, tmp_path):
    from fervid.datasets import read_smic

    base = smic_release(tmp_path / "SMIC")
    change, names, says = SMIC_CASES[case]
    change(base)
    message = assert_refused(lambda: read_smic(base), must_name=base, says=says)
    assert names in message


def test_smic_in_an_accented_path_reads(tmp_path):
    from fervid.datasets import read_smic

    assert len(read_smic(smic_release(tmp_path / "SMIC ö ü"))) == 4


@pytest.mark.parametrize("case", ["csv_named_xlsx", "no_hs_worksheet", "missing_column"])
def test_bad_smic_hs_e_sheet(case, tmp_path):
    from fervid.datasets import read_smic_hs_e_sheet

    sheet = tmp_path / "SMIC-HS-E_annotation.xlsx"
    table = pd.DataFrame({"Filename": ["s1_ne_01"], "Emotion": ["negative"], "OnsetF": [10],
                          "OffsetF": [20], "FirstF": [1], "LastF": [30]})
    if case == "csv_named_xlsx":
        sheet.write_text(table.to_csv(index=False))
    elif case == "no_hs_worksheet":
        table.to_excel(sheet, index=False, sheet_name="Sheet1")
    else:
        table.drop(columns="OnsetF").to_excel(sheet, index=False, sheet_name="HS")
    assert_refused(lambda: read_smic_hs_e_sheet(sheet), must_name=sheet)


# --- MEGC2019 ground truth and DFEW split files -------------------------------------------

GT_OK = "smic,s01,s01_ne_01,0\ncasme2,01,EP02_01f,1\nsamm,6,006_1_2,2\n"
GT_CASES = {
    "zero_byte": (b"", "CSV"),
    "garbage": (GARBAGE, ""),
    "png": (PNG_BYTES, ""),
    "wrong_column_count": (b"smic,s01,s01_ne_01\n", "columns"),
    "label_out_of_range": (GT_OK.replace(",2\n", ",5\n").encode(), "line 3"),
    "label_is_a_word": (GT_OK.replace(",1\n", ",positive\n").encode(), "line 2"),
    "unknown_dataset": (GT_OK.replace("samm,", "mmas,").encode(), "mmas"),
    "cut_short": (GT_OK.encode()[:-4], "line 3"),
    "clip_twice": ((GT_OK + "smic,s01,s01_ne_01,0\n").encode(), "twice"),
}


@pytest.mark.parametrize("case", sorted(GT_CASES))
def test_bad_megc2019_ground_truth(case, tmp_path):
    from fervid.datasets import read_megc2019_gt

    content, says = GT_CASES[case]
    gt = tmp_path / "combined_3class_gt.csv"
    gt.write_bytes(content)
    assert_refused(lambda: read_megc2019_gt(gt), must_name=gt, says=says)


SPLIT_OK = "video_name,label\n1,1\n2,7\n"
SPLIT_CASES = {
    "zero_byte": (b"", "CSV"),
    "garbage": (GARBAGE, ""),
    "png": (PNG_BYTES, ""),
    "renamed_column": (SPLIT_OK.replace("label", "emotion").encode(), "header"),
    "extra_column": (b"video_name,label,note\n1,1,x\n", "header"),
    "label_out_of_range": (SPLIT_OK.replace("2,7", "2,9").encode(), "line 3"),
    "label_is_a_word": (SPLIT_OK.replace("1,1", "1,happy").encode(), "line 2"),
    "id_is_a_word": (SPLIT_OK.replace("2,7", "two,7").encode(), "line 3"),
    "cut_short": (SPLIT_OK.encode()[:-2], "line 3"),
    "clip_twice": ((SPLIT_OK + "1,1\n").encode(), "repeats"),
}


@pytest.mark.parametrize("case", sorted(SPLIT_CASES))
def test_bad_dfew_split_file(case, tmp_path):
    from fervid.datasets.dfew import read_split_csv

    content, says = SPLIT_CASES[case]
    path = tmp_path / "train(single-labeled)" / "set_1.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    assert_refused(lambda: read_split_csv(path), must_name=path, says=says)


def test_dfew_split_file_with_no_rows_is_an_empty_split(tmp_path):
    from fervid.datasets.dfew import read_split_csv

    path = tmp_path / "set 1 é.csv"  # a shortened release may leave a fold's test split empty
    path.write_text("video_name,label\n")
    assert read_split_csv(path) == []


# --- CK+ ----------------------------------------------------------------------------------

def ckplus_release(base: Path) -> Path:
    for subject, code in (("S005", "3.0000000e+00"), ("S010", "5.0000000e+00")):
        frames = base / "cohn-kanade-images" / subject / "001"
        frames.mkdir(parents=True)
        for n in range(1, 5):
            (frames / f"{subject}_001_{n:08d}.png").touch()
        emotion = base / "Emotion" / subject / "001"
        emotion.mkdir(parents=True)
        (emotion / f"{subject}_001_00000004_emotion.txt").write_text(f"   {code}\n")
    return base


def _emotion_file(base: Path) -> Path:
    return base / "Emotion/S005/001/S005_001_00000004_emotion.txt"


CKPLUS_CASES = {
    "emotion_zero_byte": (lambda b: _emotion_file(b).write_bytes(b""), "emotion.txt", "code"),
    "emotion_garbage": (lambda b: _emotion_file(b).write_bytes(GARBAGE), "emotion.txt", ""),
    "emotion_a_word": (lambda b: _emotion_file(b).write_text("happy"), "emotion.txt",
                       "not a number"),
    "emotion_code_9": (lambda b: _emotion_file(b).write_text("9.0"), "emotion.txt", "0..7"),
    "emotion_names_another_frame": (lambda b: _emotion_file(b).rename(
        _emotion_file(b).with_name("S005_001_00000002_emotion.txt")), "emotion.txt",
        "last frame"),
    "no_emotion_folder": (lambda b: shutil.rmtree(b / "Emotion"), "Emotion", "no Emotion/"),
    "frame_gap": (lambda b: (b / "cohn-kanade-images/S010/001/S010_001_00000002.png")
                  .unlink(), "S010", "gaps"),
}


@pytest.mark.parametrize("case", sorted(CKPLUS_CASES))
def test_bad_ckplus_release(case, tmp_path):
    from fervid.datasets import read_ckplus

    base = ckplus_release(tmp_path / "CK+")
    change, names, says = CKPLUS_CASES[case]
    change(base)
    message = assert_refused(lambda: read_ckplus(base), must_name=base, says=says)
    assert names in message


def test_prepare_faces_names_a_folder_that_is_not_ckplus(tmp_path):
    base = ckplus_release(tmp_path / "CK+")
    shutil.rmtree(base / "cohn-kanade-images")
    result = fervid("prepare", "faces", "--dataset", "ckplus", "--data-root", base, "--out",
                    tmp_path / "aligned", "--workers", "1", "--no-progress")
    assert_one_line_error(result, must_name=base, says="cohn-kanade-images")
    assert not (tmp_path / "aligned").exists()
