"""CAS(ME)²'s cut expression samples (its Part B), as released: ``selectedpic/s15/anger1_1/``
(or the cropped set ``cropped/15/anger1_1/``) plus the code sheet
``CAS(ME)^2code_final(Updated).xlsx``. The long videos (``rawpic/``) are for spotting, not read
here.

The sheet (``CASFEcode_final``, no header) has one row per expression: participant, expression
id (``anger1_1``: video ``anger1``, its first expression), onset, apex, offset (0: not coded),
AUs, class (negative, positive, surprise, others), type (macro- or micro-expression) and the
self-reported emotion; 357 rows, 22 participants, 57 micro-expressions. Its sheet ``naming
rule1`` gives each participant's folder (participant 1 is ``s15``).

Layout: each sample's frames are in ``<participant folder>/<expression id>/``, exactly its
onset..offset, as a public AUW-GCN preprocessing log of the release shows (``selectedpic``:
357 folders ``sNN/<id>`` of 11,409 frames, ``s26/disgust1_1`` 27 of them, 1014..1040 in the
sheet; ``cropped``: ``NN/<id>``). Frame files are any images whose names end in the frame
number.

- Protocols: ``4class`` reads the 57 micro-expressions under the sheet's class (negative 21,
  positive 8, surprise 9, others 19); ``3class`` leaves out others (MEGC's negative, positive,
  surprise: 38). ``4class_all`` and ``3class_all`` read macro- and micro-expressions (357
  rows, 354 read: see below). The self-reported emotion is not used.
- An offset not coded (0; 44 macro-expressions) is the last frame of the sample's folder; an
  apex not coded (0; one) the middle frame; each with an
  :class:`~fervid.datasets.sheets.AnnotationWarning`.
- Three macro-expression rows have their apex after their offset (Excel rows 170, 242, 262)
  and no published correction: ``*_all`` leaves them out, with a warning naming them (354
  samples; see :mod:`fervid.datasets.errata`).
- Ids: dataset ``'casme_sq'``, subject the participant's folder (``'s15'``), clip the
  expression id. 30 fps.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from fervid.datasets.casme import au_strings, coded_table, release_folder
from fervid.datasets.errata import apply_errata
from fervid.datasets.frames import NUMBERED_IMAGE, index_frames
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    AnnotationWarning,
    as_ints,
    bad_values,
    check_protocol,
    clean_text,
)
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, SampleTable

DATASET = "casme_sq"
#: The release as people write it (in warnings and :data:`fervid.datasets.errata.ERRATA`).
TITLE = "CAS(ME)²"
SHEET = "CAS(ME)^2code_final(Updated).xlsx"
CODE_SHEET = "CASFEcode_final"
NAMING_SHEET = "naming rule1"
FPS = 30.0

#: The sheet's columns, in order (it has no header row).
COLUMNS = ("participant", "clip", "onset", "apex", "offset", "au", "class", "type", "reported")
CLASSES = ("negative", "positive", "surprise", "others")
TYPES = ("micro-expression", "macro-expression")

#: Protocol name -> class names, in label order.
CASME_SQ_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "4class": CLASSES,
    "3class": PROTOCOL_CLASSES["3class"],
    "4class_all": CLASSES,
    "3class_all": PROTOCOL_CLASSES["3class"],
}

#: Participant -> folder, as ``naming rule1`` gives it (used when a copy lacks that sheet).
FOLDERS = dict(zip(range(1, 23), ("s15", "s16", "s19", "s20", "s21", "s22", "s23", "s24", "s25",
                                  "s26", "s27", "s29", "s30", "s31", "s32", "s33", "s34", "s35",
                                  "s36", "s37", "s38", "s40"), strict=True))


def read_workbook(path: Path) -> dict[str, pd.DataFrame]:
    """Every worksheet of the code sheet ``path``, cells as objects, no header row."""
    if not path.is_file():
        raise DatasetFormatError(path, ["sheet file does not exist"])
    try:
        return pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except Exception as err:  # openpyxl raises many types for a non-xlsx or damaged file
        raise DatasetFormatError(path, [f"cannot read as an Excel sheet: {err}"]) from err


def _folders(book: dict[str, pd.DataFrame]) -> dict[int, str]:
    """Participant -> folder from ``naming rule1`` (folder text in column B, participant in C)."""
    naming = book.get(NAMING_SHEET)
    if naming is None or naming.shape[1] < 3:
        return FOLDERS
    pairs = pd.DataFrame({"p": as_ints(naming[2]), "f": clean_text(naming[1])}).dropna()
    return dict(zip(pairs["p"].astype(int), pairs["f"], strict=True)) or FOLDERS


def read_casme_sq_sheet(sheet: Path, types: tuple[str, ...] = TYPES) -> pd.DataFrame:
    """The CAS(ME)² code sheet as tidy rows, those of the expression ``types``.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, subject, clip, onset, apex, offset, au, emotion, type``, one row per
        expression in sheet order: ``subject`` the participant's folder (``'s15'``),
        ``emotion`` the class, ``type`` ``micro-expression`` or ``macro-expression``; an apex or
        offset not coded is ``<NA>``.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: fewer than nine columns, blank or non-integer values, participants
        without a folder, unknown classes or types (in any row); onset, apex and offset out of
        order, repeated expressions (in the rows of ``types``). An apex after the offset is
        not an error: the row is left out with an :class:`AnnotationWarning`.
    """
    sheet = Path(sheet)
    book = read_workbook(sheet)
    raw = book.get(CODE_SHEET, next(iter(book.values())))
    if raw.shape[1] < len(COLUMNS):
        raise DatasetFormatError(sheet, [f"needs {len(COLUMNS)} columns ({', '.join(COLUMNS)}), "
                                         f"found {raw.shape[1]}"])
    raw = raw.iloc[:, :len(COLUMNS)].set_axis(COLUMNS, axis=1)
    raw["excel_row"] = raw.index + 1
    raw = raw.dropna(how="all", subset=list(COLUMNS))
    raw, _ = apply_errata(TITLE, sheet.name, raw)
    first = raw["onset"].iloc[0] if len(raw) else None
    if isinstance(first, str) and not first.strip().isdigit():
        raw = raw.iloc[1:]  # a header row added by hand
    out = pd.DataFrame({"excel_row": raw["excel_row"]})
    problems: list[str] = []
    for key in ("participant", "onset", "apex", "offset"):
        out[key] = as_ints(raw[key])
        problems += bad_values(raw, key, out[key], "a frame number" if key != "participant"
                               else "a participant number")
    out["clip"] = clean_text(raw["clip"])
    problems += [f"row {r}: expression id is blank" for r in out.excel_row[out["clip"].isna()]]
    for key, known in (("class", CLASSES), ("type", TYPES)):
        out[key] = clean_text(raw[key]).str.lower()
        problems += [f"row {r}: {key} {v!r} is not one of {', '.join(known)}"
                     for r, v in out.loc[~out[key].isin(known), ["excel_row", key]]
                     .itertuples(index=False)]
    folders = _folders(book)
    out["subject"] = out["participant"].map(folders)
    problems += [f"row {r}: participant {p} has no folder in {NAMING_SHEET}" for r, p in
                 out.loc[out["participant"].notna() & out["subject"].isna(),
                         ["excel_row", "participant"]].itertuples(index=False)]
    if problems:
        raise DatasetFormatError(sheet, problems)

    out = out[out["type"].isin(types)].copy()
    out["apex"] = out["apex"].mask(out["apex"] == 0)
    out["offset"] = out["offset"].mask(out["offset"] == 0)
    # An apex after the offset (three released rows) cannot be placed in the sample's frames,
    # and no correction is published: those samples are left out, with a warning.
    late = (out.onset <= out.apex) & (out.apex > out.offset)
    bad = ((out.onset < 1) | (out.apex < out.onset) | (out.offset < out.onset)).fillna(False)
    problems += [f"row {r.excel_row}: {r.subject}/{r.clip} needs 0 < onset <= apex <= offset "
                 f"(0: not coded), got {r.onset}, {r.apex}, {r.offset}"
                 for r in out[bad].itertuples()]
    dup = out.duplicated(["subject", "clip"])
    problems += [f"row {r.excel_row}: {r.subject}/{r.clip} is listed twice"
                 for r in out[dup].itertuples()]
    if problems:
        raise DatasetFormatError(sheet, problems)
    late = late.fillna(False) & ~bad
    if late.any():
        warnings.warn(f"{TITLE} {sheet.name}: {int(late.sum())} expression(s) have their apex "
                      f"after their offset and are left out: " + "; ".join(
                          f"row {r.excel_row} ({r.subject}/{r.clip}: apex {r.apex}, offset "
                          f"{r.offset})" for r in out[late].itertuples()),
                      AnnotationWarning, stacklevel=2)
        out = out[~late]
    out["au"] = au_strings(raw["au"])
    out["emotion"] = out.pop("class")
    return out[["excel_row", "subject", "clip", "onset", "apex", "offset", "au", "emotion",
                "type"]].reset_index(drop=True)


def _complete(rows: pd.DataFrame, folders: list[Path]) -> pd.DataFrame:
    """Offsets not coded from each sample's folder (its last frame), then apexes not coded as
    the middle frame; one warning for each kind, naming the samples."""
    rows = rows.copy()
    open_ended = []
    for i in rows.index[rows["offset"].isna()]:
        index = index_frames(folders[i], NUMBERED_IMAGE) or {}
        onset = int(rows.at[i, "onset"])
        # A folder numbered its own way holds the sample from its first file.
        last = max(index) if onset in index else onset + max(len(index), 1) - 1
        rows.at[i, "offset"] = last
        open_ended.append(f"{rows.at[i, 'subject']}/{rows.at[i, 'clip']}")
    if open_ended:
        warnings.warn(f"{TITLE}: {len(open_ended)} sample(s) have no coded offset; each ends at "
                      f"its folder's last frame: {', '.join(open_ended[:5])}"
                      + (" ..." if len(open_ended) > 5 else ""), AnnotationWarning, stacklevel=3)
    for r in rows[rows["apex"].isna()].itertuples():
        middle = (r.onset + r.offset) // 2
        warnings.warn(f"{TITLE} {r.subject}/{r.clip} (sheet row {r.excel_row}): apex not "
                      f"coded; using the middle frame {middle}", AnnotationWarning, stacklevel=3)
        rows.at[r.Index, "apex"] = middle
    return rows


def read_casme_sq(root: Path, sheet: Path, protocol: str = "4class", *,
                  skip_missing: bool = False) -> SampleTable:
    """Read CAS(ME)²'s cut samples as shipped.

    Parameters
    ----------
    root : Path
        ``selectedpic/`` (``sNN/<expression id>/``) or ``cropped/`` (``NN/<expression id>/``),
        or the CAS(ME)² folder holding them (``selectedpic/`` is taken first).
    sheet : Path
        The code sheet (``CAS(ME)^2code_final(Updated).xlsx``).
    protocol : {'4class', '3class', '4class_all', '3class_all'}
        See the module docstring: micro-expressions only, or ``_all`` with macro-expressions.
    skip_missing : bool
        Leave out the samples whose folders or frames are missing (or end before the apex),
        listed in ``skipped``.

    Returns
    -------
    SampleTable
        The samples of the protocol's expression types, in sheet order; ``au`` the sheet's
        AUs, ``fps`` 30.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the sheet for its problems, or the frame folder listing every absent sample
        folder and frame.
    """
    check_protocol(protocol, CASME_SQ_PROTOCOLS, DATASET)
    rows = read_casme_sq_sheet(sheet, TYPES if protocol.endswith("_all") else TYPES[:1])
    subjects = set(rows["subject"])

    def subject_dir(base: Path, subject: str) -> Path:
        # selectedpic names the folder s15, cropped 15.
        return base / subject if (base / subject).is_dir() else base / subject[1:]

    root = release_folder(root, ("selectedpic", "cropped"),
                          lambda p: any(subject_dir(p, s).is_dir() for s in subjects), TITLE)
    folders = [subject_dir(root, s) / c for s, c in rows[["subject", "clip"]]
               .itertuples(index=False)]
    rows = _complete(rows, folders)
    late = rows[rows["apex"] > rows["offset"]]
    # A folder that ends before the apex lacks frames: a problem of that sample alone.
    problems = [ClipProblem(f"{r.subject}/{r.clip}: apex {r.apex} after the folder's last "
                            f"frame {r.offset}", DATASET, r.subject, r.clip)
                for r in late.itertuples()]
    return coded_table(rows, folders, protocol, CASME_SQ_PROTOCOLS, root=root, dataset=DATASET,
                       what=TITLE, fps=FPS, pattern=NUMBERED_IMAGE, file_name="img{N}.jpg",
                       problems=problems, skip_missing=skip_missing)


def _read(request: ReadRequest) -> SampleTable:
    return read_casme_sq(request.root, request.sheet, request.protocol,
                         skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="s15", layouts=("raw", "cropped"), protocols=("loso",), read=_read,
    classes=CASME_SQ_PROTOCOLS, sheet=SHEET, fps=FPS))
