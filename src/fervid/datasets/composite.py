"""Cross-dataset composites: any list of registered micro-expression releases read under one
named class protocol, as one sample table.

Each part is read by its own registered reader under the composite's protocol (``3class``:
MEGC's negative, positive, surprise, which every micro-expression reader offers; or a protocol
the parts share with the same classes). Subjects stay distinct per dataset: folds are keyed by
``dataset/subject`` (:func:`fervid.samples.subject_key`), so LOSO by subject and
leave-one-dataset-out (``group: dataset``) both work on the result.

In a config (``fervid loso``)::

    data:
      dataset: composite
      protocol: 3class
      paths:                      # relative to --data-root; the order is the table's order
        casme2: CASME2/Cropped
        casme2_sheet: CASME2/CASME2-coding-20140508.xlsx
        smic: SMIC/SMIC_all_cropped
        samm: SAMM/SAMM
        samm_sheet: SAMM/SAMM_Micro_FACS_Codes_v2.xlsx

Every key is a registered dataset; ``<name>_sheet`` gives its coding sheet. Read this way,
CASME II, SMIC-HS and SAMM under ``3class`` give MEGC2019's composite ground truth row for
row (442 samples, 68 subjects): each reader's ``3class`` protocol already leaves out what
MEGC2019 left out (CASME II's two clips without a usable apex; the ``others`` classes).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from fervid.datasets.class_names import canonical_class
from fervid.datasets.registry import DatasetSpec, ReadRequest, dataset_spec, register_dataset
from fervid.errors import OptionError
from fervid.samples import DatasetFormatError, SampleTable, with_prefix

DATASET = "composite"
#: The suffix of a part's sheet key in ``data.paths``.
SHEET_SUFFIX = "_sheet"


@dataclass(frozen=True)
class Part:
    """One release of a composite: a registered ``dataset`` at ``root`` (with its sheet)."""

    dataset: str
    root: Path
    sheet: Path | None = None


def _canonical(classes: Sequence[str]) -> tuple[str, ...]:
    return tuple(canonical_class(c) or c for c in classes)


def read_composite(parts: Sequence[Part], protocol: str, *, drop: Collection[str] = (),
                   where: Path | None = None, skip_missing: bool = False) -> SampleTable:
    """Read ``parts`` under ``protocol`` and join their labelled samples, in part order.

    Parameters
    ----------
    parts : sequence of Part
        Registered micro-expression releases (each with a clip reader), each at most once.
    protocol : str
        A class protocol every part has, with the same classes (compared by canonical name:
        ``happy`` and ``happiness`` agree).
    drop : collection of str
        Sample keys (``dataset_subject_clip``) to leave out, e.g. a published drop list.
    where : Path, optional
        The folder named in a format error (default the first part's root).
    skip_missing : bool
        Each part leaves out its clips whose folders or frames are missing or damaged; the
        table's ``skipped`` lists those of every part.

    Returns
    -------
    SampleTable
        The labelled samples of every part; classes those of the first part.

    Raises
    ------
    OptionError
        No parts, a part listed twice, an unknown or unsuitable dataset, or a protocol a
        part lacks or whose classes differ.
    DatasetFormatError
        Every problem of every part at once, each prefixed with its dataset; or a ``drop``
        key that matches no sample (a typo would otherwise drop nothing in silence).
    """
    if not parts:
        raise OptionError("a composite needs at least one part")
    names = [p.dataset for p in parts]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OptionError(f"composite: {', '.join(twice)} listed more than once")
    specs = [dataset_spec(p.dataset, lambda s: s.reads_one_root and "loso" in s.protocols,
                          "in a composite (it needs a clip reader)") for p in parts]
    classes = None
    for part, spec in zip(parts, specs, strict=True):
        if protocol not in spec.classes:
            raise OptionError(f"composite: {part.dataset} has no protocol {protocol!r}; its "
                              f"protocols: {', '.join(spec.classes)}")
        own = _canonical(spec.classes[protocol])
        if classes is not None and own != classes:
            raise OptionError(f"composite: {part.dataset}'s {protocol} classes {list(own)} "
                              f"differ from {parts[0].dataset}'s {list(classes)}")
        classes = own
    tables, problems = [], []
    for part, spec in zip(parts, specs, strict=True):
        problem = spec.sheet_problem(part.sheet is not None)
        if problem is not None:
            problems.append(f"{part.dataset} {problem}")
            continue
        try:
            tables.append(spec.read(ReadRequest(Path(part.root), protocol, part.sheet,
                                                skip_missing=skip_missing)))
        except DatasetFormatError as err:
            problems += [with_prefix(f"{part.dataset}: {err.path}: ", p) for p in err.problems]
    where = Path(where) if where is not None else Path(parts[0].root)
    if problems:
        raise DatasetFormatError(where, problems)
    samples = [s for t in tables for s in t.labelled()]
    unknown = sorted(set(drop) - {s.key for s in samples})
    if unknown:
        raise DatasetFormatError(where, [f"drop list: no labelled sample {k}" for k in unknown])
    kept = [s for s in samples if s.key not in set(drop)]
    return SampleTable(kept, tuple(tables[0].classes), protocol,
                       tuple(p for t in tables for p in t.skipped))


def parts_from_paths(paths: dict[str, Path]) -> list[Part]:
    """``data.paths`` (already resolved) as parts: each key not ending in ``_sheet`` is a
    dataset, ``<name>_sheet`` its sheet.

    Raises
    ------
    OptionError
        A sheet key without its dataset key.
    """
    orphans = [k for k in paths if k.endswith(SHEET_SUFFIX)
               and k[: -len(SHEET_SUFFIX)] not in paths]
    if orphans:
        raise OptionError(f"data.paths: {', '.join(orphans)} name(s) a sheet of a dataset that "
                          f"is not among the parts")
    return [Part(k, Path(v), paths.get(k + SHEET_SUFFIX)) for k, v in paths.items()
            if not k.endswith(SHEET_SUFFIX)]


def _read(request: ReadRequest) -> SampleTable:
    return read_composite(parts_from_paths(dict(request.paths)), request.protocol,
                          where=request.root, skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="its parts' ids (folds key them by dataset)", layouts=("raw", "cropped"),
    protocols=("loso",), read=_read, classes={}, open_parts=True))
