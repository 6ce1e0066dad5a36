"""The MEGC2019 composite: SMIC-HS, CASME II and SAMM under three classes, 68 subjects.

The ground truth ``combined_3class_gt.csv`` (no header: ``dataset,subject,clip,label``) defines
the set and its order; frames and onset/apex/offset come from the releases. Dataset names are
the file's (``casme2``, ``samm``, ``smic``). Its SAMM subjects are unpadded (``6``); samples use
the padded folder name (``006``) as :func:`read_samm` and ``megc2019_flow/index.csv`` do, so
keys agree across tables.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fervid.datasets import casme2, samm, smic
from fervid.datasets.frames import release_table
from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.datasets.sheets import AnnotationWarning, as_ints, padded_number, require_dir
from fervid.datasets.smic import find_hs, scan_smic, smic_clip_id, smic_subject_id
from fervid.errors import path_error
from fervid.samples import (
    PROTOCOL_CLASSES,
    ClipProblem,
    DatasetFormatError,
    Sample,
    SampleTable,
    with_prefix,
)

DATASET = "megc2019"
#: The releases it combines, in the order MEGC2019's result tables list them.
DATASETS = (smic.DATASET, casme2.DATASET, samm.DATASET)
GT_COLUMNS = ["dataset", "subject", "clip", "label"]

#: Per dataset: the subject id the readers use for a ground-truth subject, and the clip id.
_SUBJECT_ID = {casme2.DATASET: padded_number(2, "sub"), samm.DATASET: padded_number(3),
               smic.DATASET: smic_subject_id}
_CLIP_ID = {casme2.DATASET: str, samm.DATASET: str, smic.DATASET: smic_clip_id}


def read_megc2019_gt(gt_csv: Path) -> pd.DataFrame:
    """The ground truth with ids as the readers write them.

    Returns
    -------
    pandas.DataFrame
        ``dataset, subject, clip, label`` (label an int 0..2), in file order; SAMM subjects
        padded (``'6'`` -> ``'006'``), SMIC ids padded if the file has them unpadded.

    Raises
    ------
    DatasetFormatError
        Naming the file: wrong column count, unknown datasets, blanks, labels outside 0..2,
        duplicated clips.
    """
    gt_csv = Path(gt_csv)
    if not gt_csv.is_file():
        raise DatasetFormatError(gt_csv, ["ground-truth file does not exist"])
    try:
        gt = pd.read_csv(gt_csv, header=None, dtype=str, keep_default_na=False,
                         skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DatasetFormatError(gt_csv, [f"cannot read as CSV: {err}"]) from err
    except OSError as err:
        raise path_error(gt_csv, err, "ground-truth file") from err
    if gt.shape[1] != len(GT_COLUMNS):
        raise DatasetFormatError(gt_csv, [f"expected {len(GT_COLUMNS)} columns "
                                          f"({','.join(GT_COLUMNS)}), found {gt.shape[1]}"])
    gt.columns = GT_COLUMNS
    gt = gt.apply(lambda col: col.str.strip())
    problems = []
    for i, row in enumerate(gt.itertuples(index=False), start=1):
        if row.dataset not in _SUBJECT_ID:
            problems.append(f"line {i}: unknown dataset {row.dataset!r} "
                            f"(expected one of {', '.join(_SUBJECT_ID)})")
        if not (row.subject and row.clip):
            problems.append(f"line {i}: blank subject or clip")
    label = as_ints(gt["label"])
    n_classes = len(PROTOCOL_CLASSES["3class"])
    bad = label.isna() | (label < 0) | (label >= n_classes)
    problems += [f"line {i + 1}: label {v!r} is not 0..{n_classes - 1}"
                 for i, v in gt.loc[bad.fillna(True), "label"].items()]
    if problems:
        raise DatasetFormatError(gt_csv, problems)
    gt["label"] = label.astype(int)
    gt["subject"] = [_SUBJECT_ID[d](s) for d, s in zip(gt["dataset"], gt["subject"], strict=True)]
    gt["clip"] = [_CLIP_ID[d](c) for d, c in zip(gt["dataset"], gt["clip"], strict=True)]
    dup = gt.duplicated(["dataset", "subject", "clip"])
    if dup.any():
        # Index labels, not attributes: a Series row's .clip is its clip() method.
        raise DatasetFormatError(gt_csv, [f"line {i + 1}: {r['dataset']} {r['subject']}/"
                                          f"{r['clip']} is listed twice"
                                          for i, r in gt[dup].iterrows()])
    return gt


#: Dataset -> (display name, sheet reader, protocol labels, frame resolver).
_SHEET_DATASETS = {
    casme2.DATASET: ("CASME II", casme2.read_casme2_sheet, casme2.casme2_labels,
                     casme2.casme2_samples),
    samm.DATASET: ("SAMM", samm.read_samm_sheet, samm.samm_labels, samm.samm_samples),
}


def _sheet_part(dataset: str, root: Path, sheet: Path,
                wanted: pd.DataFrame) -> tuple[list[Sample], list[str]]:
    """Samples of the ground-truth clips of CASME II or SAMM, and the problems found.

    Only the wanted clips are resolved on disk, so clips the composite does not use (CASME II's
    'others') may be absent from the release.
    """
    name, read_rows, labels_of, samples_of = _SHEET_DATASETS[dataset]
    try:
        root = require_dir(root, name)
        rows = read_rows(sheet)
    except DatasetFormatError as err:
        return [], [f"{err.path}: {p}" for p in err.problems]
    keys = pd.MultiIndex.from_frame(wanted[["subject", "clip"]])
    in_sheet = pd.MultiIndex.from_frame(rows[["subject", "clip"]].astype(object))
    problems = [f"{name} {s}/{c} (ground truth) is not in the sheet {sheet}"
                for s, c in keys[~keys.isin(in_sheet)]]
    rows = rows[in_sheet.isin(keys)]
    samples, more = samples_of(root, rows, labels_of(rows, "3class"))
    return samples, problems + [with_prefix(f"{root}: ", p) for p in more]


def _smic_part(root: Path, wanted: pd.DataFrame) -> tuple[list[Sample], list[str]]:
    """Samples of the SMIC release, and the problems found (ground-truth clips absent)."""
    try:
        hs = find_hs(root)
    except DatasetFormatError as err:
        return [], [f"{err.path}: {p}" for p in err.problems]
    samples, more, broken = scan_smic(hs)
    problems = [with_prefix(f"{hs}: ", p) for p in more]
    present = {s.clip for s in samples} | broken
    problems += [ClipProblem(f"SMIC {s}/{c} (ground truth) is not in the release {hs}",
                             smic.DATASET, s, c)
                 for s, c in wanted[["subject", "clip"]].itertuples(index=False)
                 if c not in present]
    return samples, problems


def read_megc2019(gt_csv: Path, casme2_root: Path, casme2_sheet: Path, samm_root: Path,
                  samm_sheet: Path, smic_root: Path, *, skip_missing: bool = False
                  ) -> SampleTable:
    """Read the MEGC2019 composite set (442 clips: SMIC 164, CASME II 145, SAMM 133).

    Parameters
    ----------
    gt_csv : Path
        ``combined_3class_gt.csv``.
    casme2_root, casme2_sheet : Path
        As for :func:`fervid.datasets.read_casme2`.
    samm_root, samm_sheet : Path
        As for :func:`fervid.datasets.read_samm`.
    smic_root : Path
        As for :func:`fervid.datasets.read_smic`.
    skip_missing : bool
        Leave out the ground-truth clips whose folders or frames are missing in their
        release, listed in ``skipped``.

    Returns
    -------
    SampleTable
        Exactly the ground-truth rows, in its order, labelled by it (0 negative, 1 positive,
        2 surprise); ``emotion`` is the dataset's own word (``'repression'``, ``'anger'``). Only
        the ground-truth clips need to be present in the CASME II and SAMM releases. Where a
        release's emotion maps to another class than the ground truth's, one
        :class:`AnnotationWarning` lists those clips.

    Raises
    ------
    DatasetFormatError
        Naming ``gt_csv`` and listing every problem of all three releases together, each
        prefixed with the path it concerns (ground-truth clips absent from a release included).
    """
    gt = read_megc2019_gt(gt_csv)
    found: dict[tuple[str, str, str], Sample] = {}
    problems: list[str] = []
    for dataset in (casme2.DATASET, samm.DATASET, smic.DATASET):
        wanted = gt[gt.dataset == dataset]
        if wanted.empty:  # a shortened ground truth need not name every release
            continue
        if dataset == smic.DATASET:
            samples, more = _smic_part(smic_root, wanted)
        else:
            root, sheet = (casme2_root, casme2_sheet) if dataset == casme2.DATASET else \
                (samm_root, samm_sheet)
            samples, more = _sheet_part(dataset, root, sheet, wanted)
        found.update(((dataset, s.subject, s.clip), s) for s in samples)
        problems += more
    classes = PROTOCOL_CLASSES["3class"]
    usable = release_table(gt_csv, list(found.values()), problems, classes, "3class",
                           skip_missing=skip_missing)
    found = {(s.dataset, s.subject, s.clip): s for s in usable}

    table, disagree = [], []
    for d, s, c, label in gt.itertuples(index=False):
        sample = found.get((d, s, c))
        if sample is None:  # skipped: its frames are missing
            continue
        if sample.label != label:
            release = "none" if sample.label is None else classes[sample.label]
            disagree.append(f"{sample.key} ({sample.emotion} -> {release}, "
                            f"ground truth {classes[label]})")
        table.append(replace(sample, label=int(label)))
    if disagree:
        warnings.warn(f"{len(disagree)} clip(s) labelled differently by the release and the "
                      f"ground truth (the ground truth is used): {'; '.join(disagree)}",
                      AnnotationWarning, stacklevel=2)
    return SampleTable(table, classes, "3class", usable.skipped)


#: ``data.paths`` keys: where the ground truth and the three releases lie under --data-root.
PARTS = ("gt", casme2.DATASET, f"{casme2.DATASET}_sheet", samm.DATASET, f"{samm.DATASET}_sheet",
         smic.DATASET)


def _read(request: ReadRequest) -> SampleTable:
    p = request.paths
    return read_megc2019(p["gt"], p[casme2.DATASET], p[f"{casme2.DATASET}_sheet"],
                         p[samm.DATASET], p[f"{samm.DATASET}_sheet"], p[smic.DATASET],
                         skip_missing=request.skip_missing)


# Its flow images (``data.format: precomputed``, :mod:`fervid.datasets.precomputed`) and
# LBP-TOP / HOOF features (``handcrafted``, :mod:`fervid.datasets.megc2019_handcrafted`) are
# read from their own folders by format, not through this entry.
register_dataset(DatasetSpec(
    name=DATASET, subject="sub01, 006 or s01 (its parts' ids)",
    layouts=("raw", "cropped", "precomputed", "handcrafted"), protocols=("loso",), read=_read,
    classes={"3class": PROTOCOL_CLASSES["3class"]}, parts=PARTS))
