"""``fervid spot``: where in a long video the face shows micro- and macro-expressions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_NO_FACE = 3


def spot(
    source: Annotated[Path, typer.Argument(
        help="A video file, or a folder of numbered frames (give --fps).")],
    out: Annotated[Path, typer.Option(help="Output folder: intervals.csv, spot.json, "
                                           "timeline.png.")],
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
        check_output_dir(out)
        settings = SpotSettings(micro_k_seconds=micro_k, macro_k_seconds=macro_k,
                                max_micro_seconds=max_micro, z_micro=z_micro,
                                z_macro=z_macro, detect_every=detect_every)
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
