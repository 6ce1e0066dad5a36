"""CAS(ME)²'s long videos (its Part A, ``rawpic/``) with the coded intervals, for spotting.

Registered as ``casme_sq_long``, apart from ``casme_sq``: that name reads the cut samples
(``selectedpic/``) as a class table for recognition, this one the whole videos as an
:class:`~fervid.datasets.long_videos.IntervalRelease` for spotting; the two share the sheet
but not the frames, the unit (a sample vs a video) nor the protocol.

Layout: ``rawpic/sNN/NN_CCCC<title>/img<N>.jpg`` (``s15/15_0401girlcrashing/img1.jpg``),
numbered from 1; ``CCCC`` the video code. The sheet, as shipped: ``CAS(ME)^2code_final
(Updated).xlsx`` (or the ``CASME_sq_gt.xlsx`` copy of the MEGC ground truth), sheet
``CASFEcode_final`` without header: participant, expression id (``anger1_1``: video
``anger1``, its first expression), onset, apex, offset, AUs, class, type
(``micro-expression`` / ``macro-expression``), self-reported emotion. ``naming rule1`` maps
the participant to its folder (1 → ``s15``), ``naming rule2`` the video name to its code
(``anger1`` → 401). The CSV form of the sheet (same first nine columns) is read too, with the
tables of :mod:`fervid.datasets.casme_sq` for the naming rules.

A video's id is ``<participant folder number>_<code>`` (``15_0401``), its subject the folder
(``s15``). 30 fps. Offsets written 0 (44 rows, all macro) and the apex written 0 (one row) are
uncoded: None. Three rows code the apex after the offset; for spotting only onset and offset
matter, so they are kept as written.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fervid.datasets.casme_sq import (
    CODE_SHEET,
    FOLDERS,
    NAMING_SHEET,
    TYPES,
    _folders,
    read_workbook,
)
from fervid.datasets.long_videos import (
    GroundTruthInterval,
    IntervalRelease,
    LongVideo,
    attach_frames,
    read_table_file,
)
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import as_ints, bad_values, clean_text
from fervid.samples import DatasetFormatError

DATASET = "casme_sq_long"
SHEET = "CAS(ME)^2code_final(Updated).xlsx"
VIDEO_SHEET = "naming rule2"
FPS = 30.0
COLUMNS = ("participant", "clip", "onset", "apex", "offset", "au", "class", "type")

#: Video name -> code, as ``naming rule2`` gives it (used for the CSV form of the sheet).
VIDEO_CODES = {"disgust1": 101, "disgust2": 102, "anger1": 401, "anger2": 402, "happy1": 502,
               "happy2": 503, "happy3": 505, "happy4": 507, "happy5": 508}


def _sheets(path: Path) -> tuple[pd.DataFrame, dict[int, str], dict[str, int]]:
    """The code sheet's cells, participant -> folder, video name -> code."""
    if path.suffix.lower() == ".csv":
        return read_table_file(path), FOLDERS, VIDEO_CODES
    book = read_workbook(path)
    codes = VIDEO_CODES
    naming = book.get(VIDEO_SHEET)
    if naming is not None and naming.shape[1] >= 2:
        pairs = pd.DataFrame({"c": as_ints(naming[0]), "v": clean_text(naming[1])}).dropna()
        codes = dict(zip(pairs["v"], pairs["c"].astype(int), strict=True)) or codes
    return book.get(CODE_SHEET, next(iter(book.values()))), _folders(book), codes


def read_casme_sq_intervals(sheet: Path, root: Path | None = None, *,
                            skip_missing: bool = False) -> IntervalRelease:
    """Read CAS(ME)²'s coded intervals, and with ``root`` its long videos' frames.

    Parameters
    ----------
    sheet : Path
        The code sheet (``.xlsx`` as shipped, or its ``.csv`` form).
    root : Path, optional
        ``rawpic/`` or the folder holding it. None: the sheet alone (no frame counts).
    skip_missing : bool
        Leave out the videos whose frame folder is absent (listed in ``missing``).

    Returns
    -------
    IntervalRelease
        Videos in order of first appearance in the sheet, intervals in sheet order.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: too few columns, values that are not whole numbers, unknown types,
        participants or videos the naming rules lack, an onset of 0 or an offset before the
        onset; or naming ``root``: every video folder absent.
    """
    sheet = Path(sheet)
    raw, folders, codes = _sheets(sheet)
    if raw.shape[1] < len(COLUMNS):
        raise DatasetFormatError(sheet, [f"needs {len(COLUMNS)} columns ({', '.join(COLUMNS)})"
                                         f", found {raw.shape[1]}"])
    raw = raw.iloc[:, :len(COLUMNS)].set_axis(COLUMNS, axis=1)
    raw["excel_row"] = raw.index + 1
    raw = raw.dropna(how="all", subset=list(COLUMNS))
    problems: list[str] = []
    rows = pd.DataFrame({"excel_row": raw["excel_row"]})
    for key in ("participant", "onset", "apex", "offset"):
        rows[key] = as_ints(raw[key])
        problems += bad_values(raw, key, rows[key], "a whole number")
    rows["clip"] = clean_text(raw["clip"])
    rows["type"] = clean_text(raw["type"]).str.lower()
    rows["au"] = clean_text(raw["au"]).fillna("")
    rows["subject"] = rows["participant"].map(folders)
    rows["name"] = rows["clip"].str.rsplit("_", n=1).str[0]
    rows["code"] = rows["name"].map(codes)
    for r in rows.itertuples():
        if r.type not in TYPES:
            problems.append(f"row {r.excel_row}: type {r.type!r} is not one of "
                            f"{', '.join(TYPES)}")
        if pd.notna(r.participant) and pd.isna(r.subject):
            problems.append(f"row {r.excel_row}: participant {r.participant} has no folder "
                            f"in {NAMING_SHEET}")
        if pd.notna(r.clip) and pd.isna(r.code):
            problems.append(f"row {r.excel_row}: video {r.name!r} has no code in {VIDEO_SHEET}")
        if pd.notna(r.onset) and pd.notna(r.offset) and (
                r.onset < 1 or (r.offset and r.offset < r.onset)):
            problems.append(f"row {r.excel_row}: {r.clip} needs 0 < onset <= offset (0: not "
                            f"coded), got onset {r.onset}, offset {r.offset}")
    if problems:
        raise DatasetFormatError(sheet, problems)

    videos: dict[str, list] = {}
    for r in rows.itertuples():
        video = f"{r.subject[1:]}_{int(r.code):04d}"
        interval = GroundTruthInterval(
            int(r.onset), int(r.apex) if r.apex > 0 else None,
            int(r.offset) if r.offset > 0 else None,
            "micro" if r.type == "micro-expression" else "macro", r.au, int(r.excel_row))
        videos.setdefault(video, [r.subject, []])[1].append(interval)
    listed = [LongVideo(subject, video, FPS, tuple(found))
              for video, (subject, found) in videos.items()]
    if root is not None:
        root = Path(root)
        root = root / "rawpic" if (root / "rawpic").is_dir() else root
    return attach_frames(DATASET, listed, root, _video_folder, skip_missing=skip_missing)


def _video_folder(root: Path, video: LongVideo) -> Path | None:
    # The folder's name carries a title after the code (15_0401girlcrashing).
    subject = root / video.subject
    found = sorted(subject.glob(f"{video.video}*")) if subject.is_dir() else []
    return next((p for p in found if p.is_dir()), None)


def _read(request: ReadRequest) -> IntervalRelease:
    return read_casme_sq_intervals(request.sheet, request.root,
                                   skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="s15", layouts=("raw",), protocols=("spotting",),
    read_intervals=_read, sheet=SHEET, fps=FPS))
