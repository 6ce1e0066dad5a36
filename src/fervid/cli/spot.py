"""``fervid spot``: where in a long video the face shows micro- and macro-expressions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fervid.cli.common import SetOption

EXIT_NO_FACE = 3


def spot(
    source: Annotated[Path | None, typer.Argument(
        help="A video file, or a folder of numbered frames (give --fps).")] = None,
    out: Annotated[Path, typer.Option(help="Output folder: intervals.csv, spot.json, "
                                           "timeline.png (a release: metrics.json, "
                                           "intervals.csv, folds.csv).")] = Path("runs/spot"),
    config: Annotated[Path | None, typer.Option(
        help="Instead of SOURCE, a spotting config (configs/spot_*.yaml): a release spotted "
             "leave-one-subject-out by the training-free or the learned spotter, into the "
             "run folder --out (resumes from its finished folds).")] = None,
    set_: SetOption = None,
    dataset: Annotated[str | None, typer.Option(
        help="Instead of SOURCE, a spotting release (casme_sq_long, samm_lv): every video "
             "spotted and scored, with the default thresholds and leave-one-subject-out.")
    ] = None,
    data_root: Annotated[Path | None, typer.Option(
        help="The release's frame folder (with --dataset or --config: data.root).")] = None,
    sheet: Annotated[Path | None, typer.Option(
        help="The release's sheet (with --dataset).")] = None,
    skip_missing: Annotated[bool, typer.Option(
        help="With --dataset: leave out videos whose frame folder is absent.")] = False,
    fps: Annotated[float | None, typer.Option(
        help="Frame rate of a frame folder (a video file knows its own).")] = None,
    z_micro: Annotated[float, typer.Option(
        help="Micro threshold: robust standard deviations above the signal's median.")] = 6.0,
    z_macro: Annotated[float, typer.Option(help="Macro threshold, likewise.")] = 6.0,
    micro_k: Annotated[float, typer.Option(
        help="Seconds between the frames compared for micro-expressions.")] = 0.2,
    macro_k: Annotated[float, typer.Option(help="Likewise for macro-expressions.")] = 1.3,
    max_micro: Annotated[float, typer.Option(
        help="Longest micro-expression, seconds (MEGC: 0.5).")] = 0.5,
    detect_every: Annotated[int, typer.Option(help="Run the face detector every N frames; "
                                                   "track the landmarks in between.")] = 5,
) -> None:
    """Spot micro- and macro-expressions in a long video, without training.

    Tracks one face, measures optical flow in regions around its landmarks (brows, nose
    wings, mouth) against the nose ridge, and reports the peaks of motion that comes and goes
    within a micro- or a macro-expression's length (see fervid.predict.spotting). Streams the
    video in bounded memory.

    Writes OUT/intervals.csv (onset, apex, offset in frames from 1 and in seconds, type,
    score), OUT/spot.json and OUT/timeline.png.

    With --config C --data-root D (configs/spot_*.yaml; --set key=value overrides), a whole
    release is spotted leave-one-subject-out by the config's spotter (flow: this one; softnet:
    a shallow network over optical flow trained on the other subjects), into the run folder
    OUT: run.json, config.yaml, metrics.json, intervals.csv, truth.csv, folds.csv, folds/,
    signals/. A killed run resumes from its finished folds.

    With --dataset, --data-root and --sheet instead of SOURCE, every video of a spotting
    release is spotted and scored under the MEGC rule (IoU >= 0.5, each expression matched
    once): with the default thresholds, and leave-one-subject-out with the thresholds chosen
    on the other subjects' videos: the run folder of --config with the training-free spotter,
    and default_intervals.csv.

    Exit status: 0 done; 2 unusable input (missing or unreadable file, a folder without
    --fps, an option out of range); 3 no face found.
    """
    from fervid.cli.common import USER_ERRORS, check_output_dir, console, fail
    from fervid.errors import OptionError
    from fervid.faces import NoFaceFoundError
    from fervid.predict.spot_outputs import write_spot_outputs
    from fervid.predict.spotting import SpotSettings, spot_frames

    try:
        if min(micro_k, macro_k, max_micro) <= 0 or detect_every < 1:
            raise OptionError("--micro-k, --macro-k and --max-micro must be > 0 and "
                              "--detect-every >= 1")
        if (source is not None) + (dataset is not None) + (config is not None) != 1:
            raise OptionError("give a video or frame folder, or --dataset with --data-root "
                              "and --sheet, or --config, not both")
        check_output_dir(out)
        if config is not None:
            _spot_config(config, set_, data_root, sheet, out)
            return
        settings = SpotSettings(micro_k_seconds=micro_k, macro_k_seconds=macro_k,
                                max_micro_seconds=max_micro, z_micro=z_micro,
                                z_macro=z_macro, detect_every=detect_every)
        if dataset is not None:
            _spot_release(dataset, data_root, sheet, out, settings, skip_missing)
            return
        result = spot_frames(source, fps=fps, settings=settings)
        write_spot_outputs(result, out, str(source))
    except NoFaceFoundError as e:
        raise fail(str(e), EXIT_NO_FACE) from None
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    micro = sum(s.kind == "micro" for s in result.intervals)
    console.print(f"{result.n_frames} frames at {result.fps:g} fps "
                  f"({int(result.face.sum())} with a face): {micro} micro, "
                  f"{len(result.intervals) - micro} macro intervals; wrote {out}",
                  highlight=False)


def _spot_config(config: Path, set_: list[str] | None, data_root: Path | None,
                 sheet: Path | None, out: Path) -> None:
    from pydantic import ValidationError

    from fervid.cli.common import config_overrides, console
    from fervid.config import ConfigError, load_config, validation_problems
    from fervid.config.spotting import SpotConfig
    from fervid.predict.spot_release import run_spotting

    cfg = load_config(config, config_overrides(set_), SpotConfig)
    # Paths are set after the YAML parse, which would misread some of them (``a: b``).
    given = {k: str(v) for k, v in (("root", data_root), ("sheet", sheet)) if v is not None}
    if given:
        raw = cfg.model_dump()
        raw["data"].update(given)
        try:
            cfg = SpotConfig.model_validate(raw)
        except ValidationError as e:
            raise ConfigError(f"{config}: invalid config: {validation_problems(e)}") from None
    metrics = run_spotting(cfg, out, lambda line: console.print(line, highlight=False))
    parts = ", ".join(f"{k} F1 {metrics[k]['f1']:.3f}" for k in ("micro", "macro", "overall"))
    console.print(f"{cfg.spotter}, leave-one-subject-out: {parts}", highlight=False)
    console.print(f"{metrics['videos']} videos, {metrics['frames']} frames, "
                  f"{metrics['seconds']:g} s; wrote {out}", highlight=False)


def _spot_release(dataset: str, data_root: Path | None, sheet: Path | None, out: Path,
                  settings, skip_missing: bool) -> None:
    from fervid.cli.common import console
    from fervid.errors import OptionError
    from fervid.predict.spot_release import spot_release

    if data_root is None or sheet is None:
        raise OptionError("--dataset needs --data-root and --sheet")
    metrics = spot_release(dataset, data_root, sheet, out, settings=settings,
                           skip_missing=skip_missing)
    for name in ("default", "loso"):
        parts = ", ".join(f"{k} F1 {metrics[name][k]['f1']:.3f}"
                          for k in ("micro", "macro", "overall"))
        console.print(f"{name}: {parts}", highlight=False)
    console.print(f"{metrics['videos']} videos, {metrics['frames']} frames; wrote {out}",
                  highlight=False)
