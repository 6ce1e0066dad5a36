from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

#: Real data made by others, beside the project (see ../shared/data/README.md). Never copied here.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or a skip with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} is absent (it lives in ../shared/data)")
    return path


@pytest.fixture
def shared():
    return shared_path


# --- Every command any test runs through typer's CliRunner: no warning may print in Python's
# own format, with its source path (``/.../frames.py:170: AnnotationWarning: ...``).
_PYTHON_WARNING = re.compile(r"\.py:\d+: \w*Warning\b")


def _invoke_without_source_paths(self, *args, **kwargs):
    result = _cli_invoke(self, *args, **kwargs)
    found = _PYTHON_WARNING.search(result.output or "")
    assert found is None, f"a warning printed with its source path ({found.group(0)}):\n" \
        f"{result.output}"
    return result


_cli_invoke = CliRunner.invoke
CliRunner.invoke = _invoke_without_source_paths


# --- Fixture releases for the dataset readers: the official folder layouts, zero-byte frames,
# built once per session from the real sheets read directly with openpyxl (not the readers).

def _touch_frames(folder: Path, names, blank: Path) -> None:
    # Hard links to one empty file (kept outside the tree): the readers only list names, and
    # allocating ~30k inodes is many times slower than linking on some file systems.
    import os

    folder.mkdir(parents=True, exist_ok=True)
    blank.touch()
    for name in names:
        try:
            os.link(blank, folder / name)
        except OSError:
            (folder / name).touch()


def _sheet_rows(path: Path, first_row: int):
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True)
    rows = [r for r in workbook.active.iter_rows(min_row=first_row, values_only=True) if r[0]]
    workbook.close()
    return rows


@pytest.fixture(scope="session")
def casme2_release(tmp_path_factory):
    """(root, sheet): ``CASME2_RAW_selected/subXX/<clip>/img{N}.jpg`` for every sheet clip."""
    sheet = shared_path("annotations", "casme2", "CASME2-coding-20140508.xlsx")
    base = tmp_path_factory.mktemp("casme2")
    root = base / "CASME2_RAW_selected"
    for subject, clip, _, onset, _, offset, *_ in _sheet_rows(sheet, 2):
        _touch_frames(root / f"sub{subject}" / clip,
                      (f"img{n}.jpg" for n in range(onset, offset + 1)), base / "blank")
    return root, sheet


@pytest.fixture(scope="session")
def samm_release(tmp_path_factory):
    """(root, sheet): ``SAMM/006/006_1_2/006_05562.jpg`` for every sheet clip."""
    sheet = shared_path("annotations", "samm", "SAMM_Micro_FACS_Codes_v2.xlsx")
    base = tmp_path_factory.mktemp("samm")
    root = base / "SAMM"
    for subject, clip, _, onset, _, offset, *_ in _sheet_rows(sheet, 15):
        _touch_frames(root / subject / clip,
                      (f"{subject}_{n:05d}.jpg" for n in range(onset, offset + 1)),
                      base / "blank")
    return root, sheet


@pytest.fixture(scope="session")
def smic_release(tmp_path_factory):
    """(root, expected): ``SMIC_all_raw/HS/s1/micro/<emotion>/s1_ne_01/image<6 digits>.bmp``
    for the SMIC rows of combined_3class_gt.csv; ``expected`` maps each ground-truth clip id
    to (onset, offset, emotion). Folder names unpadded, as released."""
    import csv

    gt = shared_path("annotations", "megc2019", "combined_3class_gt.csv")
    emotions = ("negative", "positive", "surprise")
    base = tmp_path_factory.mktemp("smic")
    root = base / "SMIC_all_raw"
    expected = {}
    with open(gt, newline="") as f:
        rows = [r for r in csv.reader(f) if r and r[0] == "smic"]
    for i, (_, subject, clip, label) in enumerate(rows):
        folder_subject = f"s{int(subject[1:])}"           # s01 -> s1
        folder_clip = clip.replace(subject, folder_subject, 1)  # s01_ne_01 -> s1_ne_01
        onset, offset = 59000 + 1000 * i, 59000 + 1000 * i + 4 + i % 9
        _touch_frames(root / "HS" / folder_subject / "micro" / emotions[int(label)] / folder_clip,
                      (f"image{n:06d}.bmp" for n in range(onset, offset + 1)), base / "blank")
        expected[clip] = (onset, offset, emotions[int(label)])
    return root, expected


@pytest.fixture(scope="session")
def bad_input_world(tmp_path_factory):
    """Valid inputs and finished tiny runs (LOSO, fit) under paths with spaces and accents,
    shared by the bad-input tests (tests/bad_input.py)."""
    from bad_input import World

    return World(tmp_path_factory.mktemp("bad inputs é"))
