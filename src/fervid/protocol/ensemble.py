"""Ensembles of LOSO runs: each sample's class probabilities averaged over runs (seeds,
methods). No label is used, so an ensemble is as honest as its members.

Two ways in: ``fervid ensemble RUN... --out RUN_E`` averages finished runs, and a config with
``members`` trains each member into ``RUN/members/<name>`` and averages them into ``RUN``.
Either way ``RUN`` is an ordinary LOSO run directory (fold files, metrics, report); with every
member traced at the same epochs, its traces are averaged too (the test-selected row).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ValidationError

from fervid.config import ConfigError, LosoConfig, deep_merge, validation_problems
from fervid.errors import FervidError
from fervid.protocol.folds import LosoFolds
from fervid.representation.loso_inputs import LosoData
from fervid.runs import provenance
from fervid.runs.au_results import read_au_fold
from fervid.runs.provenance import ProvenanceWarning
from fervid.runs.results import LosoReport, build_loso_results
from fervid.runs.store import (
    PREDICTION_COLUMNS,
    RunDirError,
    RunStore,
    read_fold_file,
    read_run_meta,
    require_meta,
)

_KEY = ["dataset", "subject", "clip"]


class EnsembleError(FervidError, ValueError):
    """The runs given to an ensemble do not fit together (classes, folds, samples)."""


class EnsembleSpec(BaseModel):
    """``config.yaml`` of an ensemble of finished runs."""

    members: list[str]
    fingerprints: list[str]


def member_configs(cfg: LosoConfig) -> list[LosoConfig]:
    """Each of ``cfg.members`` laid over ``cfg`` (less its members) and validated."""
    base = cfg.model_dump()
    base.pop("members")
    out, names = [], set()
    for i, member in enumerate(cfg.members):
        name = member.get("name") if isinstance(member, dict) else None
        if not isinstance(name, str) or not name or "/" in name:
            raise ConfigError(f"members[{i}]: each member needs a name (a folder name under "
                              "RUN/members/)")
        if name in names:
            raise ConfigError(f"members[{i}]: the name {name!r} is used twice")
        if "members" in member:
            raise ConfigError(f"members[{i}] ({name}): a member cannot hold members")
        names.add(name)
        try:
            out.append(LosoConfig.model_validate(deep_merge(base, member)))
        except ValidationError as e:
            raise ConfigError(f"members[{i}] ({name}): invalid member: "
                              f"{validation_problems(e)}") from None
    return out


def run_members(cfg: LosoConfig, out: Path, load_data: Callable[[LosoConfig], LosoData], *,
                folds_spec: str | None = None, data_root: str = "", progress: bool = True
                ) -> LosoReport:
    """Train every member of ``cfg`` (its LOSO run of the chosen folds, on the inputs
    ``load_data(member)`` gives) into ``out/members/<name>``, then average them into ``out``.
    Rerunning resumes each member, then averages the folds not yet averaged."""
    from fervid.protocol.loso import run_loso

    started = time.monotonic()
    members = member_configs(cfg)
    if not members:
        raise ConfigError("run_members needs a config with members")
    data = load_data(members[0])
    folds = LosoFolds.from_table(data.table, cfg.group)
    info = {"protocol": "loso", "fingerprint": cfg.fingerprint(), "name": cfg.name,
            "seed": cfg.seed, "n_folds": len(folds), "data_root": data_root,
            "classes": cfg.data.classes, "group": cfg.group,
            "members": [m.name for m in members]}
    store = RunStore(out)
    store.open(cfg, info, same=("fingerprint", "n_folds"), folds=folds.table())
    dirs = [Path(out) / "members" / m.name for m in members]
    for i, (member, member_dir) in enumerate(zip(members, dirs, strict=True)):
        run_loso(member, data if i == 0 else load_data(member), member_dir,
                 folds_spec=folds_spec, data_root=data_root, progress=progress)
    average_into(store, dirs, info)
    store.write_wall({"wall_s": time.monotonic() - started,
                      "members": [m.name for m in members]})
    return build_loso_results(out)


def ensemble_runs(run_dirs: Sequence[Path], out: Path) -> LosoReport:
    """Average the finished LOSO runs ``run_dirs`` into the run directory ``out``."""
    if len(run_dirs) < 2:
        raise EnsembleError("an ensemble needs at least two runs")
    metas = [read_run_meta(d) for d in run_dirs]
    for d, meta in zip(run_dirs, metas, strict=True):
        require_meta(meta, d, "classes", "fingerprint", "n_folds")
    different = provenance.mixed({str(d): provenance.segments(m)
                                  for d, m in zip(run_dirs, metas, strict=True)
                                  if provenance.segments(m)})
    if different:  # allowed, but their figures may not be comparable
        warnings.warn(f"ensemble of {different}", ProvenanceWarning, stacklevel=2)
    fingerprints = [m["fingerprint"] for m in metas]
    digest = hashlib.sha1(",".join(fingerprints).encode()).hexdigest()[:12]
    seeds = {m.get("seed") for m in metas}
    info = {"protocol": "loso", "fingerprint": digest, "name": "ensemble",
            "seed": seeds.pop() if len(seeds) == 1 else None, "classes": metas[0]["classes"],
            "group": metas[0].get("group", "subject"), "n_folds": metas[0]["n_folds"],
            "members": [str(Path(d).resolve()) for d in run_dirs],
            **({"task": "au"} if metas[0].get("task") == "au" else {})}
    store = RunStore(out)
    folds = _check_members(run_dirs, metas)
    started = time.monotonic()
    store.open(EnsembleSpec(members=info["members"], fingerprints=fingerprints), info,
               same=("fingerprint", "n_folds"), folds=folds)
    average_into(store, run_dirs, info)
    walls = sum(build_loso_results(d).metrics["wall_s"] for d in run_dirs)
    store.write_wall({"wall_s": walls + time.monotonic() - started,
                      "note": "the members' wall time plus the averaging"})
    return build_loso_results(out)


def _check_members(run_dirs: Sequence[Path], metas: list[dict]) -> pd.DataFrame:
    """The members' common ``folds.csv``; an :class:`EnsembleError` when they differ."""
    first, meta0 = run_dirs[0], metas[0]
    for d, meta in zip(run_dirs[1:], metas[1:], strict=True):
        for key in ("protocol", "task", "classes", "n_folds", "group"):
            default = "subject" if key == "group" else None  # runs before --group had none
            if meta.get(key, default) != meta0.get(key, default):
                raise EnsembleError(f"{d}: its {key} ({meta.get(key)}) differs from {first}'s "
                                    f"({meta0.get(key)}); an ensemble averages runs of the "
                                    "same folds and classes")
    tables = []
    for d in run_dirs:
        try:
            tables.append(pd.read_csv(Path(d) / "folds.csv", dtype=str))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise RunDirError(f"{Path(d) / 'folds.csv'}: unreadable ({err})") from err
    for d, t in zip(run_dirs[1:], tables[1:], strict=True):
        if not t.equals(tables[0]):
            raise EnsembleError(f"{d}: its folds (folds.csv) differ from {first}'s: the runs "
                                "hold out different subjects")
    return tables[0]


def average_into(store: RunStore, run_dirs: Sequence[Path], info: dict) -> None:
    """Write ``store``'s fold files (and traces) as the average of the members' folds; only
    folds every member has finished, and not one already written."""
    classes = info["classes"]
    probs = [f"p_{c}" for c in classes]
    member_stores = [RunStore(d) for d in run_dirs]
    names = [set(p.name for p in (Path(d) / "folds").glob("fold_*.csv")) for d in run_dirs]
    common = sorted(set.intersection(*names)) if names else []
    for name in common:
        fold = int(name[len("fold_"):-len(".csv")])
        if store.fold_path(fold).exists():
            continue
        if info.get("task") == "au":  # AU probabilities, averaged the same way
            frames = [read_au_fold(s.fold_path(fold), classes) for s in member_stores]
            store.write_fold(fold, _average_au(frames, classes, run_dirs,
                                               store.fold_path(fold).name))
            continue
        frames = [read_fold_file(s.fold_path(fold), [*PREDICTION_COLUMNS, *probs], len(classes))
                  for s in member_stores]
        mean = _average(frames, probs, run_dirs, store.fold_path(fold).name)
        store.write_fold(fold, mean, trace=_average_traces(member_stores, frames, fold, probs,
                                                           run_dirs, len(classes)))


def _average_au(frames: list[pd.DataFrame], aus: Sequence[str], run_dirs: Sequence[Path],
                what: str) -> pd.DataFrame:
    """Mean of the members' AU probabilities ``p_<AU>`` (aligned on the sample), their
    targets ``y_<AU>`` checked equal."""
    probs, targets = [f"p_{a}" for a in aus], [f"y_{a}" for a in aus]
    base = frames[0].set_index(_KEY)
    total = base[probs].astype(float)
    for d, frame in zip(run_dirs[1:], frames[1:], strict=True):
        other = frame.set_index(_KEY)
        if set(other.index) != set(total.index):
            raise EnsembleError(f"{Path(d) / 'folds' / what}: holds other samples than "
                                f"{Path(run_dirs[0]) / 'folds' / what}")
        if not (other.loc[base.index, targets].to_numpy() == base[targets].to_numpy()).all():
            raise EnsembleError(f"{Path(d) / 'folds' / what}: its AU labels differ from "
                                f"{Path(run_dirs[0]) / 'folds' / what}'s")
        total = total + other.loc[total.index, probs].astype(float)
    out = base.copy()
    out[probs] = (total / len(frames)).round(6)
    return out.reset_index()[frames[0].columns]


def _average_traces(member_stores: list[RunStore], frames: list[pd.DataFrame], fold: int,
                    probs: list[str], run_dirs: Sequence[Path], n_classes: int
                    ) -> pd.DataFrame | None:
    """The members' traces of ``fold`` averaged at the epochs every traced member kept; a
    member that trains no epochs (a linear model) counts with its final probabilities at
    each. None when no member kept a trace, or the traced ones share no epoch."""
    paths = [s.trace_path(fold) for s in member_stores]
    traced = {i: read_fold_file(p, ["epoch", *PREDICTION_COLUMNS, *probs], n_classes)
              for i, p in enumerate(paths) if p.exists()}
    if not traced:
        return None
    epochs = sorted(set.intersection(*(set(t["epoch"]) for t in traced.values())))
    if not epochs:
        return None
    parts = []
    for i, frame in enumerate(frames):
        if i in traced:
            t = traced[i]
            parts.append(t[t["epoch"].isin(epochs)])
        else:
            parts.append(pd.concat([frame.assign(epoch=e) for e in epochs], ignore_index=True))
    return _average(parts, probs, run_dirs, member_stores[0].trace_path(fold).name,
                    key=["epoch", *_KEY])


def _average(frames: list[pd.DataFrame], probs: list[str], run_dirs: Sequence[Path],
             what: str, key: list[str] = _KEY) -> pd.DataFrame:
    """Mean of ``probs`` over ``frames`` (aligned on ``key``), ``pred`` its argmax."""
    base = frames[0][[c for c in frames[0].columns if c in ("epoch", *PREDICTION_COLUMNS)]]
    base = base.set_index(key)
    total = frames[0].set_index(key)[probs].astype(float)
    for d, frame in zip(run_dirs[1:], frames[1:], strict=True):
        other = frame.set_index(key)
        if set(other.index) != set(total.index):
            raise EnsembleError(f"{Path(d) / 'folds' / what}: holds other samples than "
                                f"{Path(run_dirs[0]) / 'folds' / what}")
        if not (other.loc[base.index, "label"] == base["label"]).all():
            raise EnsembleError(f"{Path(d) / 'folds' / what}: its labels differ from "
                                f"{Path(run_dirs[0]) / 'folds' / what}'s")
        total = total + other.loc[total.index, probs].astype(float)
    mean = (total / len(frames)).round(6)
    out = base.copy()
    out["pred"] = mean.to_numpy().argmax(1)
    out[probs] = mean
    return out.reset_index()[[*key[:-3], *PREDICTION_COLUMNS, *probs]]
