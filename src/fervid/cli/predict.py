"""``fervid predict`` and ``fervid export``: a trained model on a new video, and as ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

#: Exit status of a video without any face (a clear message, no traceback).
EXIT_NO_FACE = 3


def predict(
    video: Annotated[Path, typer.Argument(
        help="A video file (anything FFmpeg reads; GIFs are timed by their frame delays).")],
    checkpoint: Annotated[Path, typer.Option(
        help="A fold model RUN_DIR/models/fold_*.pt or a `fervid fit` RUN/model.pt "
             "(self-describing: config, classes and input spec inside).")],
    out: Annotated[Path, typer.Option(help="Folder for predictions.json, timeline.png, "
                                           "face_track.csv, frame_probs.csv (frame models) "
                                           "and annotated.mp4.")],
    window: Annotated[float, typer.Option(min=0.05, help="Window length, seconds.")] = 1.0,
    stride: Annotated[float, typer.Option(min=0.05, help="Step between windows, seconds.")]
    = 0.5,
    annotate: Annotated[bool, typer.Option(
        help="Also write annotated.mp4 with the face box and the label.")] = False,
    onnx: Annotated[Path | None, typer.Option(
        help="Run the model from this file (`fervid export`) with onnxruntime.")] = None,
    detect_every: Annotated[int, typer.Option(
        min=1, help="Run the face detector every N frames; landmarks track in between.")] = 5,
    face: Annotated[str, typer.Option(
        help="Which face to follow when several are in view: 'largest', 'left:N' (the N-th "
             "from the left, 1 = leftmost) or 'at:X,Y' (nearest that pixel). Applied when the "
             "track starts or is lost; then the same face is followed.")] = "largest",
    min_face_fraction: Annotated[float, typer.Option(
        min=0.01, max=1.0, help="Frame models: skip windows with a face in fewer than this "
                                "fraction of their frames.")] = 0.5,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Expression probabilities over time for the face in VIDEO.

    Detects, tracks and aligns one face (the largest, or the one --face names). Window models
    (DSSI, dynamic image, apex frame or 16-frame clip, as the checkpoint says) classify each
    sliding window with a face in every frame; the clip-level result is the mean of the
    windows' probabilities. Frame models (`fervid fit`) classify every frame with a face
    alone; a window is the mean of its face frames' probabilities and the clip-level result
    the mean over all frames with a face.

    Long videos stream through in bounded memory, with a progress bar and its ETA. Rotated
    videos (a phone's display matrix) are turned upright first, as players show them; a
    variable frame rate is read at its mean rate (both are noted in predictions.json).

    Exit status: 0 done; 2 unusable input (missing or unreadable file, not a video, a
    checkpoint that does not describe a video model, an empty, truncated or damaged video,
    a still image, a clip too short for a window); 3 no face found in the video.
    """
    from fervid.cli.common import USER_ERRORS, check_output_dir, console, fail
    from fervid.faces import NoFaceFoundError
    from fervid.predict import predict_video

    try:
        check_output_dir(out)
        result = predict_video(video, checkpoint, window_s=window, stride_s=stride,
                               out_dir=out, annotate=annotate, onnx_path=onnx,
                               detect_every=detect_every, progress=progress, face=face,
                               min_face_fraction=min_face_fraction)
    except NoFaceFoundError as e:
        raise fail(str(e), EXIT_NO_FACE) from None
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    _print_prediction(result, console)


def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A fold model RUN_DIR/models/fold_*.pt or a `fervid fit` RUN/model.pt.")],
    onnx: Annotated[Path, typer.Option(help="The ONNX file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset.")] = 17,
) -> None:
    """Export a checkpoint's model (logits only) to ONNX.

    The file is kept only if onnxruntime reproduces the torch logits within 1e-4 on a random
    input of the checkpoint's input shape. `fervid predict --onnx` runs it.

    Exit status: 0 written; 2 unusable input or output (a broken checkpoint, an --onnx path
    that is a folder, lies under a file or cannot be written).
    """
    from fervid.cli.common import USER_ERRORS, check_output_file, console, fail
    from fervid.predict.onnx import MAX_ABS_DIFF, export_onnx

    try:
        check_output_file(onnx, "--onnx")
        diff = export_onnx(checkpoint, onnx, opset=opset)
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    console.print(f"wrote {onnx}: onnxruntime logits within {diff:.2e} of torch "
                  f"(limit {MAX_ABS_DIFF:g})", highlight=False)


def _print_prediction(result, console: Console) -> None:
    table = Table(title=f"{result.video}: {result.label}")
    table.add_column("class")
    table.add_column("clip probability", justify="right")
    for name, p in zip(result.classes, result.probs, strict=True):
        table.add_row(f"[bold]{name}[/]" if name == result.label else name, f"{p:.3f}")
    console.print(table)
    stages = ", ".join(f"{k} {v:.2f} s" for k, v in result.stage_s.items() if k != "total")
    faces = (f" ({result.n_face_frames} with a face, each classified)"
             if result.frame_probs is not None else "")
    console.print(f"{len(result.windows)} windows ({len(result.skipped)} skipped: "
                  f"{result.skip_reason}), {result.n_frames} frames{faces} in "
                  f"{result.stage_s['total']:.2f} s ({result.frames_per_second:.1f} frames/s, "
                  f"{result.fps:.3g} fps from {result.fps_source}): {stages}", highlight=False)
    if result.max_faces > 1:
        console.print(f"up to {result.max_faces} faces in a frame; followed: {result.face} "
                      "(--face to choose another)", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False)
    jitter = result.landmark_jitter
    if jitter:
        console.print(f"landmark motion per frame in a 112 px crop: {jitter['raw']:.3f} px raw, "
                      f"{jitter['smoothed']:.3f} px smoothed", highlight=False)
    for name, path in result.files.items():
        console.print(f"  {name}: {path}", highlight=False)
