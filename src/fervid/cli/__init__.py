"""The ``fervid`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="fervid: facial expression recognition in video.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
console = Console()
err = Console(stderr=True)

#: Errors the user can fix: printed as one clear message, exit status 2, no traceback.
_USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError, RuntimeError)


def fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


@app.command()
def loso(
    config: Annotated[Path, typer.Option(help="YAML config, e.g. configs/ststnet_megc2019.yaml")],
    data_root: Annotated[Path, typer.Option(
        help="Precomputed inputs: a folder with index.csv and one image per clip "
             "(e.g. ../shared/data/megc2019_flow or the output of `fervid prepare flow`).")],
    out: Annotated[Path, typer.Option(help="Run directory; rerunning resumes it.")],
    seed: Annotated[int | None, typer.Option(help="Overrides the config's seed.")] = None,
    folds: Annotated[str | None, typer.Option(
        help="Folds to run, e.g. 0-33 or 0-3,10 (default all); shards merge with "
             "`fervid report`.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Overrides train.epochs.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="Override any config field, e.g. --set train.lr=1e-4 (repeatable).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Leave-one-subject-out training and evaluation, resumable and shardable.

    Writes RUN_DIR/metrics.json (uf1, uar, acc, f1_macro, per_dataset, ...), predictions.csv,
    per_subject.csv and confusion.png, and prints the results table.
    """
    from fervid.config import load_config
    from fervid.protocol.loso import load_precomputed_data, run_loso
    from fervid.report import print_report

    overrides = list(set_ or [])
    if seed is not None:
        overrides.append(f"seed={seed}")
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    try:
        cfg = load_config(config, overrides)
        data = load_precomputed_data(cfg, data_root)
        report = run_loso(cfg, data, out, folds_spec=folds, data_root=str(data_root),
                          progress=progress)
    except _USER_ERRORS as e:
        raise fail(str(e)) from None
    if report is not None:
        print_report(report, console)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories of `fervid loso`.")],
) -> None:
    """Merge the finished folds of each run (from any number of shards) and print the results.

    With several runs (e.g. seeds), also prints them side by side with their mean and spread.
    """
    from fervid.report import build_report, print_report, seeds_table

    try:
        reports = [build_report(d) for d in run_dirs]
    except _USER_ERRORS as e:
        raise fail(str(e)) from None
    for rep in reports:
        print_report(rep, console)
    if len(reports) > 1:
        console.print(seeds_table(reports))


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its data and runs.")] = Path(
        "runs/demo"),
    epochs: Annotated[int, typer.Option(help="Training epochs per fold.")] = 200,
) -> None:
    """Generate a small micro-expression clip set, compute its optical flow, run STSTNet LOSO."""
    from fervid.cli.demo import run_demo

    try:
        run_demo(out, epochs=epochs, console=console)
    except _USER_ERRORS as e:
        raise fail(str(e)) from None


def _register_subcommands() -> None:
    from fervid.cli.prepare import prepare_app

    app.add_typer(prepare_app, name="prepare")


_register_subcommands()


def main() -> None:
    app()
