"""What a release on disk holds, as fervid reads it: ``fervid data check``.

:func:`check_release` reads a registered release the way training will (its registered
reader, every class protocol) and counts what it found: samples per class, subject and split,
frames per clip and frame rates, with every problem the reader raised or worked around. It
never trains or decodes pixels, so users can check their copy before a long run.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fervid.datasets.registry import DatasetSpec, ReadRequest, dataset_spec
from fervid.errors import FervidError, OptionError
from fervid.samples import DatasetFormatError, SampleTable


@dataclass
class ClassCounts:
    """Samples per class under one protocol (``outside``: samples it leaves out)."""

    protocol: str
    classes: list[str]
    counts: dict[str, int]
    outside: int = 0


@dataclass
class ReleaseCheck:
    """What :func:`check_release` found.

    ``layout_error`` is the reader's refusal (a missing folder, absent frames, a bad sheet
    row), one line; when set, the counts are those of what could be read (often none).
    ``notes`` are the problems the reader worked around (its warnings: damaged frames
    skipped, a sheet error corrected, a row left out). ``skipped``: the clips left out, each
    with its problem, when read with ``skip_missing``.
    """

    dataset: str
    root: str
    samples: int = 0
    subjects: int = 0
    protocols: list[ClassCounts] = field(default_factory=list)
    per_subject: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    frames: dict[str, float] = field(default_factory=dict)
    fps: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    layout_error: str | None = None
    problems: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.layout_error is None

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _frame_stats(lengths: Iterable[int]) -> dict[str, float]:
    lengths = [n for n in lengths if n]
    if not lengths:
        return {}
    return {"clips": len(lengths), "min": min(lengths), "max": max(lengths),
            "mean": round(sum(lengths) / len(lengths), 2), "total": sum(lengths)}


def _class_counts(table: SampleTable, protocol: str) -> ClassCounts:
    counts = Counter(table.classes[s.label] for s in table if s.label is not None)
    return ClassCounts(protocol, list(table.classes),
                       {c: counts.get(c, 0) for c in table.classes},
                       sum(s.label is None for s in table))


def _read_quietly(read, notes: list[str]):
    """Call ``read()``, keeping its warnings as notes (one line each, in order, no repeats)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return read()
        finally:
            for w in caught:
                text = " ".join(str(w.message).split())
                if text not in notes:
                    notes.append(text)


def _check_clips(spec: DatasetSpec, root: Path, sheet: Path | None, protocol: str | None,
                 report: ReleaseCheck, skip_missing: bool = False) -> None:
    protocols = [protocol] if protocol else list(spec.classes) or [""]
    main: SampleTable | None = None
    for name in protocols:
        request = ReadRequest(root, name, sheet, skip_missing=skip_missing)
        table = _read_quietly(lambda r=request: spec.read(r), report.notes)
        report.protocols.append(_class_counts(table, name))
        main = main or table
    report.samples = len(main)
    report.skipped = [str(p) for p in main.skipped]
    report.per_subject = dict(Counter(s.subject for s in main))
    report.subjects = len(report.per_subject)
    splits: dict[str, Counter] = {}
    for s in main:
        if s.split:
            splits.setdefault(s.split, Counter())[main.classes[s.label] if s.label is not None
                                                   else "(outside protocol)"] += 1
    report.per_split = {k: dict(v) for k, v in splits.items()}
    report.frames = _frame_stats(len(s.frames) for s in main)
    rates = Counter(f"{s.fps:g}" for s in main if s.fps)
    report.fps = dict(sorted(rates.items(), key=lambda kv: float(kv[0])))


def _check_splits(spec: DatasetSpec, root: Path, report: ReleaseCheck) -> None:
    # skip_missing: a copy with absent clips is still counted, the absent ones listed.
    split = _read_quietly(lambda: spec.read_splits(root, skip_missing=True), report.notes)
    classes = list(split.classes)
    clips = split.clips
    report.samples = len(clips)
    counts = Counter(classes[c.label] for c in clips)
    report.protocols.append(ClassCounts("", classes, {c: counts.get(c, 0) for c in classes}))
    for fold in split.folds:
        for part in ("train", "test"):
            got = Counter(classes[c.label] for c in getattr(fold, part))
            report.per_split[f"fold {fold.fold} {part}"] = {c: got.get(c, 0) for c in classes}
    report.frames = _frame_stats(c.num_frames or 0 for c in clips)
    if split.missing:
        report.problems.append(f"{len(split.missing)} listed clip(s) have no usable frames: "
                               + ", ".join(list(split.missing)[:10])
                               + (" ..." if len(split.missing) > 10 else ""))


def _check_faces(spec: DatasetSpec, root: Path, report: ReleaseCheck) -> None:
    faces = _read_quietly(lambda: spec.read_faces(root), report.notes)
    table = faces.table
    report.samples = len(table)
    report.protocols.append(_class_counts(table, table.protocol))
    report.per_subject = dict(Counter(s.subject for s in table if s.subject))
    report.subjects = len(report.per_subject)
    splits: dict[str, Counter] = {}
    for s in table:
        splits.setdefault(s.split or "(all)", Counter())[s.emotion] += 1
    report.per_split = {k: dict(v) for k, v in splits.items()}


def _check_intervals(spec: DatasetSpec, root: Path, sheet: Path | None, report: ReleaseCheck,
                     skip_missing: bool = False) -> None:
    # A spotting release: samples are its coded intervals, protocol "spotting" their kinds.
    release = _read_quietly(lambda: spec.read_intervals(
        ReadRequest(root, "spotting", sheet, skip_missing=skip_missing)), report.notes)
    counts = release.counts()
    report.samples = counts["intervals"]
    report.subjects = counts["subjects"]
    report.protocols.append(ClassCounts("spotting", ["micro", "macro"],
                                        {k: counts[k] for k in ("micro", "macro")}))
    report.per_subject = dict(Counter(v.subject for v in release.videos
                                      for _ in v.intervals))
    report.per_split = {"videos": {"videos": counts["videos"]},
                        "uncoded": {"offset": counts["uncoded_offsets"],
                                   "apex": counts["uncoded_apexes"]}}
    report.frames = _frame_stats(v.n_frames or 0 for v in release.videos)
    report.fps = dict(Counter(f"{v.fps:g}" for v in release.videos))
    report.skipped = [f"video {m}: no frame folder" for m in release.missing]


def check_release(name: str, root: Path, *, protocol: str | None = None,
                  sheet: Path | None = None, skip_missing: bool = False) -> ReleaseCheck:
    """Read the release ``name`` at ``root`` and count what it holds.

    Parameters
    ----------
    name : str
        A registered dataset (``fervid data list``).
    root : Path
        Its folder, as ``--data-root`` takes it.
    protocol : str, optional
        One class protocol; default every protocol the release has.
    sheet : Path, optional
        Its coding sheet; default ``root / spec.sheet`` when that file exists.
    skip_missing : bool
        Count what is left once the clips whose folders or frames are missing or damaged
        are left out (listed in ``skipped``), as ``--skip-missing`` trains on.

    Returns
    -------
    ReleaseCheck
        With ``layout_error`` set when the reader refused the release.

    Raises
    ------
    OptionError
        Unknown dataset or protocol, a composite set (check each part), or a sheet given to
        a release that has none.
    """
    spec = dataset_spec(name)
    if spec.is_composite:
        raise OptionError(f"{name} is a composite of several releases: check each part with "
                          f"its own --dataset")
    if protocol is not None and spec.classes and protocol not in spec.classes:
        raise OptionError(f"unknown protocol {protocol!r} for {name}; valid protocols: "
                          f"{', '.join(spec.classes)}")
    root = Path(root)
    if sheet is None and spec.sheet is not None and (root / spec.sheet).is_file():
        sheet = root / spec.sheet
    problem = spec.sheet_problem(sheet is not None)
    if problem is not None:
        raise OptionError(f"{name} {problem}: " + ("do not pass --sheet" if sheet is not None
                                                   else "pass --sheet"))
    report = ReleaseCheck(name, str(root))
    try:
        if spec.read_intervals is not None:
            _check_intervals(spec, root, sheet, report, skip_missing)
        elif spec.read is not None:
            _check_clips(spec, root, sheet, protocol, report, skip_missing)
        elif spec.read_splits is not None:
            _check_splits(spec, root, report)
        else:
            _check_faces(spec, root, report)
    except DatasetFormatError as err:
        report.layout_error = str(err)
        report.problems = list(err.problems) + report.problems
    except OptionError:
        raise
    except FervidError as err:  # a missing folder or split file: the layout is wrong
        report.layout_error = str(err)
        report.problems.append(str(err))
    return report
