"""``fervid predict --spot``: spot the expressions of a long video, then classify each
micro-expression interval (:mod:`fervid.predict.spot_recognise`)."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

#: Exit status of a video without any face, as ``fervid predict``'s.
EXIT_NO_FACE = 3


def predict_spotted(video: Path, out: Path, checkpoint: str | None, *, fps: float | None,
                    face: str, detect_every: int, device: str, batch_size: int,
                    onnx: Path | None, classify_macro: bool, annotate: bool) -> None:
    """Run spot-then-recognise, write its files and print the intervals with their classes;
    user errors end as one line (exit 2; 3 without a face)."""
    from fervid.cli.common import USER_ERRORS, check_output_dir, console, fail
    from fervid.errors import OptionError
    from fervid.faces import NoFaceFoundError
    from fervid.predict.api import describe_checkpoint
    from fervid.predict.spot_recognise import spot_then_recognise
    from fervid.predict.spot_recognise_outputs import write_spot_recognition
    from fervid.predict.spotting import SpotSettings
    from fervid.runs.checkpoint import load_checkpoint

    try:
        if annotate:
            raise OptionError("--annotate is not available with --spot (the timeline.png "
                              "names each interval's class)")
        check_output_dir(out)
        ckpt = load_checkpoint(checkpoint)
        if checkpoint is None:
            console.print(f"no --checkpoint given: using {describe_checkpoint(ckpt)}",
                          highlight=False, soft_wrap=True)
        result = spot_then_recognise(video, ckpt, fps=fps, device=device,
                                     settings=SpotSettings(detect_every=detect_every),
                                     classify_macro=classify_macro, face=face,
                                     batch_size=batch_size, onnx_path=onnx)
        paths = write_spot_recognition(result, out)
    except NoFaceFoundError as e:
        raise fail(str(e), EXIT_NO_FACE) from None
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    spot = result.spot
    table = Table(title=f"{video}: {len(result.intervals)} intervals spotted, "
                        f"{result.n_classified} classified by {result.model}")
    for col in ("onset", "apex", "offset", "seconds", "type", "class", "p"):
        table.add_column(col, justify="left" if col in ("type", "class") else "right")
    for r in result.intervals:
        s = r.interval
        label = r.label(result.classes)
        table.add_row(str(s.onset), str(s.apex), str(s.offset),
                      f"{(s.onset - 1) / spot.fps:.2f}-{(s.offset - 1) / spot.fps:.2f}",
                      s.kind, label or "– " + r.status.split(": ", 1)[-1],
                      "" if r.probs is None else f"{max(r.probs):.3f}")
    console.print(table)
    console.print(f"{spot.n_frames} frames at {spot.fps:g} fps ({int(spot.face.sum())} with a "
                  f"face); spotting {result.seconds['spot']:.2f} s, recognition "
                  f"{result.seconds['recognise']:.2f} s", highlight=False)
    for name, path in paths.items():
        console.print(f"  {name}: {path}", highlight=False)
