"""SAMM Long Videos with their coded movements, for spotting.

Layout: ``<video>/<video>_<NNNN>.jpg`` (``006_1/006_1_0001.jpg``), one folder per video,
under the release folder (often ``SAMM_longvideos/``). The sheet, as shipped:
``SAMM_LongVideos_V2_Release.xlsx`` (or ``SAMMLV_gt.xlsx``, its copy in the MEGC ground truth,
or the CSV form), worksheet ``FACS_Movement_Only``: preamble rows, then the header
``Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration, Type, Action Units,
Notes``. ``Filename`` ``006_1_2`` is the second movement of video ``006_1``. ``Type`` is
``Macro``, ``Micro - 1/2`` or ``Micro - 1/3`` (a micro-movement under half a second or under
a third of one: both micro); ``Apex`` -1 means not annotated (None here).

Ids: subject the three-digit number (``006``), video ``006_1``. 200 fps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from fervid.datasets.long_videos import (
    GroundTruthInterval,
    LongVideo,
    attach_frames,
    read_table_file,
)
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    HEADER_SEARCH_ROWS,
    AnnotationWarning,
    as_ints,
    bad_values,
    clean_text,
)
from fervid.samples import DatasetFormatError

DATASET = "samm_lv"
SHEET = "SAMM_LongVideos_V2_Release.xlsx"
FPS = 200.0
REQUIRED = ("Subject", "Filename", "Onset", "Apex", "Offset", "Type", "Action Units")
#: The sheet's types -> interval kind.
TYPES = {"macro": "macro", "micro - 1/2": "micro", "micro - 1/3": "micro"}


def _body(sheet: Path) -> pd.DataFrame:
    """The rows under the header (found by content, below the preamble), ``excel_row`` added."""
    raw = read_table_file(sheet)
    top = raw.head(HEADER_SEARCH_ROWS).map(lambda v: v.strip() if isinstance(v, str) else v)
    header = next((i for i, row in enumerate(top.itertuples(index=False))
                   if set(REQUIRED) <= set(row)), None)
    if header is None:
        raise DatasetFormatError(sheet, [f"no header row naming the columns {list(REQUIRED)} "
                                         f"in the first {HEADER_SEARCH_ROWS} rows"])
    body = raw.iloc[header + 1:].copy()
    body.columns = [str(v).strip() for v in raw.iloc[header]]
    body["excel_row"] = body.index + 1
    return body.dropna(how="all", subset=list(REQUIRED))


def read_samm_lv_intervals(sheet: Path, root: Path | None = None, *,
                           skip_missing: bool = False):
    """Read SAMM Long Videos' coded movements, and with ``root`` its videos' frames.

    Parameters
    ----------
    sheet : Path
        The sheet (``.xlsx`` as shipped, or its ``.csv`` form).
    root : Path, optional
        The folder of the video folders. None: the sheet alone (no frame counts).
    skip_missing : bool
        Leave out the videos whose frame folder is absent (listed in ``missing``).

    Returns
    -------
    IntervalRelease
        Videos in order of first appearance, intervals in sheet order; apex None where the
        sheet writes -1.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: no header, values that are not whole numbers, unknown types, a
        filename that names no video, an onset after its offset; or naming ``root``: every
        video folder absent.
    """
    sheet = Path(sheet)
    body = _body(sheet)
    problems: list[str] = []
    rows = pd.DataFrame({"excel_row": body["excel_row"]})
    fractional = 0
    for key in ("Subject", "Onset", "Apex", "Offset"):
        number = pd.to_numeric(body[key], errors="coerce")
        if key != "Subject":
            # SAMMLV_gt.xlsx (the MEGC copy) writes 430 rows' frames as fractions (566.4);
            # the release's CSV writes them rounded (566).
            fractional += int((number.notna() & (number != number.round())).sum())
            number = number.round()
        rows[key] = as_ints(number)
        problems += bad_values(body, key, rows[key], "a whole number")
    rows["file"] = clean_text(body["Filename"])
    rows["type"] = clean_text(body["Type"]).str.lower().str.replace(r"\s+", " ", regex=True)
    rows["au"] = clean_text(body["Action Units"]).fillna("")
    for r in rows.itertuples():
        if r.type not in TYPES:
            problems.append(f"row {r.excel_row}: Type {r.type!r} is not Macro, Micro - 1/2 or "
                            f"Micro - 1/3")
        if pd.isna(r.file) or r.file.count("_") < 2:
            problems.append(f"row {r.excel_row}: Filename {r.file!r} is not <video>_<number>")
        elif pd.notna(r.Onset) and pd.notna(r.Offset) and not 0 <= r.Onset <= r.Offset:
            problems.append(f"row {r.excel_row}: {r.file} needs 0 <= Onset <= Offset, got "
                            f"{r.Onset}, {r.Offset}")
    if problems:
        raise DatasetFormatError(sheet, problems)

    if fractional:
        warnings.warn(f"SAMM Long Videos {sheet.name}: {fractional} frame number(s) are "
                      f"fractional; each rounded to the nearest frame, as the release's CSV "
                      f"writes them", AnnotationWarning, stacklevel=2)
    videos: dict[str, list] = {}
    for r in rows.itertuples():
        video = r.file.rsplit("_", 1)[0]
        interval = GroundTruthInterval(int(r.Onset), int(r.Apex) if r.Apex > 0 else None,
                                       int(r.Offset), TYPES[r.type], r.au, int(r.excel_row))
        videos.setdefault(video, [f"{int(r.Subject):03d}", []])[1].append(interval)
    listed = [LongVideo(subject, video, FPS, tuple(found))
              for video, (subject, found) in videos.items()]
    return attach_frames(DATASET, listed, root, lambda base, v: base / v.video,
                         skip_missing=skip_missing)


def _read(request: ReadRequest):
    return read_samm_lv_intervals(request.sheet, request.root,
                                  skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="006", layouts=("raw",), protocols=("spotting",),
    read_intervals=_read, sheet=SHEET, fps=FPS))
