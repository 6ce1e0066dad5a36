"""SMIC-HS, as released: ``HS/s1/micro/negative/s1_ne_01/image059447.bmp``.

There is no coding sheet: the label is the folder name and each clip folder holds onset..offset,
so the apex is taken as the middle frame. Folder names are unpadded (``s1``, ``s1_ne_01``); the
ids are padded as in MEGC2019's ground truth: dataset ``'smic'``, subject ``'s01'``, clip
``'s01_ne_01'``. Already padded folders (``s01``) give the same ids.

Optionally, apexes come from a third party's sheet, ``smic_apex_third_party.xlsx`` (QqXuyujie/
Micro-Expression-Datasets, ``Onset_Apex_Files/SMIC/``: ``data, subject, clip, label,
onset_frame, apex_frame, offset_frame, *_path``, one row per SMIC-HS clip, frame numbers as the
clip folders number them; seven rows leave the offset blank): see :func:`read_smic`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fervid.datasets.clip_jobs import ClipJob, folder_job, subdirs
from fervid.datasets.frames import describe_numbers, index_frames, release_table
from fervid.datasets.registry import DatasetSpec, PrepareHook, ReadRequest, register_dataset
from fervid.datasets.sheets import (
    AnnotationWarning,
    as_ints,
    bad_values,
    check_protocol,
    clean_text,
    read_sheet,
    require_dir,
)
from fervid.samples import PROTOCOL_CLASSES, ClipProblem, DatasetFormatError, Sample, SampleTable

DATASET = "smic"
FPS = 100.0

#: Protocol name -> class names; SMIC only has the three folder classes.
SMIC_PROTOCOLS: dict[str, tuple[str, ...]] = {"3class": PROTOCOL_CLASSES["3class"]}

#: Emotion folder for each code in clip names.
CODES = {"ne": "negative", "po": "positive", "sur": "surprise"}

SUBJECT_DIR = re.compile(r"s(\d+)")
CLIP_DIR = re.compile(r"s(\d+)_([a-z]+)_(\d+)")
FRAME = re.compile(r"image(\d+)\.bmp")


def smic_subject_id(number: int | str) -> str:
    """``1``, ``'1'``, ``'s1'`` or ``'s01'`` -> ``'s01'``; other text comes back unchanged."""
    match = re.fullmatch(r"s?(\d+)", str(number).strip())
    return f"s{int(match.group(1)):02d}" if match else str(number)


def smic_clip_id(name: str) -> str:
    """A clip folder name to its ground-truth id: ``'s1_ne_1'`` -> ``'s01_ne_01'``.

    Names that are not ``s<N>_<code>_<M>`` come back unchanged.
    """
    match = CLIP_DIR.fullmatch(name)
    if not match:
        return name
    subject, code, number = match.groups()
    return f"{smic_subject_id(subject)}_{code}_{int(number):02d}"


def find_hs(root: Path) -> Path:
    """The folder holding the ``s<N>`` subject folders: ``root/HS`` or ``root`` itself."""
    root = require_dir(root, "SMIC")
    if (root / "HS").is_dir():
        return root / "HS"
    if any(SUBJECT_DIR.fullmatch(p.name) for p in root.iterdir() if p.is_dir()):
        return root
    raise DatasetFormatError(root, ["no HS/ folder and no s<N>/ subject folders here: pass the "
                                    "folder holding HS/ (e.g. SMIC_all_raw/) or HS/ itself"])


def _number_sorted(paths: list[Path], pattern: re.Pattern[str]) -> list[Path]:
    # Numeric order, so s2 comes before s10 and clip _2 before _10.
    def key(p: Path) -> tuple[int, ...]:
        match = pattern.fullmatch(p.name)
        return tuple(int(g) for g in match.groups() if g.isdigit()) if match else (1 << 30,)
    return sorted(paths, key=key)


def scan_smic(hs: Path) -> tuple[list[Sample], list[str], set[str]]:
    """All micro-expression clips under ``hs`` (the ``HS`` folder), and the problems found.

    Clips come by subject number, then negative, positive, surprise, then clip number (the
    ground truth's order). Problems: unexpected folders, clip folders without frames or with
    gaps in the numbering (each a :class:`~fervid.samples.ClipProblem`), ids that clash
    once padded.

    Returns
    -------
    samples, problems, broken : list of Sample, list of str, set of str
        ``broken`` holds the clip ids of folders that have a problem, so callers looking for a
        clip can tell "broken" from "absent".
    """
    labels = {name: i for i, name in enumerate(SMIC_PROTOCOLS["3class"])}
    samples: list[Sample] = []
    problems: list[str] = []
    broken: set[str] = set()
    subjects = [p for p in hs.iterdir() if p.is_dir() and SUBJECT_DIR.fullmatch(p.name)]
    for subject_dir in _number_sorted(subjects, SUBJECT_DIR):
        subject = smic_subject_id(subject_dir.name[1:])
        micro = subject_dir / "micro"
        if not micro.is_dir():
            problems.append(f"{subject_dir.name}: no micro/ folder")
            continue
        for unknown in sorted(p.name for p in micro.iterdir()
                              if p.is_dir() and p.name not in labels):
            problems.append(f"{subject_dir.name}/micro/{unknown}: not an emotion folder "
                            f"({', '.join(labels)})")
        for emotion in labels:
            folder = micro / emotion
            clips = [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
            for clip_dir in _number_sorted(clips, CLIP_DIR):
                where = f"{subject_dir.name}/micro/{emotion}/{clip_dir.name}"
                match = CLIP_DIR.fullmatch(clip_dir.name)
                if not match or smic_subject_id(match.group(1)) != subject:
                    problems.append(f"{where}: clip folder name is not "
                                    f"{subject_dir.name}_<ne|po|sur>_<number>")
                    continue
                if CODES.get(match.group(2)) != emotion:
                    warnings.warn(f"SMIC {where}: the name's code {match.group(2)!r} disagrees "
                                  f"with its folder; labelled {emotion}", AnnotationWarning,
                                  stacklevel=3)
                index = index_frames(clip_dir, FRAME) or {}
                onset, offset = (min(index), max(index)) if index else (0, -1)
                gaps = [n for n in range(onset, offset + 1) if n not in index]
                if not index or gaps:
                    clip = smic_clip_id(clip_dir.name)
                    broken.add(clip)
                    problems.append(ClipProblem(
                        f"{where}: no image<N>.bmp frames" if not index else
                        f"{where}: frame numbers have gaps (image<N>.bmp for N in "
                        f"{describe_numbers(gaps)})", DATASET, subject, clip))
                    continue
                frames = tuple(index[n] for n in range(onset, offset + 1))
                samples.append(Sample(DATASET, subject, smic_clip_id(clip_dir.name), onset,
                                      (onset + offset) // 2, offset, emotion, labels[emotion],
                                      frames))
    seen: set[str] = set()
    for s in samples:
        if s.clip in seen:
            problems.append(f"clip {s.clip} appears twice (padded and unpadded folders?)")
        seen.add(s.clip)
    if not samples and not problems:
        problems.append("no clip folders under s<N>/micro/{negative,positive,surprise}/")
    return samples, problems, broken


def read_smic(root: Path, protocol: str = "3class", apex_sheet: Path | None = None, *,
              skip_missing: bool = False) -> SampleTable:
    """Read SMIC-HS as shipped (raw ``SMIC_all_raw`` or ``SMIC_all_cropped``, same layout).

    Parameters
    ----------
    root : Path
        The folder holding ``HS/``, or ``HS/`` itself.
    protocol : {'3class'}
        Negative, positive, surprise, from the folder names (164 clips, 16 subjects).
    apex_sheet : Path, optional
        A third party's apex sheet (``smic_apex_third_party.xlsx``): each clip's apex from it
        (see :func:`apply_apex_sheet`). None: the middle frame.
    skip_missing : bool
        Leave out the clip folders without frames or with gaps in their numbering, listed in
        ``skipped``.

    Returns
    -------
    SampleTable
        Every clip labelled; onset/offset the first/last frame number in its folder, apex the
        middle one or the sheet's.

    Raises
    ------
    OptionError
        Unknown protocol (a ``ValueError``).
    DatasetFormatError
        Naming the HS folder and listing every problem found; or naming the apex sheet.
    """
    check_protocol(protocol, SMIC_PROTOCOLS, "smic")
    hs = find_hs(root)
    samples, problems, _ = scan_smic(hs)
    table = release_table(hs, samples, problems, SMIC_PROTOCOLS[protocol], protocol,
                          skip_missing=skip_missing)
    if apex_sheet is not None:
        table.samples = apply_apex_sheet(table.samples, apex_sheet)
    return table


#: The third-party apex sheet's columns the reader needs.
APEX_SHEET = "smic_apex_third_party.xlsx"
APEX_COLUMNS = ("clip", "onset_frame", "apex_frame", "offset_frame", "label")


def read_smic_apex_sheet(path: Path) -> pd.DataFrame:
    """The third-party SMIC-HS apex sheet as tidy rows.

    Returns
    -------
    pandas.DataFrame
        ``excel_row, clip`` (padded, ``'s01_ne_01'``), ``onset, apex, offset`` (nullable ints;
        the offset is blank in seven rows), ``label`` (0 negative, 1 positive, 2 surprise, as
        written), one row per clip in sheet order.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: missing columns, blank clips, non-integer frames or labels, an apex
        outside its onset..offset, a clip listed twice.
    """
    path = Path(path)
    sheet = read_sheet(path, list(APEX_COLUMNS))
    out = pd.DataFrame({"excel_row": sheet["excel_row"],
                        "clip": clean_text(sheet["clip"]).map(smic_clip_id, na_action="ignore")})
    problems = [f"row {r}: clip is blank" for r in out.excel_row[out["clip"].isna()]]
    for column, name in (("onset_frame", "onset"), ("apex_frame", "apex"),
                         ("offset_frame", "offset"), ("label", "label")):
        out[name] = as_ints(sheet[column])
        given = sheet[column].notna() if name == "offset" else slice(None)
        problems += bad_values(sheet[given], column, out[name][given],
                               "a label" if name == "label" else "a frame number")
    if problems:
        raise DatasetFormatError(path, problems)
    order = (out.onset <= out.apex) & (out.apex <= out.offset.fillna(out.apex))
    problems += [f"row {r.excel_row}: {r.clip} needs onset_frame <= apex_frame <= offset_frame, "
                 f"got {r.onset}, {r.apex}, {r.offset}" for r in out[~order].itertuples()]
    problems += [f"row {r.excel_row}: {r.clip} is listed twice"
                 for r in out[out.duplicated("clip")].itertuples()]
    if problems:
        raise DatasetFormatError(path, problems)
    return out.reset_index(drop=True)


def apply_apex_sheet(samples: list[Sample], path: Path) -> list[Sample]:
    """``samples`` with their apexes from the third-party sheet at ``path``.

    The sheet's onset and offset are checked against each clip folder's first and last frames,
    its label against the folder's class: disagreements are reported in one
    :class:`AnnotationWarning` (the folder's frames and class are kept), as are sheet rows of
    clips not in the release.

    Raises
    ------
    DatasetFormatError
        Naming the sheet: its own problems (:func:`read_smic_apex_sheet`), clips of the release
        it does not list, apexes outside their clip's frames.
    """
    path = Path(path)
    rows = read_smic_apex_sheet(path).set_index("clip")
    problems: list[str] = []
    differ: list[str] = []
    out: list[Sample] = []
    for s in samples:
        if s.clip not in rows.index:
            problems.append(f"clip {s.clip} of the release is not in the sheet")
            continue
        r = rows.loc[s.clip]
        if not s.onset <= r.apex <= s.offset:
            problems.append(f"row {r.excel_row}: {s.clip} apex_frame {r.apex} is outside its "
                            f"folder's frames {s.onset}..{s.offset}")
            continue
        if r.onset != s.onset or (pd.notna(r.offset) and r.offset != s.offset):
            differ.append(f"{s.clip} onset..offset {r.onset}..{r.offset} (folder "
                          f"{s.onset}..{s.offset})")
        if r.label != s.label:
            differ.append(f"{s.clip} label {r.label} (folder {s.emotion})")
        out.append(replace(s, apex=int(r.apex)))
    if problems:
        raise DatasetFormatError(path, problems)
    absent = sorted(set(rows.index) - {s.clip for s in samples})
    notes = differ + [f"{c} (not in the release)" for c in absent]
    if notes:
        warnings.warn(f"SMIC apex sheet {path.name}: {len(notes)} disagreement(s) with the "
                      f"release, folders kept: {'; '.join(notes[:5])}"
                      + (" ..." if len(notes) > 5 else ""), AnnotationWarning, stacklevel=3)
    return out


#: SMIC-HS-E sheet column -> tidy column; the first five are required.
HS_E_COLUMNS = {"Filename": "clip", "Emotion": "emotion", "OnsetF": "onset", "OffsetF": "offset",
                "FirstF": "video_first", "LastF": "video_last", "Onset2F": "onset2",
                "Offset2F": "offset2", "Onset3F": "onset3", "Offset3F": "offset3"}
HS_E_REQUIRED = 6


def read_smic_hs_e_sheet(path: Path) -> pd.DataFrame:
    """The SMIC-HS-E long-video annotation (``SMIC-HS-E_annotation.xlsx``, sheet ``HS``).

    Frame numbers are absolute in the long videos. Several cells are formulas (``OffsetF =
    OnsetF + TotalMF1 - 1``, ``FirstF``, ``LastF``); their cached values are read (pandas opens
    the workbook with ``data_only=True``). A formula without a cached value (a file saved by a
    tool that does not compute formulas) reads as blank and is reported.

    Returns
    -------
    pandas.DataFrame
        ``subject`` (``'s01'``), ``clip`` (``'s01_ne_01'``), ``emotion`` (lower case), ``onset``,
        ``offset``, ``video_first``, ``video_last`` and the optional second and third intervals
        ``onset2, offset2, onset3, offset3`` (nullable ints), one row per clip in sheet order.
        The released sheet has 157 clips; its third-interval columns hold stale formula values
        for some rows (e.g. ``onset3`` before ``video_first``), kept as they are.

    Raises
    ------
    DatasetFormatError
        Naming the sheet; missing columns, blank or non-integer required values.
    """
    path = Path(path)
    required = list(HS_E_COLUMNS)[:HS_E_REQUIRED]
    sheet = read_sheet(path, required, sheet_name="HS")
    out = pd.DataFrame({"clip": clean_text(sheet["Filename"]).map(smic_clip_id,
                                                                  na_action="ignore")})
    out["subject"] = out["clip"].str.split("_").str[0].astype("string")
    out["emotion"] = clean_text(sheet["Emotion"]).str.lower()
    problems = [f"row {r}: {c} is blank" for c in ("Filename", "Emotion")
                for r in sheet.loc[sheet[c].isna(), "excel_row"]]
    for column, name in list(HS_E_COLUMNS.items())[2:]:
        if column not in sheet:
            out[name] = pd.array([pd.NA] * len(sheet), dtype="Int64")
            continue
        out[name] = as_ints(sheet[column])
        if column in required:
            problems += bad_values(sheet, column, out[name], "a frame number",
                                   " (a formula cell without a cached value reads as blank)")
        else:
            given = sheet[column].notna()
            problems += bad_values(sheet[given], column, out[name][given], "a frame number")
    if problems:
        raise DatasetFormatError(path, problems)
    columns = ["subject", "clip", "emotion", "onset", "offset", "video_first", "video_last",
               "onset2", "offset2", "onset3", "offset3"]
    return out[columns].reset_index(drop=True)


def find_smic_clips(root: Path, out_dir: Path) -> list[ClipJob | None]:
    """The micro clips :func:`read_smic` loads, ``[HS/]s<N>/micro/<emotion>/<clip>/image{N}.bmp``,
    for ``fervid prepare faces`` (names kept)."""
    hs = find_hs(root)
    return [folder_job(root, out_dir, clip, FRAME, fps=FPS)
            for s in subdirs(hs, r"s\d+") for e in SMIC_PROTOCOLS["3class"]
            if (s / "micro" / e).is_dir() for clip in subdirs(s / "micro" / e)
            if CLIP_DIR.fullmatch(clip.name)]


def _read(request: ReadRequest) -> SampleTable:
    return read_smic(request.root, request.protocol, request.sheet,
                     skip_missing=request.skip_missing)


register_dataset(DatasetSpec(
    name=DATASET, subject="s01", layouts=("raw", "cropped"), protocols=("loso",), read=_read,
    classes=SMIC_PROTOCOLS, sheet=APEX_SHEET, sheet_optional=True, labels_from="its folders",
    fps=FPS,
    prepare=PrepareHook(find_smic_clips, "s<N>/micro/<emotion>/<clip>/image{N}.bmp")))
