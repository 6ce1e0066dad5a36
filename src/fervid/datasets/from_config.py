"""Choosing and calling a release reader from a LOSO config's ``data`` section."""

from __future__ import annotations

from pathlib import Path

from fervid.config import ConfigError, LosoConfig
from fervid.samples import SampleTable


def read_release(cfg: LosoConfig, data_root: Path) -> SampleTable:
    """The labelled clips of the release ``cfg.data.dataset`` under ``data_root``."""
    from fervid.datasets import load_dataset, read_megc2019

    d, root = cfg.data, Path(data_root)
    if d.dataset is None:
        raise ConfigError(f"data.format={d.format} reads frames: set data.dataset (casme2, samm, "
                          f"smic or megc2019)")
    if d.dataset == "megc2019":
        keys = ("gt", "casme2", "casme2_sheet", "samm", "samm_sheet", "smic")
        missing = [k for k in keys if k not in d.paths]
        if missing:
            raise ConfigError(f"data.dataset=megc2019 needs data.paths for {missing} "
                              f"(relative to --data-root {root})")
        p = {k: root / d.paths[k] for k in keys}
        table = read_megc2019(p["gt"], p["casme2"], p["casme2_sheet"], p["samm"],
                              p["samm_sheet"], p["smic"])
    else:
        sheet = None if d.sheet is None else root / d.sheet
        table = load_dataset(d.dataset, root, d.protocol, sheet)
    table = table.labelled()
    if tuple(d.classes) != table.classes:
        raise ConfigError(f"data.classes {list(d.classes)} differ from the classes of "
                          f"{d.dataset} {d.protocol}: {list(table.classes)}; set data.classes "
                          f"to those")
    return table
