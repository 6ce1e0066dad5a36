"""What one run directory holds, read once for the HTML report.

``run.json``'s ``protocol`` picks the reader: DFEW k-fold runs (``dfew_5fold``) are read by
:mod:`.kfold_data`; every other run is a LOSO run. A LOSO run directory (see
:mod:`fervid.runs.store`) holds ``run.json``,
``config.yaml``, ``folds.csv``, ``folds/fold_NNN.csv``, ``metrics.json``,
``per_subject.csv``, ``train_logs/*.csv`` (or ``train_log*.csv``), ``wall/*.json`` and, for
SMA-STN runs, ``dssi_gallery/*.png`` with ``captions.json``. Only ``run.json`` and at least one
finished fold are required; missing results are scored in memory, nothing is written.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd
import yaml

from fervid.config import RunConfig
from fervid.metrics import score_predictions
from fervid.runs.store import RunDirError, RunStore
from fervid.synth.casme2_like import SYNTHME_MARKER

#: Data sets of the MEGC2019 composite, as fervid names them.
_MEGC2019_PARTS = frozenset({"smic", "casme2", "samm"})


class RunReportError(ValueError):
    """A run directory cannot be reported on; the message names the path and the problem."""


@dataclass(frozen=True)
class Provenance:
    """A value about a run and where it comes from (``recorded`` by the run or read at
    ``report time``)."""

    value: str
    source: str


@dataclass(frozen=True)
class RunData:
    """Everything the report shows of one run.

    ``predictions`` has columns ``dataset, subject, clip, label, pred, fold`` (plus the
    ``p_<class>`` probabilities when read from the fold files); ``per_subject`` has
    ``fold, dataset, subject, n, acc, uf1, uar``; ``folds`` lists every fold of the run
    (``fold, dataset, subject``), finished or not; each of ``train_logs`` has ``epoch, loss,
    train_acc`` and stands for the folds named in its ``attrs["name"]``. K-fold runs have
    no subjects (``per_subject`` is empty) and a ``per_fold`` table instead (see
    :func:`fervid.report.html.kfold_data.load_kfold_run`).
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
        if self.protocol == "dfew_5fold":
            return "dfew_5fold" if n_classes == 7 else None
        if self.protocol != "loso" or self.generated_data:
            return None
        datasets = set(self.folds["dataset"].unique())  # a shard's too: all folds count
        if datasets == _MEGC2019_PARTS and n_classes == 3:
            return "megc2019_3class_loso"
        if datasets == {"casme2"} and n_classes == 5:
            return "casme2_5class_loso"
        if datasets == {"samm"} and n_classes == 5:
            return "samm_5class_loso"
        if datasets == {"smic"} and n_classes == 3:
            return "smic_3class_loso"
        return None

    @property
    def generated_data(self) -> bool:
        """True for runs on SynthME (its tree carries a marker file): no published figure
        applies, although it is read as CASME II."""
        root = Path(str(self.meta.get("data_root") or "."))
        return any((d / SYNTHME_MARKER).exists() for d in (root, root.parent))

    def config_without_seed(self) -> dict:
        """The config minus its seed and cadence fields: equal for seeds of one config."""
        cfg = json.loads(json.dumps(self.config))
        cfg.pop("seed", None)
        for key in RunConfig.CADENCE_FIELDS:
            cfg.get("run", {}).pop(key, None)
        return cfg

    def wall_seconds(self) -> float:
        """Wall time of the run's invocations (``wall/*.json``), else the summed ``wall_s``
        of its training logs (k-fold runs: training epochs only)."""
        if self.wall:
            return float(sum(w.get("wall_s", 0.0) for w in self.wall))
        return float(sum(log["wall_s"].sum() for log in self.train_logs if "wall_s" in log))

    def git_commit(self) -> Provenance:
        if self.meta.get("git_commit"):
            return Provenance(str(self.meta["git_commit"]), "recorded in run.json")
        try:
            out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"],
                                 cwd=Path(__file__).resolve().parent, capture_output=True,
                                 text=True, timeout=10, check=True)
        except (OSError, subprocess.SubprocessError):
            return Provenance("unknown", "not recorded; no git checkout at report time")
        return Provenance(out.stdout.strip(), "at report time (not recorded by the run)")

    def versions(self) -> dict[str, Provenance]:
        recorded = self.meta.get("versions") or {}
        found = {}
        for package in ("fervid", "torch"):
            if package in recorded:
                found[package] = Provenance(str(recorded[package]), "recorded in run.json")
                continue
            try:
                found[package] = Provenance(version(package), "at report time")
            except PackageNotFoundError:
                found[package] = Provenance("unknown", "not installed")
        return found

    def device(self) -> Provenance:
        if self.meta.get("device"):
            return Provenance(str(self.meta["device"]), "recorded in run.json")
        run = self.config.get("run", {})
        hosts = sorted({str(w["host"]) for w in self.wall if w.get("host")})
        text = (f"accelerator {run.get('accelerator', '?')}, devices {run.get('devices', '?')}, "
                f"precision {run.get('precision', '?')}, "
                f"workers {run.get('workers', run.get('num_workers', '?'))}")
        if hosts:
            text += "; hosts " + ", ".join(hosts)
        return Provenance(text, "from config.yaml and wall/*.json")


def load_run(run_dir: Path) -> RunData:
    """Read a LOSO or DFEW k-fold run directory (finished or partly finished) for the report."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunReportError(f"{run_dir}: no such run directory")
    meta = read_json(run_dir / "run.json", required=True)
    if "classes" not in meta:
        raise RunReportError(f"{run_dir / 'run.json'}: has no 'classes' (not a fervid run?)")
    config_text, config = read_config(run_dir)
    if meta.get("protocol") == "dfew_5fold":
        from fervid.report.html.kfold_data import load_kfold_run

        return load_kfold_run(run_dir, meta, config, config_text)
    try:
        predictions = RunStore(run_dir).read_predictions()
    except RunDirError as err:
        raise RunReportError(str(err)) from err
    predictions = predictions.sort_values(["fold"], kind="stable").reset_index(drop=True)
    metrics = read_json(run_dir / "metrics.json", required=False)
    scores = score_predictions(predictions, meta["classes"])
    if not metrics or metrics.get("n_samples") != len(predictions):
        metrics = _metrics_from_scores(scores, meta, predictions)  # merge not written yet
    folds = _folds(run_dir, predictions)
    per_subject = _per_subject(scores, folds)
    wall = [read_json(p, required=True) for p in sorted((run_dir / "wall").glob("*.json"))]
    return RunData(run_dir=run_dir, protocol="loso", meta=meta, config=config,
                   config_text=config_text, metrics=metrics, predictions=predictions,
                   per_subject=per_subject, folds=folds, train_logs=read_train_logs(run_dir),
                   wall=wall, gallery=_gallery(run_dir))


def read_config(run_dir: Path) -> tuple[str, dict]:
    """The text of ``config.yaml`` (empty if absent) and its parsed mapping."""
    config_path = run_dir / "config.yaml"
    config_text = config_path.read_text() if config_path.exists() else ""
    try:
        return config_text, yaml.safe_load(config_text) or {}
    except yaml.YAMLError as err:
        raise RunReportError(f"{config_path}: not valid YAML ({err})") from err


def read_json(path: Path, *, required: bool) -> dict:
    if not path.exists():
        if required:
            raise RunReportError(f"{path.parent}: not a fervid run directory (no {path.name})")
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunReportError(f"{path}: not valid JSON ({err})") from err


def _metrics_from_scores(scores: dict, meta: dict, predictions: pd.DataFrame) -> dict:
    whole = scores["whole"]
    n_folds = int(predictions["fold"].nunique())
    return {"name": meta.get("name"), "seed": meta.get("seed"), "classes": meta["classes"],
            "uf1": whole.uf1, "uar": whole.uar, "acc": whole.acc, "f1_macro": whole.f1_macro,
            "n_samples": whole.n_samples, "n_folds": n_folds,
            "n_folds_total": meta.get("n_folds", n_folds),
            "complete": n_folds == meta.get("n_folds", n_folds),
            "per_dataset": scores["per_dataset"], "per_class_recall": whole.per_class_recall,
            "per_class_f1": whole.per_class_f1}


def _folds(run_dir: Path, predictions: pd.DataFrame) -> pd.DataFrame:
    path = run_dir / "folds.csv"
    if not path.exists():  # older runs: the finished folds are all that is known
        return predictions[["fold", "dataset", "subject"]].drop_duplicates(ignore_index=True)
    folds = pd.read_csv(path, dtype={"subject": str})
    missing = {"fold", "dataset", "subject"} - set(folds.columns)
    if missing:
        raise RunReportError(f"{path}: lacks columns {sorted(missing)}")
    return folds


def _per_subject(scores: dict, folds: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(scores["per_subject"]).merge(folds, on=["dataset", "subject"],
                                                      how="left")
    table["fold"] = table["fold"].astype("Int64")
    table = table[["fold", "dataset", "subject", "n", "acc", "uf1", "uar"]]
    return table.sort_values(["acc", "n"], ascending=[True, False], kind="stable")


def read_train_logs(run_dir: Path) -> list[pd.DataFrame]:
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


def _gallery(run_dir: Path) -> list[tuple[Path, str]]:
    folder = run_dir / "dssi_gallery"
    images = sorted(folder.glob("*.png"))
    if not images:
        return []
    captions = read_json(folder / "captions.json", required=False)
    return [(p, str(captions.get(p.name, p.stem))) for p in images]
