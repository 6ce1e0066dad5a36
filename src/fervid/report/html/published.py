"""Published figures (``fervid/data/published_results.yaml``) by protocol."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files

import yaml

from fervid.errors import FervidError

_RESOURCE = "data/published_results.yaml"
_REQUIRED = ("method", "source", "protocol", "figures")


class PublishedResultsError(FervidError, ValueError):
    """The published-results file is malformed; the message names the file and entry."""


@dataclass(frozen=True)
class PublishedEntry:
    """One method's reported figures under one protocol.

    ``figures`` maps a part (``all`` or a dataset of a composite) to ``{metric: value}``;
    ``status`` is ``published`` or ``released_weights_rerun``.
    """

    method: str
    source: str
    protocol: str
    figures: dict[str, dict[str, float]]
    note: str = ""
    status: str = "published"


@dataclass(frozen=True)
class Benchmark:
    """A protocol's title, its reported metrics and its published entries."""

    protocol: str
    title: str
    metrics: list[str]
    entries: list[PublishedEntry]


def load_published(text: str | None = None) -> dict[str, Benchmark]:
    """Every protocol of the packaged file (or of ``text``), keyed by protocol id."""
    where = f"fervid/{_RESOURCE}"
    if text is None:
        text = (files("fervid") / _RESOURCE).read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise PublishedResultsError(f"{where}: not valid YAML ({err})") from err
    protocols = raw.get("protocols") or {}
    entries: dict[str, list[PublishedEntry]] = {p: [] for p in protocols}
    for i, item in enumerate(raw.get("entries") or []):
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise PublishedResultsError(f"{where}: entry {i} lacks {missing}")
        if item["protocol"] not in protocols:
            raise PublishedResultsError(
                f"{where}: entry {i} ({item['method']}) names unknown protocol "
                f"{item['protocol']!r}; known: {sorted(protocols)}")
        entries[item["protocol"]].append(PublishedEntry(
            method=str(item["method"]), source=str(item["source"]),
            protocol=item["protocol"],
            figures={str(k): {m: float(v) for m, v in d.items()}
                     for k, d in item["figures"].items()},
            note=str(item.get("note", "")), status=str(item.get("status", "published"))))
    return {p: Benchmark(p, str(info["title"]), list(info["metrics"]), entries[p])
            for p, info in protocols.items()}
