"""Small HTML building blocks shared by every section; cells are escaped by the callers."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from html import escape
from itertools import groupby
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fervid.report.html.run_data import RunData

#: Column label of each score key.
METRIC_NAMES = {"uf1": "UF1", "uar": "UAR", "acc": "Acc", "f1_macro": "macro-F1", "war": "WAR"}


def fmt(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def section(kind: str, title: str, body: str, *, anchor: str = "") -> str:
    """A ``<section data-section=kind>`` with a heading; ``kind`` names what it shows."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return (f'<section data-section="{escape(kind)}"{ident}><h3>{escape(title)}</h3>'
            f"{body}</section>")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, sortable: bool = False,
          row_classes: Sequence[str] = (), kind: str = "") -> str:
    """An HTML table of already escaped cells; ``sortable`` tables sort on a header click."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        attr = f' class="{cls}"' if cls else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    names = " ".join(n for n in ("sortable" if sortable else "", kind) if n)
    cls = f' class="{names}"' if names else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def image(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def delta(value: float) -> str:
    """`` (+0.0123)`` coloured by sign: a difference from the first run."""
    cls = "up" if value > 0 else "down" if value < 0 else "same"
    return f' <span class="delta {cls}">({value:+.4f})</span>'


def meta_table(items: Sequence[tuple[str, str, str]]) -> str:
    """Rows of (what, value, where it comes from)."""
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td>"
                   f'<td class="src">{escape(s)}</td></tr>' for k, v, s in items)
    return f'<table class="meta">{rows}</table>'


def provenance_rows(run: RunData) -> list[tuple[str, str, str]]:
    """What made the run, as its ``run.json`` records it (fervid version and commit, library
    versions, CPU, GPU, precision, command line); a value that changed when the run was
    resumed shows each segment's, in order. Runs that recorded none: the commit and versions
    at report time and the device from the config."""
    from fervid.runs.provenance import describe

    if run.provenance:
        described = [describe(r) for r in run.provenance]
        rows = []
        for label in described[0]:
            values = [value for value, _ in groupby(d[label] for d in described)]
            source = "recorded in run.json" + (
                " (changed when the run was resumed)"
                if len(values) > 1 else "")
            rows.append((label, " → ".join(values), source))
        return rows
    commit = run.git_commit()
    device = run.device()
    return [("git commit", commit.value, commit.source),
            *((f"{p} version", v.value, v.source) for p, v in run.versions().items()),
            ("device", device.value, device.source)]


def config_details(run: RunData) -> str:
    config = escape(run.config_text or json.dumps(run.config, indent=2))
    return f"<details><summary>config.yaml</summary><pre>{config}</pre></details>"
