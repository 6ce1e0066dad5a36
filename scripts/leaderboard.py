"""Leaderboard rows (markdown) from finished LOSO run directories: mean ± std over the runs of
each method (its seeds), per-part figures and the test-selected figure where traced.

Each argument is ``LABEL=RUN[,RUN...]``; the runs are merged first (``fervid report`` does the
same), so the figures are those of their ``metrics.json``.

    python scripts/leaderboard.py "LBP-TOP + SVM=runs/lbptop_s0,runs/lbptop_s1,runs/lbptop_s2" \
        "HTNet=runs/best_s0/members/htnet,runs/best_s1/members/htnet" [--parts casme2,smic,samm]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from fervid.runs.provenance import mixed, segments
from fervid.runs.results import build_loso_results
from fervid.runs.store import read_run_meta


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"


def row(label: str, runs: list[Path], parts: list[str]) -> str:
    metrics = [build_loso_results(r).metrics for r in runs]
    incomplete = [str(r) for r, m in zip(runs, metrics, strict=True) if not m["complete"]]
    if incomplete:
        raise SystemExit(f"{label}: unfinished runs {incomplete}")
    cells = [label, str(len(runs)), mean_std([m["uf1"] for m in metrics]),
             mean_std([m["uar"] for m in metrics])]
    for part in parts:
        per = [m["per_dataset"][part] for m in metrics if part in m["per_dataset"]]
        cells.append(f"{statistics.fmean(p['uf1'] for p in per):.4f} / "
                     f"{statistics.fmean(p['uar'] for p in per):.4f}" if per else "–")
    selected = [m["test_selected"] for m in metrics if "test_selected" in m]
    cells.append(f"{statistics.fmean(s['uf1'] for s in selected):.4f} / "
                 f"{statistics.fmean(s['uar'] for s in selected):.4f} ({len(selected)})"
                 if selected else "–")
    cells.append(f"{statistics.fmean(m['wall_s'] for m in metrics):.0f}")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("methods", nargs="+", help="LABEL=RUN[,RUN...]")
    ap.add_argument("--parts", default="casme2,smic,samm")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    print("| method | seeds | UF1 | UAR | " + " | ".join(f"{p} UF1 / UAR" for p in parts)
          + " | test-selected UF1 / UAR (runs) | wall s |")
    print("|" + " --- |" * (6 + len(parts)))
    everything: list[Path] = []
    for spec in args.methods:
        label, _, dirs = spec.partition("=")
        if not dirs:
            raise SystemExit(f"{spec!r}: expected LABEL=RUN[,RUN...]")
        runs = [Path(d) for d in dirs.split(",")]
        print(row(label, runs, parts))
        everything += runs
    warn_if_mixed(everything)


def warn_if_mixed(runs: list[Path]) -> None:
    """One ``warning:`` line on stderr when the runs were made by different fervid versions
    or machines (their wall times and, possibly, their figures are then not comparable)."""
    recorded = {str(r): segments(read_run_meta(r)) for r in runs}
    different = mixed({name: s for name, s in recorded.items() if s})
    if different:
        print(f"warning: the table combines {different}", file=sys.stderr)


if __name__ == "__main__":
    main()
