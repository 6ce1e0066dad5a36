"""``fervid evaluate``: score trained models without training.

Two sources of models: ``--config`` with ``--fold-weights DIR`` (one state dict per held-out
subject of a LOSO config, :mod:`fervid.protocol.fold_weights`), or ``--checkpoint`` (one
self-describing checkpoint scored on another data set, :mod:`fervid.protocol.cross_dataset`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fervid.cli.common import (
    USER_ERRORS,
    SetOption,
    check_output_dir,
    config_overrides,
    console,
    fail,
)


def evaluate(
    data_root: Annotated[Path, typer.Option(
        help="The data to score, as `fervid loso` reads it: precomputed inputs (a folder "
             "with index.csv and one image per clip, e.g. ../shared/data/megc2019_flow) or "
             "the release's frame folder.")],
    out: Annotated[Path, typer.Option(help="Run directory; rerunning resumes it.")],
    config: Annotated[Path | None, typer.Option(
        help="LOSO YAML config of the models in --fold-weights (model, data, classes), e.g. "
             "configs/ststnet_megc2019.yaml.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(
        help="A self-describing checkpoint (e.g. RUN/models/fold_000.pt) or a bundled "
             "model's name (fervid models, e.g. fer_mini_xception) to score on --data-root "
             "(cross-dataset).")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="With --checkpoint: the data set --data-root holds, a registered dataset with "
             "still faces (default: the one the model was trained on).")] = None,
    fold_weights: Annotated[Path | None, typer.Option(
        help="With --config: a folder of one PyTorch state dict per held-out subject, "
             "<subject>.pth (e.g. ../shared/data/ststnet_weights); each scores its own "
             "subject's LOSO fold.")] = None,
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Score trained models on a dataset, without training.

    --config with --fold-weights: LOSO with the given per-subject weights; writes the files of
    `fervid loso` (run.json, folds/*.csv, predictions.csv, metrics.json, ...), marked as
    evaluated from those weights, in float32. --checkpoint: one model on another data set.
    """
    if checkpoint is not None:
        if config is not None or fold_weights is not None or set_:
            raise fail("--checkpoint scores a self-describing checkpoint on its own: give "
                       "either --checkpoint, or --config with --fold-weights")
        from fervid.datasets.registry import dataset_spec
        from fervid.protocol.cross_dataset import evaluate_checkpoint
        from fervid.report.html import write_html_report

        try:
            if dataset is not None:  # an unknown name: one line listing the registered ones
                dataset_spec(dataset, lambda s: s.read_faces is not None,
                             "with --checkpoint (it has no still faces)")
            check_output_dir(out)
            m = evaluate_checkpoint(checkpoint, data_root, out, dataset, progress)
            write_html_report([out], out / "report.html")
        except USER_ERRORS as e:
            raise fail(str(e)) from None
        left = m["left_out"]
        console.print(f"{m['dataset']}: accuracy {m['acc']:.4f}, UAR {m['uar']:.4f} over "
                      f"{m['n_samples']} samples of {', '.join(m['classes'])}")
        if left["model_only"] or left["data_only"]:
            console.print(f"left out: model-only classes {left['model_only'] or 'none'}, "
                          f"data-only classes {left['data_only'] or 'none'} "
                          f"({left['n_samples']} samples)")
        console.print(f"report: {out / 'report.html'}")
        return
    if config is None or fold_weights is None:
        raise fail("give --config CONFIG with --fold-weights DIR (one <subject>.pth per "
                   "held-out subject), or --checkpoint FILE; to train, use `fervid loso`")
    if dataset is not None:
        raise fail("--dataset goes with --checkpoint; with --config the config's data "
                   "section says what --data-root holds")

    from fervid.config import load_config
    from fervid.protocol.fold_weights import evaluate_fold_weights
    from fervid.protocol.loso import load_loso_data
    from fervid.report.loso import print_report

    try:
        cfg = load_config(config, config_overrides(set_))
        check_output_dir(out)
        data = load_loso_data(cfg, data_root, progress=progress)
        report = evaluate_fold_weights(cfg, data, fold_weights, out, data_root=str(data_root),
                                       progress=progress)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    print_report(report, console)
    console.print(f"evaluated from the fold weights in {fold_weights} (no training)")
