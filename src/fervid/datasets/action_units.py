"""FACS action units as the coding sheets write them: one parser for every sheet.

The sheets write the same thing in many ways: ``4+7+L10`` (CASME II), ``R12``, ``4(B/C)+7B``,
``ref(7B)+43``, ``R12 or R15`` (SAMM), ``4,L14`` (CAS(ME)³ Part C), ``AU4, AU7`` (MMME),
``4+7+AD38`` (DFME). :func:`parse_au` reads one such string into an :class:`AuCoding`; what it
keeps of each code:

* ``number``: 12 for ``R12``, ``AU12``, ``12C``;
* ``side``: FACS's prefix, ``L`` / ``R`` (left, right), ``T`` / ``B`` (top, bottom), ``A``
  (SAMM), ``U`` (unilateral, side not said); ``A/L`` when the coder wrote two;
* ``intensity``: ``A`` .. ``E``, ``B/C`` when coded as a range;
* ``kind``: ``AU``, or FACS's action descriptors ``AD`` and movement codes ``M`` (DFME's
  ``AD38``, ``M58``), which are not action units and never become targets;
* ``alternative``: one of several codes joined by ``or`` (the coder hesitated between them);
* ``uncertain``: written with a ``?`` (``13?``); ``ref``: written ``ref(...)`` (SAMM).

The default AU task (MEB's) ignores side, intensity and these marks: an AU is present when its
number is coded at all, every alternative of an ``or`` counting. Free words beside the codes
(SAMM's ``soft focus``) are kept as ``notes``. A blank cell or a lone ``?`` means not coded
(``coded`` False): such samples have no AU labels. Anything else is refused with
:class:`AuStringError`; :func:`read_au` names the file and row.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from fervid.config.sections import MEB_AUS
from fervid.errors import FervidError
from fervid.samples import DatasetFormatError, SampleTable

_INTENSITY = r"[A-E](?:/[A-E])*"
_CODE = re.compile(
    r"(?:(?P<kind>AD|M)|(?:AU)?(?P<side>[LRTBAU](?:/[LRTBAU])*)?)\s*(?P<number>\d{1,3})"
    rf"(?:(?P<intensity>{_INTENSITY})|\((?P<range>{_INTENSITY})\))?(?P<uncertain>\?)?")
_REF = re.compile(r"ref\((?P<code>[^()]*)\)", re.IGNORECASE)
_NOTE = re.compile(r"[A-Za-z][A-Za-z ]+")
#: Codes are joined by ``+`` or commas (CAS(ME)³ Part C also writes a full-width one).
_JOINS = "+,，"


class AuStringError(FervidError, ValueError):
    """An AU string the parser cannot read; the message says why."""


@dataclass(frozen=True)
class ActionUnit:
    """One coded action (see the module notes for each field)."""

    number: int
    side: str = ""
    intensity: str = ""
    kind: str = "AU"
    alternative: bool = False
    uncertain: bool = False
    ref: bool = False

    @property
    def name(self) -> str:
        """``AU12`` (``AD38``, ``M58`` for the other kinds)."""
        return f"{self.kind}{self.number}"


@dataclass(frozen=True)
class AuCoding:
    """An AU string as read: its ``units`` in order, free ``notes``, and whether it codes
    anything (``coded`` False for a blank cell or a lone ``?``)."""

    text: str
    units: tuple[ActionUnit, ...] = ()
    notes: tuple[str, ...] = ()
    coded: bool = True

    @property
    def numbers(self) -> frozenset[int]:
        """The action units present (kind ``AU`` only), side and intensity ignored."""
        return frozenset(u.number for u in self.units if u.kind == "AU")


def _split(text: str) -> list[str]:
    """``text`` cut at the joins outside parentheses."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise AuStringError("a ')' closes nothing")
        if ch in _JOINS and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth:
        raise AuStringError("a '(' is never closed")
    parts.append("".join(current))
    return [p.strip() for p in parts]


def _code(text: str, alternative: bool) -> ActionUnit:
    ref = _REF.fullmatch(text)
    if ref:
        return replace(_code(ref["code"].strip(), alternative), ref=True)
    m = _CODE.fullmatch(text)
    if m is None:
        raise AuStringError(f"{text!r} is not an action unit code")
    return ActionUnit(int(m["number"]), side=m["side"] or "",
                      intensity=m["intensity"] or m["range"] or "", kind=m["kind"] or "AU",
                      alternative=alternative, uncertain=bool(m["uncertain"]))


def parse_au(text: object) -> AuCoding:
    """Read one AU cell (text or a number, as a sheet holds it).

    Raises
    ------
    AuStringError
        Saying which part cannot be read.
    """
    if text is None or (isinstance(text, float) and text != text):
        return AuCoding("", coded=False)
    if isinstance(text, float) and text.is_integer():
        text = int(text)
    text = str(text).strip()
    if text in ("", "?"):
        return AuCoding(text, coded=False)
    units, notes = [], []
    for part in _split(text):
        if not part:
            continue  # a trailing or doubled join ("L1,10,11,38,")
        if part.startswith("(") and part.endswith(")"):
            part = part[1:-1].strip()  # "(R6 or R12)"
        options = [o.strip() for o in re.split(r"\s+or\s+", part)]
        if len(options) == 1 and _NOTE.fullmatch(part) and not _CODE.fullmatch(part):
            notes.append(part)
            continue
        units += [_code(o, len(options) > 1) for o in options]
    if not units:
        raise AuStringError("no action unit in it")
    return AuCoding(text, tuple(units), tuple(notes))


def read_au(text: object, path: Path | str, row: int) -> AuCoding:
    """:func:`parse_au`, an unreadable string raised as a :class:`DatasetFormatError` naming
    the file, row and text."""
    try:
        return parse_au(text)
    except AuStringError as err:
        raise DatasetFormatError(path, [f"row {row}: AU string {str(text)!r} cannot be read: "
                                        f"{err}"]) from err


def au_name(number: int) -> str:
    return f"AU{number}"


@dataclass(frozen=True)
class AuTargets:
    """A table's AU labels: ``y`` ``(N, A)`` float32 0/1 over the AUs ``names`` (in the
    order of the AU list), ``coded`` ``(N,)`` bool (False: the sample has no AU labels), and
    ``counts``: every listed AU's positives among the coded samples, kept or not."""

    y: np.ndarray
    coded: np.ndarray
    names: tuple[str, ...]
    counts: dict[str, int]


def au_targets(table: SampleTable, units: Sequence[int] = MEB_AUS, *, min_count: int = 0,
               where: str = "") -> AuTargets:
    """Multi-hot AU labels of ``table`` from each sample's ``au`` string.

    AUs of ``units`` with fewer than ``min_count`` positives among the coded samples are
    dropped (they stay in ``counts``). ``where`` names the source in errors.

    Raises
    ------
    DatasetFormatError
        An AU string that cannot be read; or no AU left.
    """
    codings = []
    for i, s in enumerate(table):
        try:
            codings.append(parse_au(s.au))
        except AuStringError as err:
            raise DatasetFormatError(where or s.dataset, [
                f"{s.dataset}/{s.subject}/{s.clip} (sample {i}): AU string {s.au!r} cannot be "
                f"read: {err}"]) from err
    coded = np.array([c.coded for c in codings], dtype=bool)
    full = np.array([[n in c.numbers for n in units] for c in codings],
                    dtype=np.float32).reshape(len(codings), len(units))
    full[~coded] = 0
    counts = {au_name(n): int(full[:, j].sum()) for j, n in enumerate(units)}
    keep = [j for j, n in enumerate(units) if counts[au_name(n)] >= max(min_count, 1)]
    if not keep:
        raise DatasetFormatError(where or "AU labels", [
            f"no AU of {', '.join(map(au_name, units))} occurs at least {max(min_count, 1)} "
            f"time(s) among the {int(coded.sum())} samples with AU labels"])
    return AuTargets(full[:, keep], coded, tuple(au_name(units[j]) for j in keep), counts)


AU_COLUMN = "Action Units"


def sheet_au_column(table: pd.DataFrame, rows: pd.DataFrame, column: str = AU_COLUMN
                    ) -> pd.Series:
    """The AU text of tidy sheet ``rows``, matched to the raw ``table`` (:func:`~fervid.
    datasets.sheets.read_sheet`) by Excel row; ``""`` where blank or where the sheet has no
    ``column`` (AU labels are optional for emotion protocols)."""
    from fervid.datasets.sheets import clean_text

    if column not in table.columns:
        return pd.Series([""] * len(rows), index=rows.index, dtype=object)
    texts = dict(zip(table["excel_row"], clean_text(table[column]).fillna(""), strict=True))
    return rows["excel_row"].map(texts).fillna("").astype(object)


#: Dataset → (its sheet's file name, its tidy sheet reader with an ``au`` column): the sheets
#: ``data.au_sheets`` may hold, each under a folder named after its dataset. Filled by the
#: reader files (:func:`register_au_sheet`), which the ``fervid.datasets`` package imports.
AU_SHEET_READERS: dict[str, tuple[str, Callable[[Path], pd.DataFrame]]] = {}


def register_au_sheet(dataset: str, sheet: str, read: Callable[[Path], pd.DataFrame]) -> None:
    """Declare that ``read(path)`` gives ``dataset``'s sheet ``sheet`` as tidy rows with
    ``excel_row, subject, clip, au`` (read by :func:`read_au_sheets`)."""
    AU_SHEET_READERS[dataset] = (sheet, read)


def read_au_sheets(folder: Path) -> dict[tuple[str, str, str], tuple[str, Path, int]]:
    """``(dataset, subject, clip) → (AU string, sheet, Excel row)`` from the CASME II and
    SAMM sheets under ``folder`` (laid out as ``casme2/CASME2-coding-20140508.xlsx`` and
    ``samm/SAMM_Micro_FACS_Codes_v2.xlsx``); every string is checked (:func:`read_au`).

    Raises
    ------
    DatasetFormatError
        ``folder`` holds neither sheet, a sheet lacks its columns, or a string is unreadable.
    """
    from fervid.datasets.sheets import AnnotationWarning

    folder = Path(folder)
    readers = AU_SHEET_READERS  # complete: importing this module ran fervid.datasets' imports
    paths = {d: folder / d / name for d, (name, _) in readers.items()}
    present = [d for d, path in paths.items() if path.is_file()]
    if not present:
        raise DatasetFormatError(folder, [
            f"data.au_sheets holds none of {', '.join(f'{d}/{n}' for d, (n, _) in readers.items())}"
        ])
    found: dict[tuple[str, str, str], tuple[str, Path, int]] = {}
    for dataset in present:
        with warnings.catch_warnings():  # the sheet's quirks matter to its reader, not here
            warnings.simplefilter("ignore", AnnotationWarning)
            rows = readers[dataset][1](paths[dataset])
        for row in rows.itertuples(index=False):
            read_au(row.au, paths[dataset], int(row.excel_row))
            found[(dataset, row.subject, row.clip)] = (row.au, paths[dataset],
                                                       int(row.excel_row))
    return found


def with_sheet_aus(table: SampleTable, folder: Path) -> tuple[SampleTable, int]:
    """``table`` with each sample's ``au`` taken from the sheets under ``folder``
    (:func:`read_au_sheets`), matched by dataset, subject and clip; samples of no sheet keep
    theirs. Returns the table and how many samples were matched."""
    sheets = read_au_sheets(folder)
    samples, matched = [], 0
    for s in table:
        hit = sheets.get((s.dataset, s.subject, s.clip))
        matched += hit is not None
        samples.append(replace(s, au=hit[0]) if hit is not None else s)
    return SampleTable(samples, table.classes, table.protocol, table.skipped), matched


def count_parsed(texts: Iterable[object]) -> tuple[Counter, list[tuple[object, str]]]:
    """How strings fare: counts of ``read`` / ``not coded`` / ``refused``, and each refused
    string with its reason (the parser's record on a sheet)."""
    counts: Counter = Counter({"read": 0, "not coded": 0, "refused": 0})
    refused = []
    for text in texts:
        try:
            coding = parse_au(text)
        except AuStringError as err:
            counts["refused"] += 1
            refused.append((text, str(err)))
            continue
        counts["read" if coding.coded else "not coded"] += 1
    return counts, refused
