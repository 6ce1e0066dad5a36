"""What made a run: fervid's version and commit, the library versions, the machine, the
precision and the command line, recorded in ``run.json`` and in ``predictions.json``.

A run directory keeps a list of *segments* under ``run.json``'s ``provenance``: the first is
written when the run is created; a resume on another machine or with other versions (any of
:data:`COMPARED` changed) appends one, marked ``resumed``. None of this enters the config
fingerprint, so a run started elsewhere still resumes here. ``run.json`` files written before
provenance was recorded have no ``provenance`` and read as ``[]``.

Nothing here fails a run: a value that cannot be found (no git checkout, a library not
installed) is recorded as null.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Library versions recorded, by record key: the distributions that provide each (the first
#: installed one counts; none: OpenCV, read from ``cv2.__version__``). Read from the package
#: metadata, so that dlib, slow to import, is not imported.
LIBRARIES = {"torch": ("torch",), "torchvision": ("torchvision",), "numpy": ("numpy",),
             "opencv": (), "dlib": ("dlib", "dlib-bin")}
#: Keys of a record that tell a version of the code and its libraries.
VERSION_KEYS = ("fervid", "git_commit", "git_dirty", "python", "torch", "torchvision", "numpy",
                "opencv", "dlib")
#: Keys of a record that tell the machine.
MACHINE_KEYS = ("cpu", "cpu_cores", "cpu_bf16", "gpu", "gpu_count")
#: A resume that changes one of these is recorded as a new segment (the command line, the
#: time and the precision, which the fingerprint already fixes, do not count).
COMPARED = VERSION_KEYS + MACHINE_KEYS
#: Seconds a git call may take before the commit is recorded as unknown.
GIT_TIMEOUT_S = 5.0
#: The package's folder, where git is asked for the commit.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class ProvenanceWarning(UserWarning):
    """Runs combined into one figure were made by different fervid versions or machines."""


def fervid_version() -> str:
    """The installed fervid's version (the package metadata, as ``fervid.__version__``);
    ``0+unknown`` when not installed."""
    try:
        return version("fervid")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True,
                             timeout=GIT_TIMEOUT_S, check=True,
                             # a status must never take the index lock from a concurrent git
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout fervid runs from; ``(None, None)`` when it is
    not run from one (an installed package), git is absent or slower than
    :data:`GIT_TIMEOUT_S`. ``dirty``: tracked files differ from the commit (untracked files,
    such as run directories, do not count)."""
    head = _git("rev-parse", "--show-toplevel", "HEAD")
    lines = (head or "").split()
    if len(lines) != 2:
        return None, None
    top, commit = Path(lines[0]), lines[1]
    # Only fervid's own checkout: a virtual environment inside some other repository's tree
    # would otherwise report that repository's commit.
    if not PACKAGE_DIR.is_relative_to(top / "src") or not (top / "pyproject.toml").exists():
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status.strip())


def version_line() -> str:
    """``fervid <version> (commit <sha>[, dirty])``, what ``fervid --version`` prints."""
    commit, dirty = git_state()
    if commit is None:
        return f"fervid {fervid_version()}"
    return f"fervid {fervid_version()} (commit {commit[:12]}{', dirty' if dirty else ''})"


def _distribution_version(names: Sequence[str]) -> str | None:
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def opencv_version() -> str | None:
    """``cv2.__version__``, or None when OpenCV cannot be imported."""
    try:
        import cv2
    except Exception:  # a broken OpenCV install must not stop a run
        return None
    return str(cv2.__version__)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    from fervid.training.setup import CPUINFO

    try:
        for line in CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def gpus() -> tuple[str | None, int]:
    """The accelerator's name (several models joined by ``+``) and device count."""
    import torch

    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        try:
            names = sorted({torch.cuda.get_device_name(i) for i in range(count)})
        except RuntimeError:  # a driver that lists devices it cannot open
            names = ["unknown CUDA device"]
        return " + ".join(names), count
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "Apple MPS", 1
    return None, 0


def collect(precision: str | None = None, argv: Sequence[str] | None = None) -> dict:
    """This process's provenance record (a JSON-ready dict).

    Parameters
    ----------
    precision
        The precision the run computes in (``32-true``, ``bf16-mixed``...), as resolved;
        None where it has none (an ensemble averages probabilities).
    argv
        The command line; default ``sys.argv``.
    """
    from fervid.training.setup import cpu_has_bf16

    commit, dirty = git_state()
    gpu, gpu_count = gpus()
    return {
        "fervid": fervid_version(), "git_commit": commit, "git_dirty": dirty,
        "python": platform.python_version(),
        **{key: _distribution_version(names) if names else opencv_version()
           for key, names in LIBRARIES.items()},
        "cpu": cpu_model(), "cpu_cores": os.cpu_count(),
        # the same test that decides `run.precision: auto`
        "cpu_bf16": cpu_has_bf16(unknown=False),
        "gpu": gpu, "gpu_count": gpu_count,
        "precision": precision,
        "argv": list(sys.argv if argv is None else argv),
        "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def segments(meta: Mapping) -> list[dict]:
    """The provenance segments of a ``run.json`` mapping, oldest first (``[]`` when none was
    recorded; a single record is read as one segment)."""
    value = meta.get("provenance")
    if isinstance(value, Mapping):
        return [dict(value)]
    if isinstance(value, list):
        return [dict(v) for v in value if isinstance(v, Mapping)]
    return []


def changes(before: Mapping, after: Mapping) -> list[str]:
    """``key old → new`` for each of :data:`COMPARED` that differs."""
    return [f"{key} {_text(before.get(key))} → {_text(after.get(key))}" for key in COMPARED
            if before.get(key) != after.get(key)]


def resumed(meta: Mapping, record: dict) -> tuple[list[dict], str | None]:
    """The segments ``run.json`` should hold after a resume by ``record``, and the one-line
    notice to print (None when nothing changed or nothing was recorded before).

    A run recorded with no provenance gains ``record`` as its first segment, marked
    ``resumed`` (what made its earlier part is unknown), without a notice.
    """
    old = segments(meta)
    if old and not changes(old[-1], record):
        return old, None
    notice = None
    if old:
        notice = ("notice: resumed on a different machine/version: "
                  + "; ".join(changes(old[-1], record)))
    return [*old, {**record, "resumed": True}], notice


def _text(value) -> str:
    return "none" if value is None else str(value)


def summary(records: Sequence[Mapping]) -> str:
    """One line about the segments ``records`` (first, then what each resume changed):
    ``fervid 0.1.0 (commit abc, dirty), torch 2.1, CPU X (2 cores, native bf16), no GPU,
    precision 32-true``."""
    if not records:
        return "provenance: not recorded (a run of an older fervid)"
    first = records[0]
    commit = first.get("git_commit")
    code = f"fervid {_text(first.get('fervid'))}"
    if commit:
        code += f" (commit {str(commit)[:12]}{', dirty' if first.get('git_dirty') else ''})"
    bf16 = ", native bf16" if first.get("cpu_bf16") else ""
    gpu = (f"GPU {first['gpu']} x{first.get('gpu_count', 1)}" if first.get("gpu")
           else "no GPU")
    line = (f"provenance: {code}, torch {_text(first.get('torch'))}, CPU "
            f"{_text(first.get('cpu'))} ({_text(first.get('cpu_cores'))} cores{bf16}), {gpu}, "
            f"precision {_text(first.get('precision'))}")
    for before, after in itertools.pairwise(records):
        line += "; resumed with " + ", ".join(changes(before, after) or ["the same setup"])
    return line


def mixed(runs: Mapping[str, Sequence[Mapping]]) -> str | None:
    """One line naming what differs between the provenance of ``runs`` (name → segments)
    among :data:`COMPARED`, e.g. ``fervid 0.1.0 (a, b) / 0.2.0 (c)``; None when they agree.
    Runs that recorded none are left out of the comparison."""
    differing = []
    for key in COMPARED:
        where: dict[str, list[str]] = {}
        for name, records in runs.items():
            for value in dict.fromkeys(_text(r.get(key)) for r in records):
                where.setdefault(value, []).append(name)
        if len(where) > 1:
            differing.append(f"{key} " + " / ".join(f"{value} ({_names(names)})"
                                                    for value, names in where.items()))
    if not differing:
        return None
    return ("runs made by different fervid versions or machines: " + "; ".join(differing))


def _names(names: Sequence[str], shown: int = 3) -> str:
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def describe(record: Mapping) -> dict[str, str]:
    """A record as ``label → text``, in the order a table shows them."""
    commit = record.get("git_commit")
    code = _text(record.get("fervid"))
    code += (f" (commit {commit}{', dirty' if record.get('git_dirty') else ''})" if commit
             else " (not run from a git checkout)")
    bf16 = {True: "yes", False: "no"}.get(record.get("cpu_bf16"), "unknown")
    argv = record.get("argv") or []
    return {
        "fervid": code,
        **{name: _text(record.get(key)) for name, key in (
            ("Python", "python"), ("torch", "torch"), ("torchvision", "torchvision"),
            ("numpy", "numpy"), ("OpenCV", "opencv"), ("dlib", "dlib"))},
        "CPU": f"{_text(record.get('cpu'))} ({_text(record.get('cpu_cores'))} cores, native "
               f"bfloat16: {bf16})",
        "GPU": (f"{record['gpu']} x{record.get('gpu_count', 1)}" if record.get("gpu")
                else "none"),
        "precision": _text(record.get("precision")),
        "command": shlex.join(str(a) for a in argv) if argv else "none",
        "recorded": _text(record.get("recorded")),
    }
