"""The report's view of one run directory, for every protocol, and what its readers share.

:class:`RunData` is what the HTML report shows of a run, LOSO or DFEW k-fold alike. Each
protocol's reader builds it from a :class:`RunHeader` (``run.json`` and ``config.yaml``,
read by :func:`read_header`): :mod:`.loso_data` for LOSO runs, :mod:`.kfold_data` for DFEW
k-fold runs; :func:`fervid.report.html.load.load_run` picks one by :func:`protocol_of`.
Every run directory follows :mod:`fervid.runs.store`; this module reads only the files every
protocol has (``run.json``, ``config.yaml``, ``metrics.json``, ``train_logs/*.csv``); of the
dataset readers it takes only their names.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import yaml

from fervid.config import PLACEMENT_FIELDS
from fervid.datasets import casme2, megc2019, samm, smic
from fervid.errors import FervidError
from fervid.runs.provenance import segments
from fervid.synth.casme2_like import SYNTHME_MARKER

#: ``run.json``'s ``protocol`` of LOSO runs; older LOSO runs name none.
LOSO = "loso"
#: ``run.json``'s ``protocol`` of DFEW 5-fold runs.
DFEW_5FOLD = "dfew_5fold"
#: The published-results protocol (``published_results.yaml``) of a LOSO run, by the datasets
#: its folds come from and its number of classes.
_LOSO_BENCHMARKS = {
    (frozenset(megc2019.DATASETS), 3): "megc2019_3class_loso",
    (frozenset({casme2.DATASET}), 5): "casme2_5class_loso",
    (frozenset({samm.DATASET}), 5): "samm_5class_loso",
    (frozenset({smic.DATASET}), 3): "smic_3class_loso",
}


class RunReportError(FervidError, ValueError):
    """A run directory cannot be reported on; the message names the path and the problem."""


@dataclass(frozen=True)
class RunHeader:
    """What every run directory holds, read before its protocol's reader runs: ``run.json``
    (``meta``, with its ``classes``) and ``config.yaml`` (its text and parsed mapping)."""

    run_dir: Path
    meta: dict
    config: dict
    config_text: str

    @property
    def protocol(self) -> str:
        return protocol_of(self.meta)


def protocol_of(meta: dict) -> str:
    """``run.json``'s ``protocol``; LOSO for runs written before it was recorded."""
    return str(meta.get("protocol") or LOSO)


def read_header(run_dir: Path) -> RunHeader:
    """``run.json`` and ``config.yaml`` of ``run_dir``; raises :class:`RunReportError` when the
    folder is missing or is not a fervid run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunReportError(f"{run_dir}: no such run directory")
    meta = read_json(run_dir / "run.json", required=True)
    if "classes" not in meta:
        raise RunReportError(f"{run_dir / 'run.json'}: has no 'classes' (not a fervid run?)")
    config_text, config = read_config(run_dir)
    return RunHeader(run_dir=run_dir, meta=meta, config=config, config_text=config_text)


@dataclass(frozen=True)
class Provenance:
    """A value about a run and where it comes from (``recorded`` by the run or read at
    ``report time``)."""

    value: str
    source: str


@dataclass(frozen=True)
class RunData:
    """Everything the report shows of one run, of any protocol (``protocol``: ``loso`` or
    ``dfew_5fold``).

    ``predictions`` has columns ``dataset, subject, clip, label, pred, fold`` (plus the
    ``p_<class>`` probabilities when read from the fold files); ``per_subject`` has
    ``fold, dataset, subject, n, acc, uf1, uar``; ``folds`` lists every fold of the run
    (``fold, dataset, subject``), finished or not; each of ``train_logs`` has ``epoch, loss,
    train_acc`` and stands for the folds named in its ``attrs["name"]``. K-fold runs have
    no subjects (``per_subject`` is empty) and a ``per_fold`` table instead (see
    :func:`fervid.report.html.kfold_data.per_fold_table`); ``wall`` and ``gallery`` are LOSO's
    only.
    """

    run_dir: Path
    protocol: str
    meta: dict
    config: dict
    config_text: str
    metrics: dict
    predictions: pd.DataFrame
    per_subject: pd.DataFrame
    folds: pd.DataFrame
    train_logs: list[pd.DataFrame] = field(default_factory=list)
    wall: list[dict] = field(default_factory=list)
    gallery: list[tuple[Path, str]] = field(default_factory=list)
    per_fold: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])

    @property
    def label(self) -> str:
        return f"{self.run_dir.name} ({self.meta.get('name')}, seed {self.meta.get('seed')})"

    @property
    def benchmark(self) -> str | None:
        """The published-results protocol this run follows (``published_results.yaml``)."""
        n_classes = len(self.classes)
        if self.protocol == DFEW_5FOLD:
            return DFEW_5FOLD if n_classes == 7 else None
        if self.protocol != LOSO or self.generated_data:
            return None
        datasets = frozenset(self.folds["dataset"].unique())  # a shard's too: all folds count
        return _LOSO_BENCHMARKS.get((datasets, n_classes))

    @property
    def generated_data(self) -> bool:
        """True for runs on SynthME (its tree carries a marker file): no published figure
        applies, although it is read as CASME II."""
        root = Path(str(self.meta.get("data_root") or "."))
        return any((d / SYNTHME_MARKER).exists() for d in (root, root.parent))

    def config_without_seed(self) -> dict:
        """The config minus its seed and the fields the fingerprint leaves out
        (:data:`fervid.config.PLACEMENT_FIELDS`): equal for seeds of one config."""
        cfg = json.loads(json.dumps(self.config))
        cfg.pop("seed", None)
        for key in PLACEMENT_FIELDS:
            cfg.get("run", {}).pop(key, None)
        return cfg

    def wall_seconds(self) -> float:
        """Wall time of the run's invocations (``wall/*.json``), else the summed ``wall_s``
        of its training logs (k-fold runs: training epochs only)."""
        if self.wall:
            return float(sum(w.get("wall_s", 0.0) for w in self.wall))
        return float(sum(log["wall_s"].sum() for log in self.train_logs if "wall_s" in log))

    @property
    def provenance(self) -> list[dict]:
        """``run.json``'s provenance segments (:mod:`fervid.runs.provenance`); ``[]`` for
        runs made before it was recorded."""
        return segments(self.meta)

    def git_commit(self) -> Provenance:
        """The commit, for runs that recorded no provenance: read at report time."""
        try:
            out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"],
                                 cwd=Path(__file__).resolve().parent, capture_output=True,
                                 text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return Provenance("unknown", "not recorded; no git checkout at report time")
        return Provenance(out.stdout.strip(), "at report time (not recorded by the run)")

    def versions(self) -> dict[str, Provenance]:
        """fervid's and torch's versions, for runs that recorded no provenance."""
        found = {}
        for package in ("fervid", "torch"):
            try:
                found[package] = Provenance(version(package), "at report time")
            except PackageNotFoundError:
                found[package] = Provenance("unknown", "not installed")
        return found

    def device(self) -> Provenance:
        """What the config and wall records tell of the device, for runs that recorded no
        provenance."""
        run = self.config.get("run", {})
        hosts = sorted({str(w["host"]) for w in self.wall if w.get("host")})
        text = (f"accelerator {run.get('accelerator', '?')}, devices {run.get('devices', '?')}, "
                f"precision {run.get('precision', '?')}, "
                f"workers {run.get('workers', run.get('num_workers', '?'))}")
        if hosts:
            text += "; hosts " + ", ".join(hosts)
        return Provenance(text, "from config.yaml and wall/*.json")


def read_config(run_dir: Path) -> tuple[str, dict]:
    """The text of ``config.yaml`` (empty if absent) and its parsed mapping."""
    config_path = run_dir / "config.yaml"
    try:
        config_text = config_path.read_text(encoding="utf-8") if config_path.exists() else ""
        config = yaml.safe_load(config_text) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RunReportError(f"{config_path}: not valid YAML ({reason})") from err
    if not isinstance(config, dict):
        raise RunReportError(f"{config_path}: expected a mapping, found a "
                             f"{type(config).__name__}")
    return config_text, config


def read_json(path: Path, *, required: bool) -> dict:
    """The mapping in ``path``; ``{}`` when it is absent and not ``required``."""
    if not path.exists():
        if required:
            raise RunReportError(f"{path.parent}: not a fervid run directory (no {path.name})")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunReportError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise RunReportError(f"{path}: expected a JSON object, found a {type(data).__name__}")
    return data


def read_train_logs(run_dir: Path) -> list[pd.DataFrame]:
    """Every non-empty ``train_logs/*.csv`` (and older runs' ``train_log*.csv``) with ``epoch,
    loss, train_acc``; each log's ``attrs["name"]`` is its file's stem (``fold_001``)."""
    paths = sorted((run_dir / "train_logs").glob("*.csv")) + sorted(run_dir.glob("train_log*.csv"))
    logs = []
    for path in paths:
        try:
            log = pd.read_csv(path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise RunReportError(f"{path}: unreadable training log ({err})") from err
        missing = {"epoch", "loss", "train_acc"} - set(log.columns)
        if missing:
            raise RunReportError(f"{path}: training log lacks columns {sorted(missing)}")
        if len(log):
            log.attrs["name"] = path.stem
            logs.append(log)
    return logs


#: A fold file's or training log's stem: ``fold_3`` (older k-fold runs) or ``fold_003``.
_FOLD_STEM = re.compile(r"fold_(\d+)")


def fold_number(stem: str) -> int | None:
    """The fold number a file stem names (``fold_003`` and ``fold_3`` → 3), else None."""
    match = _FOLD_STEM.fullmatch(stem)
    return int(match.group(1)) if match else None
