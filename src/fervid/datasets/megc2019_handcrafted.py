"""Hand-crafted features of the MEGC2019 composite: LBP-TOP and HOOF, one vector per sample.

These are MEGC2019's baseline features (LBP-TOP, HOOF), as released with the ACII 2019
apex-time network code: the 442 composite samples (SMIC-HS, CASME II, SAMM; three classes),
each under eight settings. Layout of the folder (``root``)::

    root/lbptop_features.zip       LBPTOP_TIM10_333_4/Features/<name>.mat   variable Histogram
                                   LBPTOP_TIM10_333_8/..., LBPTOP_TIM64_333_4/...,
                                   LBPTOP_TIM64_333_8/...                   (3 x 59 each)
    root/hoof_features.zip         HOOF_TIM10_4/Features/<name>.mat         variable HOOF
                                   HOOF_TIM10_8/..., HOOF_TIM64_4/..., HOOF_TIM64_8/...
                                                                            (4 or 8 x 9 or 64)
    root/Apex_Cropped_images.txt   <name>-<apex frame>.<ext> <label>        one line a sample

``TIM10``/``TIM64``: the clip temporally interpolated (TIM) to 10 or 64 frames; the other
numbers are the release's own parameter names (HOOF ``_4``/``_8`` is the row count:
``HOOF_TIM64_8`` is 8 x 64, ``HOOF_TIM10_4`` 4 x 9; every LBP-TOP setting is 3 x 59).

``<name>`` is ``<dataset>-<subject>-<clip>``, e.g. ``casme2-sub01-EP02_01f``,
``samm-11-011_1_4``, ``smic-s03-s03_ne_10``; in the label file it is followed by the apex image
(``-img59.jpg``, ``-011_01234.jpg``, ``-image559757.bmp``) and the label (0 negative,
1 positive, 2 surprise), lines separated by CRLF. The clip is everything between the subject
and the last ``-``, so a clip name could hold ``-`` itself.

Ids are those of :func:`fervid.datasets.read_megc2019` and ``megc2019_flow/index.csv``: SAMM
subjects, unpadded in the file names (``11``), are padded to three digits (``011``); SMIC ids
are padded (``s3`` -> ``s03``) should a file have them unpadded. A feature file and a label line
are matched on those ids. The apex is the trailing number of the apex image's name
(``img59`` -> 59, ``011_01234`` -> 1234, ``image559757`` -> 559757), the dataset's own frame
number.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import scipy.io

from fervid.config import ConfigError
from fervid.datasets import casme2, samm, smic
from fervid.datasets.sheets import padded_number
from fervid.datasets.smic import smic_clip_id, smic_subject_id
from fervid.errors import library_reason
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError, Sample, SampleTable

#: Setting name -> (zip file in the root, MATLAB variable of each ``.mat``).
FEATURE_SETS: dict[str, tuple[str, str]] = {
    "LBPTOP_TIM10_333_4": ("lbptop_features.zip", "Histogram"),
    "LBPTOP_TIM10_333_8": ("lbptop_features.zip", "Histogram"),
    "LBPTOP_TIM64_333_4": ("lbptop_features.zip", "Histogram"),
    "LBPTOP_TIM64_333_8": ("lbptop_features.zip", "Histogram"),
    "HOOF_TIM10_4": ("hoof_features.zip", "HOOF"),
    "HOOF_TIM10_8": ("hoof_features.zip", "HOOF"),
    "HOOF_TIM64_4": ("hoof_features.zip", "HOOF"),
    "HOOF_TIM64_8": ("hoof_features.zip", "HOOF"),
}

#: The label file in the root: ``<dataset>-<subject>-<clip>-<apex frame>.<ext> <label>``.
LABEL_FILE = "Apex_Cropped_images.txt"

#: Per dataset: the subject id and the clip id fervid uses for the ones in the file names
#: (the same conversions as :func:`fervid.datasets.read_megc2019_gt`).
_SUBJECT_ID: dict[str, Callable[[str], str]] = {
    casme2.DATASET: padded_number(2, "sub"), samm.DATASET: padded_number(3),
    smic.DATASET: smic_subject_id}
_CLIP_ID: dict[str, Callable[[str], str]] = {casme2.DATASET: str, samm.DATASET: str,
                                             smic.DATASET: smic_clip_id}

#: ``<key>-<apex frame>.<ext> <label>``; the frame holds no ``-``, the key may.
_LINE = re.compile(r"(?P<key>.+)-(?P<frame>[^-/\\]+)\.[A-Za-z0-9]+")
_FRAME_NUMBER = re.compile(r"(\d+)$")
_LABEL = re.compile(r"[+-]?\d+")

#: Names listed in one problem at most.
_MAX_NAMED = 5

Key = tuple[str, str, str]  # (dataset, subject, clip), as fervid writes them


@dataclass(frozen=True, eq=False)
class HandcraftedSet:
    """One feature setting of the MEGC2019 hand-crafted features in memory.

    Attributes
    ----------
    features : numpy.ndarray
        ``(N, D)`` float32; row ``i`` is the ``.mat`` array of ``table[i]`` flattened row-major
        (for a ``(3, 59)`` LBP-TOP histogram, columns ``59*p .. 59*p+58`` are plane ``p``).
    table : SampleTable
        One sample per label line, in the label file's order; ``onset = apex = offset`` the
        apex frame, ``emotion`` the class name of ``label``, no frames.
    setting : str
        The key of :data:`FEATURE_SETS` that was read.
    """

    features: np.ndarray
    table: SampleTable
    setting: str

    def __len__(self) -> int:
        return len(self.table)


@dataclass(frozen=True)
class _Label:
    line: int
    name: str  # the key as written, ``<dataset>-<subject>-<clip>``
    apex: int
    label: int


def _parse_key(name: str) -> tuple[Key | None, str]:
    """``<dataset>-<subject>-<clip>`` to fervid's ids, or ``None`` and why not."""
    dataset, _, rest = name.partition("-")
    if dataset not in _SUBJECT_ID:
        return None, (f"unknown dataset {dataset!r} in {name!r} "
                      f"(expected one of {', '.join(_SUBJECT_ID)})")
    subject, _, clip = rest.partition("-")
    if not subject or not clip:
        return None, f"{name!r} is not <dataset>-<subject>-<clip>"
    return (dataset, _SUBJECT_ID[dataset](subject), _CLIP_ID[dataset](clip)), ""


def _named(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_MAX_NAMED])
    return shown + (f", ... ({len(items) - _MAX_NAMED} more)" if len(items) > _MAX_NAMED else "")


def _read_labels(path: Path, n_classes: int) -> tuple[dict[Key, _Label], list[str]]:
    """The label lines by key, in file order, and the problems found (``line N: ...``)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return {}, [f"not UTF-8 text ({err})"]
    except OSError as err:
        return {}, [f"cannot read: {err.strerror or err}"]
    labels: dict[Key, _Label] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        match = _LINE.fullmatch(fields[0]) if len(fields) == 2 else None
        frame = _FRAME_NUMBER.search(match["frame"]) if match else None
        if not frame:
            problems.append(f"line {number}: {line.strip()!r} is not "
                            "'<dataset>-<subject>-<clip>-<apex frame>.<ext> <label>'")
            continue
        key, why = _parse_key(match["key"])
        if key is None:
            problems.append(f"line {number}: {why}")
            continue
        if not _LABEL.fullmatch(fields[1]) or not 0 <= int(fields[1]) < n_classes:
            problems.append(f"line {number}: label {fields[1]!r} is not an integer in "
                            f"0..{n_classes - 1}")
            continue
        if key in labels:
            problems.append(f"line {number}: {match['key']} is listed twice (also line "
                            f"{labels[key].line})")
            continue
        labels[key] = _Label(number, match["key"], int(frame[1]), int(fields[1]))
    if not labels and not problems:
        problems.append("no label lines")
    return labels, problems


def _load_member(archive: zipfile.ZipFile, member: str, variable: str
                 ) -> tuple[np.ndarray | None, str]:
    """The variable of one ``.mat`` member, or ``None`` and why it cannot be used."""
    try:
        content = scipy.io.loadmat(io.BytesIO(archive.read(member)))
    except Exception as err:  # zipfile and scipy raise many types for a damaged member
        return None, f"{member}: cannot read as a MATLAB file ({library_reason(err)})"
    if variable not in content:
        found = [k for k in content if not k.startswith("__")]
        return None, (f"{member}: no variable {variable!r} "
                      f"(holds: {', '.join(found) or 'nothing'})")
    array = content[variable]
    if not isinstance(array, np.ndarray) or not (np.issubdtype(array.dtype, np.integer)
                                                  or np.issubdtype(array.dtype, np.floating)):
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        return None, f"{member}: {variable} is not a real numeric array ({kind})"
    if array.size == 0:
        return None, f"{member}: {variable} is empty"
    if not np.isfinite(array).all():
        return None, f"{member}: {variable} holds NaN or infinite values"
    return array, ""


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _read_features(path: Path, setting: str, variable: str
                   ) -> tuple[dict[Key, tuple[str, np.ndarray | None]] | None, list[str]]:
    """The ``.mat`` members of the setting's folder by key (``None`` for an unusable one), and
    the problems found; ``None`` when the archive or the folder cannot be used at all."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        return None, [f"not a zip archive ({err})"]
    except OSError as err:
        return None, [f"cannot read: {err.strerror or err}"]
    with archive:
        names = archive.namelist()
        prefix = f"{setting}/"
        members = [n for n in names if n.startswith(prefix) and not n.endswith("/")
                   and n.lower().endswith(".mat")
                   and not PurePosixPath(n).name.startswith("._")]
        if not members:
            if any(n.startswith(prefix) for n in names):
                return None, [f"folder {prefix} holds no .mat files"]
            tops = sorted({n.split("/", 1)[0] for n in names if n.split("/", 1)[0]})
            return None, [f"no folder {prefix} in the archive (top-level entries: "
                          f"{_named(tops) or 'none'})"]
        found: dict[Key, tuple[str, np.ndarray | None]] = {}
        problems: list[str] = []
        for member in sorted(members):
            key, why = _parse_key(PurePosixPath(member).stem)
            if key is None:
                problems.append(f"{member}: {why}")
                continue
            if key in found:
                problems.append(f"{member}: the same sample as {found[key][0]}")
                continue
            array, why = _load_member(archive, member, variable)
            if why:
                problems.append(why)
            found[key] = (member, array)
    shapes = Counter(a.shape for _, a in found.values() if a is not None)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = [m for m, a in found.values() if a is not None and a.shape != common]
        problems.append(f"{variable} differs in shape between members: "
                        + ", ".join(f"{_shape_text(s)} in {n}" for s, n in shapes.most_common())
                        + f"; odd ones: {_named(odd)}")
    return found, problems


def _raise(root: Path, issues: list[tuple[Path, str]]) -> None:
    """One :class:`DatasetFormatError`: naming the file when every problem is about one file,
    else the root with each problem prefixed by its file's name."""
    paths = list(dict.fromkeys(p for p, _ in issues))
    if len(paths) == 1:
        raise DatasetFormatError(paths[0], [text for _, text in issues])
    raise DatasetFormatError(root, [text if p == root else f"{p.name}: {text}"
                                    for p, text in issues])


def read_handcrafted(root: Path, setting: str,
                     classes: Sequence[str] = PROTOCOL_CLASSES["3class"]) -> HandcraftedSet:
    """Read one setting of MEGC2019's hand-crafted baseline features.

    Parameters
    ----------
    root : Path
        The folder holding ``lbptop_features.zip``, ``hoof_features.zip`` and
        ``Apex_Cropped_images.txt`` (see the module docstring); the members are read straight
        from the zip.
    setting : str
        A key of :data:`FEATURE_SETS` (``"LBPTOP_TIM10_333_4"``, ..., ``"HOOF_TIM64_8"``); only
        its zip needs to be present.
    classes : sequence of str
        Class names in label order; every label must index into it.

    Returns
    -------
    HandcraftedSet
        ``(N, D)`` float32 features and the sample table, both in the label file's order
        (for the real release, that of ``megc2019_flow/index.csv``).

    Raises
    ------
    ConfigError
        An unknown setting (the message names the choices), or empty or repeated classes.
    DatasetFormatError
        Listing every problem found: a missing root, zip or label file; a file that is not a
        zip; no folder for the setting in the zip; members that are unreadable, lack the
        variable, hold non-numeric or non-finite values, or differ in shape from the others;
        label lines that do not parse or whose label is outside ``0..len(classes)-1``; a
        sample listed twice (in the label file or the zip); feature files without a label
        line and label lines without a feature file. The error names the file when all
        problems concern one, else the root with each problem prefixed by its file.
    """
    if setting not in FEATURE_SETS:
        raise ConfigError(f"unknown hand-crafted feature setting {setting!r}; choices: "
                          f"{', '.join(FEATURE_SETS)}")
    classes = tuple(classes)
    if not classes or len(set(classes)) != len(classes):
        raise ConfigError(f"classes must be distinct names, at least one: {classes!r}")
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, ["not a folder" if root.exists()
                                        else "folder does not exist"])
    zip_name, variable = FEATURE_SETS[setting]
    zip_path, label_path = root / zip_name, root / LABEL_FILE

    issues: list[tuple[Path, str]] = []
    labels: dict[Key, _Label] | None = None
    if label_path.is_file():
        labels, problems = _read_labels(label_path, len(classes))
        issues += [(label_path, p) for p in problems]
    else:
        issues.append((label_path, "label file does not exist"))
    found: dict[Key, tuple[str, np.ndarray | None]] | None = None
    if zip_path.is_file():
        found, problems = _read_features(zip_path, setting, variable)
        issues += [(zip_path, p) for p in problems]
    else:
        issues.append((zip_path, "feature archive does not exist"))

    if labels and found:
        unlabelled = [member for key, (member, _) in found.items() if key not in labels]
        if unlabelled:
            issues.append((root, f"{len(unlabelled)} feature file(s) in {zip_name} without a "
                                 f"label line in {LABEL_FILE}: {_named(unlabelled)}"))
        missing = [f"line {lab.line} ({lab.name})" for key, lab in labels.items()
                   if key not in found]
        if missing:
            issues.append((root, f"{len(missing)} label line(s) in {LABEL_FILE} without a "
                                 f"feature file in {zip_name} {setting}/: {_named(missing)}"))
    if issues:
        _raise(root, issues)
    assert labels is not None and found is not None  # no issues: both were read

    samples, rows = [], []
    for key, lab in labels.items():
        samples.append(Sample(*key, onset=lab.apex, apex=lab.apex, offset=lab.apex,
                              emotion=classes[lab.label], label=lab.label))
        rows.append(np.asarray(found[key][1], dtype=np.float32).reshape(-1))
    protocol = next((k for k, v in PROTOCOL_CLASSES.items() if v == classes), "")
    return HandcraftedSet(np.stack(rows), SampleTable(samples, classes, protocol), setting)
