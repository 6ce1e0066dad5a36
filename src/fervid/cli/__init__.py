"""The ``fervid`` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fervid.cli.common import (
    USER_ERRORS,
    SetOption,
    check_output_dir,
    check_output_file,
    config_overrides,
    console,
    fail,
    global_options,
    run_app,
)

app = typer.Typer(help="fervid: facial expression recognition in video.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
app.callback()(global_options)  # --version, --quiet; warnings as one line each


@app.command()
def loso(
    config: Annotated[Path, typer.Option(help="YAML config, e.g. configs/ststnet_megc2019.yaml")],
    data_root: Annotated[Path, typer.Option(
        help="Precomputed inputs (data.format: precomputed): a folder with index.csv and one "
             "image per clip (e.g. ../shared/data/megc2019_flow or the output of `fervid "
             "prepare flow`). Frame-based formats (dssi, apex, global_di): the release's frame "
             "folder (see data.dataset, data.sheet).")],
    out: Annotated[Path, typer.Option(help="Run directory; rerunning resumes it.")],
    seed: Annotated[int | None, typer.Option(help="Overrides the config's seed.")] = None,
    folds: Annotated[str | None, typer.Option(
        help="Folds to run, e.g. 0-33 or 0-3,10 (default all); shards merge with "
             "`fervid report`.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Overrides train.epochs.")] = None,
    group: Annotated[str | None, typer.Option(
        help="What a fold holds out: subject (LOSO, the default) or dataset (MEGC2019's "
             "hold-out-database protocol: train on two parts of the composite set, test on "
             "the third). Overrides the config's group.")] = None,
    skip_missing: Annotated[bool, typer.Option(
        help="Leave out clips whose folders or frames are missing or damaged (count and "
             "first names printed and kept in run.json) instead of stopping.")] = False,
    set_: SetOption = None,
    cache_dir: Annotated[Path | None, typer.Option(
        help="Where computed DSSI results are cached (default $FERVID_CACHE or "
             "~/.cache/fervid).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Leave-one-subject-out training and evaluation, resumable and shardable.

    Writes RUN_DIR/metrics.json (uf1, uar, acc, f1_macro, per_dataset, ...), predictions.csv,
    per_subject.csv and confusion.png, and prints the results table.
    """
    from fervid.config import load_config
    from fervid.protocol.loso import load_loso_data, run_loso
    from fervid.report.loso import print_report

    overrides = config_overrides(set_, seed=seed, group=group, **{
        "train.epochs": epochs, "data.skip_missing": "true" if skip_missing else None})
    try:
        cfg = load_config(config, overrides)
        check_output_dir(out)
        if cfg.members:
            from fervid.protocol.ensemble import run_members

            report = run_members(
                cfg, out, lambda member: load_loso_data(member, data_root, cache_dir=cache_dir,
                                                        progress=progress),
                folds_spec=folds, data_root=str(data_root), progress=progress)
        else:
            data = load_loso_data(cfg, data_root, cache_dir=cache_dir, progress=progress)
            report = run_loso(cfg, data, out, folds_spec=folds, data_root=str(data_root),
                              progress=progress)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    if report is not None:
        print_report(report, console)
        pretrained = report.metrics.get("pretrained")
        if pretrained:
            console.print(f"backbone initialised from {pretrained['path']} "
                          f"({pretrained['kind']}): {', '.join(pretrained['layers'])}")


@app.command()
def kfold(
    config: Annotated[Path, typer.Option(
        help="YAML config, e.g. configs/dfew_r3d_18.yaml; data.dataset names the release "
             "(DFEW when left out; mafw, ferv39k).")],
    data_root: Annotated[Path, typer.Option(
        help="The release's folder: DFEW (Clip/..., EmoLabel_DataSplit/...), MAFW (data/..., "
             "Train & Test Set/...) or FERV39k (2_ClipsforFaceCrop/..., 4_setups/...).")],
    out: Annotated[Path, typer.Option(help="Run directory; rerunning resumes it.")],
    folds: Annotated[str | None, typer.Option(
        help="Folds to run, e.g. 1,3 (default all of the release's: DFEW and MAFW 1-5, "
             "FERV39k 1, its train/test split).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Overrides train.epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Overrides train.batch_size.")] = None,
    seed: Annotated[int | None, typer.Option(help="Overrides the config's seed.")] = None,
    devices: Annotated[int | None, typer.Option(help="Devices per node (DDP when > 1).")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Nodes (under torchrun or SLURM).")
                         ] = None,
    precision: Annotated[str | None, typer.Option(
        help="auto (bf16-mixed where bfloat16 is native, else 32-true), 32-true, "
             "bf16-mixed or 16-mixed.")] = None,
    skip_missing: Annotated[bool, typer.Option(
        help="Skip missing or unreadable clips (their count is logged) instead of stopping.")
    ] = False,
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Training and evaluation over a release's own folds (DFEW 5-fold, MAFW 5-fold, FERV39k
    train/test), resumable (per-epoch checkpoints) and multi-GPU.

    Prints WAR, UAR and per-class recall, pooled over the folds and as the mean of the folds.
    """
    from fervid.config import KfoldConfig, load_config
    from fervid.protocol.folds import parse_folds
    from fervid.protocol.kfold import run_kfold
    from fervid.report.kfold import print_kfold_report

    extra = config_overrides(set_, seed=seed, **{
        "train.epochs": epochs, "train.batch_size": batch_size, "run.devices": devices,
        "run.num_nodes": num_nodes, "run.precision": precision,
        "data.skip_missing": "true" if skip_missing else None})
    try:
        cfg = load_config(config, extra, schema=KfoldConfig)
        check_output_dir(out)
        chosen = None if folds is None else parse_folds(folds, 5, first=1)
        metrics = run_kfold(cfg, data_root, out, folds=chosen, progress=progress)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    if metrics is not None:
        print_kfold_report(metrics, console)


@app.command()
def ensemble(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Finished `fervid loso` runs of the same folds and classes (seeds, methods).")],
    out: Annotated[Path, typer.Option(help="Run directory of the ensemble.")],
) -> None:
    """Average the class probabilities of LOSO runs, sample by sample, into one run.

    No label is used, so the ensemble is as honest as its members. RUN_E holds the same files
    as any run (fold files, metrics.json, predictions.csv, per_subject.csv, confusion.png) and
    reports like one; when every member kept traces at the same epochs, so does the ensemble.
    """
    from fervid.protocol.ensemble import ensemble_runs
    from fervid.report.loso import print_report

    try:
        check_output_dir(out)
        report = ensemble_runs(run_dirs, out)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    print_report(report, console)


@app.command()
def report(
    run_dirs: Annotated[list[Path], typer.Argument(
        help="Run directories of `fervid loso` or `fervid kfold`, or spotting run folders "
             "(`fervid spot --config` or `--dataset`).")],
    html: Annotated[Path | None, typer.Option(
        help="Also write one self-contained HTML report of the runs (LOSO, k-fold or "
             "spotting) to this file.")
    ] = None,
) -> None:
    """Merge the finished folds of each run (from any number of shards) and print the results.

    With several runs (e.g. seeds), also prints them side by side with their mean and spread.
    """
    from fervid.datasets.video_release import is_kfold_protocol
    from fervid.report.kfold import print_kfold_report
    from fervid.report.loso import print_report, seeds_table
    from fervid.report.spotting import is_spot_run, load_spot_run, print_spot_report
    from fervid.runs.results import build_kfold_results, build_loso_results
    from fervid.runs.store import read_run_meta

    try:
        if html is not None:
            check_output_file(html, "--html")
        spot_dirs = [d for d in run_dirs if is_spot_run(d)]
        for d in spot_dirs:
            print_spot_report(load_spot_run(d), console)
        kfold_dirs = [d for d in run_dirs if d not in spot_dirs and (d / "run.json").exists()
                      and is_kfold_protocol(read_run_meta(d).get("protocol"))]
        for d in kfold_dirs:
            print_kfold_report(build_kfold_results(d), console)
        reports = [build_loso_results(d) for d in run_dirs
                   if d not in kfold_dirs and d not in spot_dirs]
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    for rep in reports:
        print_report(rep, console)
    if len(reports) > 1:
        console.print(seeds_table(reports))
    if html is not None:
        from fervid.report.html import write_html_report

        try:
            write_html_report(run_dirs, html)
        except USER_ERRORS as e:
            raise fail(str(e)) from None
        console.print(f"wrote {html}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the demo writes its data and runs.")] = Path(
        "runs/demo"),
    epochs: Annotated[int, typer.Option(help="Training epochs per fold.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of every run.")] = 0,
    only: Annotated[list[str] | None, typer.Option(
        help="Run only these rows (repeatable): smastn, smastn_no_stma, smastn_no_de, "
             "global_di, apex, spotting.")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """SMA-STN against its ablations on SynthME, the built-in generated data (LOSO), and the
    training-free spotter on a generated long video.

    Writes runs/demo/<model>/ (metrics.json, predictions.csv, confusion.png; for SMA-STN rows
    dssi_gallery/*.png with the temporal segment weights), runs/demo/ablation.json,
    runs/demo/spotting.json (micro, macro, overall TP, FP, FN, P, R, F1 under the MEGC rule)
    and runs/demo/demo.md (both tables), and prints the tables. Rerunning resumes: finished
    folds are kept.
    """
    from fervid.cli.demo import run_demo

    try:
        run_demo(out, epochs=epochs, seed=seed, only=only, console=console, progress=progress)
    except USER_ERRORS as e:
        raise fail(str(e)) from None


@app.command()
def dssi(
    frames_dir: Annotated[Path, typer.Argument(
        help="A folder of one clip's frames (onset to offset), each named by its frame "
             "number (img59.jpg, reg_img59.jpg, 059.png), sorted by that number.")],
    out: Annotated[Path, typer.Option(help="PNG to write.")],
    apex: Annotated[int | None, typer.Option(
        help="Frame number of the apex, as in the file names and the dataset's sheet (59 "
             "picks img59.jpg); not a position in the list. Default: the middle frame.")]
    = None,
    protocol: Annotated[str, typer.Option(help="phase or uniform.")] = "phase",
    segments_per_phase: Annotated[int, typer.Option()] = 2,
    n_segments: Annotated[int, typer.Option()] = 4,
    frames_per_segment: Annotated[int, typer.Option()] = 4,
    mode: Annotated[str, typer.Option(help="rgb, bgr or gray.")] = "rgb",
) -> None:
    """Draw the DSSI of one clip: K local dynamic images and the global one.

    The frames are the folder's image files whose names end in a number; a folder without
    such names is refused. Exit status: 0 written; 2 unusable input (no folder, fewer than two
    numbered frames, an --apex number no frame has, an --out path that cannot be a file).
    """
    from fervid.datasets.frames import NUMBERED_IMAGE, describe_numbers, numbered_images
    from fervid.errors import OptionError
    from fervid.report.dssi_gallery import save_dssi_figure
    from fervid.representation.dssi import DssiParams, dssi_from_sample
    from fervid.samples import Sample

    try:
        check_output_file(out, "--out")
        frames = numbered_images(frames_dir)
        numbers = [int(NUMBERED_IMAGE.fullmatch(f.name).group(1)) for f in frames]
        if apex is None:
            apex = numbers[len(frames) // 2]
        if apex not in numbers:
            gaps = "" if numbers[-1] - numbers[0] + 1 == len(numbers) else (
                f" ({describe_numbers(numbers)})")
            raise OptionError(f"{frames_dir}: --apex {apex} is not a frame number of this "
                              f"folder; its {len(numbers)} frames are numbered {numbers[0]} "
                              f"to {numbers[-1]}{gaps}")
        sample = Sample("frames", "-", frames_dir.name, 0, numbers.index(apex),
                        len(frames) - 1, "", None, tuple(frames))
        params = DssiParams(protocol=protocol, segments_per_phase=segments_per_phase,
                            n_segments=n_segments, frames_per_segment=frames_per_segment,
                            mode=mode)
        result = dssi_from_sample(sample, params)
        save_dssi_figure(result, out, title=f"{frames_dir.name}: {len(frames)} frames "
                                            f"({describe_numbers(numbers)}), apex {apex}, "
                                            f"{protocol}")
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    console.print(f"wrote {out}")


def _register_subcommands() -> None:
    from fervid.cli.data import data_app
    from fervid.cli.evaluate import evaluate
    from fervid.cli.fit import fit
    from fervid.cli.predict import export, models, predict
    from fervid.cli.prepare import prepare_app
    from fervid.cli.spot import spot

    app.add_typer(prepare_app, name="prepare")
    app.add_typer(data_app, name="data")
    app.command()(fit)
    app.command()(evaluate)
    app.command()(predict)
    app.command()(models)
    app.command()(export)
    app.command()(spot)


_register_subcommands()


def main() -> None:
    run_app(app)
