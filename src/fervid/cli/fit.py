"""``fervid fit``: one model trained on a whole release (the hold-out protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fervid.cli.common import (
    USER_ERRORS,
    SetOption,
    check_output_dir,
    config_overrides,
    console,
    fail,
)


def fit(
    config: Annotated[Path, typer.Option(help="YAML config, e.g. configs/resnet18_fer2013.yaml")],
    data_root: Annotated[Path, typer.Option(
        help="The release (data.dataset): FER2013's fer2013.csv or its image-folder release, "
             "an image folder (<class>/<image>), or a CK+ root.")],
    out: Annotated[Path, typer.Option(help="Run directory; rerunning resumes it.")],
    seed: Annotated[int | None, typer.Option(help="Overrides the config's seed.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Overrides train.epochs.")] = None,
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train one model on the release's training split (every sample when it has none).

    A validation split (the release's, or carved from the training samples) may choose the
    epoch; the test split chooses nothing. Writes RUN/model.pt (for predict, export and
    evaluate), RUN/metrics.json ({"validation", "test", "selection"}), predictions.csv and
    train_logs/fit.csv.
    """
    from fervid.config import FitConfig, load_config
    from fervid.datasets.from_config import read_face_release
    from fervid.protocol.holdout import run_holdout

    overrides = config_overrides(set_, seed=seed, **{"train.epochs": epochs})
    try:
        cfg = load_config(config, overrides, schema=FitConfig)
        check_output_dir(out)
        images = read_face_release(cfg, data_root)
        metrics = run_holdout(cfg, images, out, data_root=str(data_root), progress=progress)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    table = Table(title=f"{cfg.name}: {out}")
    for column in ("split", "n", "acc", "uar"):
        table.add_column(column)
    for split in ("validation", "test"):
        m = metrics.get(split)
        if m:
            table.add_row(split, str(m["n_samples"]), f"{m['acc']:.4f}", f"{m['uar']:.4f}")
    console.print(table)
    sel = metrics["selection"]
    console.print(f"model: epoch {sel['epoch']} of {sel['epochs']} ({sel['note']})")
