"""Shared helpers for the readers: coding sheets, protocol names and value checks."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from fervid.errors import OptionError
from fervid.samples import DatasetFormatError

#: How far down a sheet the header row is looked for (SAMM has 13 preamble rows).
HEADER_SEARCH_ROWS = 40


class AnnotationWarning(UserWarning):
    """A sheet or release quirk that the reader worked around (e.g. an apex written ``/``)."""


def check_protocol(protocol: str, valid: Iterable[str], dataset: str) -> None:
    """Raise :class:`~fervid.errors.OptionError` naming the valid protocols when ``protocol``
    is not one of them."""
    valid = tuple(valid)
    if protocol not in valid:
        raise OptionError(f"unknown protocol {protocol!r} for {dataset}; "
                          f"valid protocols: {', '.join(valid)}")


def require_dir(path: Path, what: str) -> Path:
    """``path`` as a ``Path``; a ``DatasetFormatError`` when it is not an existing folder."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetFormatError(path, [f"{what} folder does not exist"])
    return path


def read_sheet(path: Path, required: Sequence[str], sheet_name: str | int = 0) -> pd.DataFrame:
    """Read a coding sheet whose header row holds the ``required`` column names.

    The header row is found by content (the row naming most required columns) rather than a
    fixed offset, so SAMM's 13 preamble rows need no special case. Cells keep
    their Excel types (``dtype=object``): CASME II subjects are text (``'01'``) and must stay so.
    pandas opens workbooks with ``data_only=True``, so formula cells give their cached values.

    Parameters
    ----------
    path : Path
        The ``.xlsx`` file.
    required : sequence of str
        Column names that must be present, compared after stripping spaces.
    sheet_name : str or int
        The worksheet.

    Returns
    -------
    pandas.DataFrame
        The rows below the header, fully blank rows dropped, with a column ``excel_row`` (the
        1-based row number in Excel) for error messages.

    Raises
    ------
    DatasetFormatError
        When the file is missing or unreadable, or lacks a header or any required column (all
        missing columns are listed together).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, ["sheet file does not exist"])
    try:
        raw = pd.read_excel(path, sheet_name=sheet_name, header=None, dtype=object,
                            engine="openpyxl")
    except Exception as err:  # openpyxl raises many types for a non-xlsx or damaged file
        raise DatasetFormatError(path, [f"cannot read as an Excel sheet: {err}"]) from err
    # The header is the row naming the most required columns, so a renamed column is reported
    # as missing rather than as "no header".
    top = raw.head(HEADER_SEARCH_ROWS).map(lambda v: v.strip() if isinstance(v, str) else v)
    scores = [len(set(required) & set(row)) for row in top.itertuples(index=False)]
    header = max(range(len(scores)), key=scores.__getitem__, default=None)
    if header is None or scores[header] < min(2, len(required)):
        raise DatasetFormatError(path, [f"no header row naming the columns {list(required)} in "
                                        f"the first {HEADER_SEARCH_ROWS} rows"])
    names = [str(v).strip() if pd.notna(v) else f"(blank {i})" for i, v in
             enumerate(raw.iloc[header])]
    missing = [c for c in required if c not in names]
    if missing:
        found = ", ".join(repr(n) for n in names if not n.startswith("(blank"))
        raise DatasetFormatError(path, [f"missing column {c!r}" for c in missing]
                                 + [f"columns found on row {header + 1}: {found}"])
    body = raw.iloc[header + 1:].copy()
    body.columns = names
    body["excel_row"] = body.index + 1
    return body.dropna(how="all", subset=names).reset_index(drop=True)


def as_ints(values: pd.Series) -> pd.Series:
    """Whole numbers as nullable ``Int64``; anything else (text, fractions, blanks) as ``<NA>``."""
    num = pd.to_numeric(values, errors="coerce")
    whole = num.notna() & (num == num.round())
    return num.where(whole).astype("Int64")


def bad_values(sheet: pd.DataFrame, column: str, parsed: pd.Series, what: str,
               blank_note: str = "") -> list[str]:
    """One problem per row whose ``column`` did not parse, naming the Excel row and the value."""
    bad = sheet.loc[parsed.isna(), ["excel_row", column]]
    return [f"row {r}: {column} is blank{blank_note}" if pd.isna(v) else
            f"row {r}: {column} {v!r} is not {what}" for r, v in bad.itertuples(index=False)]


def clean_text(values: pd.Series) -> pd.Series:
    """Text cells stripped; blanks as ``<NA>``; numbers written as ints (``6.0`` -> ``'6'``)."""
    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and v != v):
            return pd.NA
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        text = str(v).strip()
        return text if text else pd.NA
    return values.map(one).astype("string")


def tidy_clip_rows(path: Path, sheet: pd.DataFrame, columns: dict[str, str],
                   subject_id: Callable[[str], str], dataset: str) -> pd.DataFrame:
    """Turn a coding sheet into one tidy row per clip, checking every value first.

    Parameters
    ----------
    path : Path
        The sheet, named in errors.
    sheet : pandas.DataFrame
        From :func:`read_sheet`.
    columns : dict
        Sheet column for each of ``subject``, ``clip``, ``onset``, ``apex``, ``offset``,
        ``emotion``.
    subject_id : callable
        Sheet subject text to the sample's subject id (``'01'`` -> ``'sub01'``).
    dataset : str
        Name used in warnings.

    Returns
    -------
    pandas.DataFrame
        Columns ``excel_row, subject, clip, onset, apex, offset, emotion, apex_annotated``;
        emotions lower-cased. An apex written ``/`` or left blank becomes the middle frame,
        with an :class:`AnnotationWarning` naming the clip, and ``apex_annotated`` False.

    Raises
    ------
    DatasetFormatError
        Listing every blank id, non-integer frame number, apex outside onset..offset and
        duplicated clip.
    """
    problems: list[str] = []
    out = pd.DataFrame({"excel_row": sheet["excel_row"]})
    for key in ("subject", "clip", "emotion"):
        out[key] = clean_text(sheet[columns[key]])
        problems += [f"row {r}: {columns[key]} is blank" for r in out.excel_row[out[key].isna()]]
    for key in ("onset", "offset"):
        out[key] = as_ints(sheet[columns[key]])
        problems += bad_values(sheet, columns[key], out[key], "a frame number")
    apex_text = clean_text(sheet[columns["apex"]])
    unannotated = apex_text.isna() | (apex_text == "/")
    out["apex"] = as_ints(sheet[columns["apex"]])
    problems += bad_values(sheet[~unannotated], columns["apex"], out["apex"][~unannotated],
                           "a frame number or '/'")
    out["apex_annotated"] = ~unannotated
    if problems:
        raise DatasetFormatError(path, problems)

    out["subject"] = out["subject"].map(subject_id).astype("string")
    out["emotion"] = out["emotion"].str.lower()
    middle = (out["onset"] + out["offset"]) // 2
    for row in out[unannotated].itertuples(index=False):
        warnings.warn(f"{dataset} {row.subject}/{row.clip} (sheet row {row.excel_row}): apex not "
                      f"annotated; using the middle frame {(row.onset + row.offset) // 2}",
                      AnnotationWarning, stacklevel=3)
    out["apex"] = out["apex"].where(~unannotated, middle)

    order = (out.onset <= out.apex) & (out.apex <= out.offset) & (out.onset >= 0)
    problems += [f"row {r.excel_row}: {r.subject}/{r.clip} needs 0 <= onset <= apex <= offset, "
                 f"got {r.onset}, {r.apex}, {r.offset}" for r in out[~order].itertuples()]
    dup = out.duplicated(["subject", "clip"], keep="first")
    problems += [f"row {r.excel_row}: {r.subject}/{r.clip} is listed twice"
                 for r in out[dup].itertuples()]
    if problems:
        raise DatasetFormatError(path, problems)
    return out.reset_index(drop=True)


def check_known(path: Path, rows: pd.DataFrame, column: str, known: Sequence[str],
                sheet_column: str) -> None:
    """A :class:`DatasetFormatError` naming every row of tidy ``rows`` whose ``column`` is not
    one of ``known`` (a typo would otherwise drop the clip from every protocol in silence)."""
    bad = rows[~rows[column].isin(known)]
    if len(bad):
        raise DatasetFormatError(path, [f"row {r}: {sheet_column} {v!r} is not one of "
                                        f"{', '.join(known)}" for r, v in
                                        bad[["excel_row", column]].itertuples(index=False)])


def padded_number(width: int, prefix: str = "") -> Callable[[str], str]:
    """Subject text to an id: digits zero-padded to ``width`` after ``prefix``, else unchanged.

    ``padded_number(2, 'sub')('1') == 'sub01'``; ``padded_number(3)('6') == '006'``.
    """
    def convert(text: str) -> str:
        return f"{prefix}{int(text):0{width}d}" if text.isdigit() else text
    return convert
