"""A spotting run folder read for reports: its scores, per subject and per video counts,
thresholds, timelines and provenance.

A spotting run folder (``fervid spot --config`` or ``--dataset``, see
:mod:`fervid.predict.spot_release`) holds ``metrics.json`` (``micro``, ``macro``,
``overall`` TP, FP, FN, P, R, F1; the same under ``loso`` and, for the training-free spotter,
``default``), ``run.json`` (``kind: spotting``, provenance), ``config.yaml``,
``intervals.csv`` (every spotted interval, ``tp`` 1 when it matched), ``truth.csv`` (every
coded interval, ``matched``), ``folds.csv`` and ``signals/VIDEO.npz``. Only ``metrics.json``
is required; every other file is read when present (older runs wrote fewer), and files the
reader does not know are left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from rich.console import Console
from rich.table import Table

from fervid.report.html.run_data import RunReportError

KINDS = ("micro", "macro", "overall")
#: Names of the score sets a run may hold, in the order shown; ``loso`` is the headline.
SCORE_SETS = {"loso": "leave-one-subject-out (thresholds chosen on training subjects)",
              "default": "default thresholds (chosen on nothing here)"}


def _scores(d) -> bool:
    return isinstance(d, dict) and all(isinstance(d.get(k), dict) and "tp" in d[k]
                                       for k in KINDS)


def is_spot_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` is a spotting run folder: ``run.json`` says ``kind: spotting``, or
    (older runs, without ``run.json``) ``metrics.json`` holds micro/macro/overall counts."""
    run_dir = Path(run_dir)
    try:
        if (run_dir / "run.json").is_file():
            return json.loads((run_dir / "run.json").read_text()).get("kind") == "spotting"
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(metrics, dict) and (_scores(metrics) or _scores(metrics.get("loso")))


@dataclass
class SpotRun:
    """What a report shows of one spotting run folder (tables None where the file is absent).
    """

    run_dir: Path
    metrics: dict
    meta: dict = field(default_factory=dict)
    config_text: str = ""
    intervals: pd.DataFrame | None = None
    truth: pd.DataFrame | None = None
    folds: pd.DataFrame | None = None
    #: Pictures the run folder holds (``*.png``, ``timelines/*.png``).
    pictures: list[Path] = field(default_factory=list)
    #: ``signals/VIDEO.npz`` by video.
    signals: dict[str, Path] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or self.run_dir.name)

    def score_sets(self) -> dict[str, dict]:
        """Each score set the run holds (``loso``, ``default``, ...): ``{micro, macro,
        overall}`` of ``{tp, fp, fn, precision, recall, f1}``; a run with counts at the top
        only has them as ``loso``."""
        found = {name: self.metrics[name] for name in SCORE_SETS
                 if _scores(self.metrics.get(name))}
        if "loso" not in found and _scores(self.metrics):
            found = {"loso": self.metrics, **found}
        for name, value in self.metrics.items():  # score sets of spotters not known here
            if name not in found and name not in KINDS and _scores(value):
                found[name] = value
        return found

    def counts_by(self, column: str) -> pd.DataFrame:
        """Per ``subject`` or ``video``: ``{kind}_truth``, ``_spotted``, ``_tp``, ``_fp`` and
        ``_fn`` for micro and macro (TP from ``intervals.csv``'s ``tp`` column, FN from
        ``truth.csv``'s ``matched``; NaN where the run folder lacks them)."""
        series, names = {}, set()
        for kind in ("micro", "macro"):
            if self.intervals is not None and column in self.intervals:
                mine = self.intervals[self.intervals["type"] == kind].groupby(column)
                names |= set(self.intervals[column])
                series[f"{kind}_spotted"] = mine.size()
                if "tp" in self.intervals:
                    series[f"{kind}_tp"] = mine["tp"].sum()
            if self.truth is not None and column in self.truth:
                coded = self.truth[self.truth["type"] == kind].groupby(column)
                names |= set(self.truth[column])
                series[f"{kind}_truth"] = coded.size()
                if "matched" in self.truth:
                    series[f"{kind}_fn"] = coded.size() - coded["matched"].sum()
        if not names:
            return pd.DataFrame()
        table = pd.DataFrame(series).reindex(sorted(names)).fillna(0)
        for kind in ("micro", "macro"):
            if f"{kind}_tp" in table:
                table[f"{kind}_fp"] = table[f"{kind}_spotted"] - table[f"{kind}_tp"]
            for col in ("truth", "spotted", "tp", "fp", "fn"):
                if f"{kind}_{col}" not in table:
                    table[f"{kind}_{col}"] = float("nan")
        return table


def _csv(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype={"subject": str, "video": str})
    except (OSError, ValueError) as err:
        raise RunReportError(f"{path}: not a readable CSV file ({err})") from err


def load_spot_run(run_dir: Path) -> SpotRun:
    """Read a spotting run folder.

    Raises
    ------
    RunReportError
        No folder, no readable ``metrics.json`` with micro/macro/overall counts, or an
        unreadable file among those read (the message names it).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunReportError(f"{run_dir}: no such run folder")
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise RunReportError(f"{path}: not a readable metrics file ({err}); is {run_dir} a "
                             "finished spotting run?") from err
    meta: dict = {}
    if (run_dir / "run.json").is_file():
        try:
            meta = json.loads((run_dir / "run.json").read_text())
        except (OSError, ValueError) as err:
            raise RunReportError(f"{run_dir / 'run.json'}: not readable JSON ({err})") from err
    run = SpotRun(run_dir, metrics, meta)
    if not run.score_sets():
        raise RunReportError(f"{path}: no micro, macro and overall counts (tp, fp, fn): not "
                             "a spotting run's metrics")
    config = run_dir / "config.yaml"
    if config.is_file():
        run.config_text = config.read_text()
        try:
            yaml.safe_load(run.config_text)
        except yaml.YAMLError as err:
            raise RunReportError(f"{config}: not readable YAML ({err})") from err
    run.intervals = _csv(run_dir / "intervals.csv")
    run.truth = _csv(run_dir / "truth.csv")
    run.folds = _csv(run_dir / "folds.csv")
    run.pictures = sorted([*run_dir.glob("*.png"), *run_dir.glob("timelines/*.png")])
    run.signals = {p.stem: p for p in sorted(run_dir.glob("signals/*.npz"))}
    return run


def spot_table(run: SpotRun) -> Table:
    """The terminal table of a spotting run: each score set's micro, macro and overall
    TP, FP, FN, precision, recall and F1."""
    m = run.metrics
    table = Table(title=f"{run.name} ({run.run_dir}): {m.get('spotter', 'spotter')} on "
                        f"{m.get('dataset', '?')}, {m.get('videos', '?')} videos, "
                        f"{m.get('subjects', '?')} subjects")
    for col in ("scores", "kind", "TP", "FP", "FN", "precision", "recall", "F1"):
        table.add_column(col, justify="left" if col in ("scores", "kind") else "right")
    for name, scores in run.score_sets().items():
        for kind in KINDS:
            s = scores[kind]
            table.add_row(name if kind == "micro" else "", kind, str(s["tp"]), str(s["fp"]),
                          str(s["fn"]), f"{s['precision']:.3f}", f"{s['recall']:.3f}",
                          f"{s['f1']:.3f}")
    return table


def print_spot_report(run: SpotRun, console: Console) -> None:
    console.print(spot_table(run))
