"""The cross-dataset protocol of ``fervid evaluate --checkpoint``: a trained frame model scored
on another dataset, without training.

Classes are matched by name through :mod:`fervid.datasets.class_names` (a model's ``happy``
is a dataset's ``happiness``). Classes only one side knows are listed and left out: samples
of data-only classes are not scored, and the prediction is the argmax over the classes both
sides know. Writes ``RUN/metrics.json`` (``acc``, ``uar``, ``n_samples``,
``per_class_recall``, ``confusion``, ``classes``, ``left_out``) and ``RUN/predictions.csv``;
``fervid evaluate`` adds ``RUN/report.html``. A release with a test split (FER2013) is scored
on that split only (``metrics.json``'s ``split``), every sample otherwise.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fervid.config import FitConfig
from fervid.datasets.class_names import canonical_class
from fervid.datasets.from_config import read_face_release
from fervid.datasets.registry import dataset_specs
from fervid.errors import FervidError, OptionError
from fervid.files import atomic_write
from fervid.metrics import split_summary
from fervid.representation.face_images import eval_face_batches, load_face_images
from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint
from fervid.runs.store import RunStore, split_prediction_frame
from fervid.training.loop import evaluate


def face_datasets() -> tuple[str, ...]:
    """Datasets a frame model can be scored on (``--dataset``): those registering still faces
    (``DatasetSpec.read_faces``), in registration order."""
    return tuple(s.name for s in dataset_specs() if s.read_faces is not None)


class NoCommonClassError(FervidError, ValueError):
    """The model and the dataset share no class name."""


@dataclass(frozen=True)
class ClassMatch:
    """The classes both sides know, in the dataset's order, with their indices on each side;
    and those only one side knows."""

    common: tuple[str, ...]
    model_index: tuple[int, ...]
    data_index: tuple[int, ...]
    model_only: tuple[str, ...]
    data_only: tuple[str, ...]


def match_classes(model_classes, data_classes, *, where: str = "") -> ClassMatch:
    """Match two class lists by canonical name.

    Raises
    ------
    NoCommonClassError
        No class in common (the message lists both sides).
    """
    model_names = [canonical_class(c) or c for c in model_classes]
    data_names = [canonical_class(c) or c for c in data_classes]
    common = [c for c in data_names if c in model_names]
    if not common:
        raise NoCommonClassError(f"{where}: the model's classes {list(model_classes)} and the "
                                 f"data's {list(data_classes)} have no class in common")
    return ClassMatch(tuple(common), tuple(model_names.index(c) for c in common),
                      tuple(data_names.index(c) for c in common),
                      tuple(c for c in model_names if c not in common),
                      tuple(c for c in data_names if c not in common))


def evaluate_checkpoint(checkpoint: Path, data_root: Path, out: Path,
                        dataset: str | None = None, progress: bool = True) -> dict:
    """Score the frame model ``checkpoint`` on the faces of ``dataset`` under ``data_root``.

    ``dataset`` defaults to the one the model was trained on. Returns the metrics dict.
    """
    started = time.monotonic()
    ckpt = load_checkpoint(checkpoint)
    if ckpt.input_spec.representation != "frame":
        raise OptionError(f"{checkpoint}: cross-dataset evaluation takes a frame model "
                          f"(`fervid fit`); this one takes {ckpt.input_spec.representation} "
                          f"inputs. Score LOSO fold models with `fervid evaluate --config "
                          f"--fold-weights`.")
    cfg = FitConfig.model_validate(ckpt.config)
    name = dataset or cfg.data.dataset
    scorable = face_datasets()
    if name not in scorable:
        raise OptionError(f"--dataset {name!r}: a frame model is scored on one of "
                          f"{', '.join(scorable)}")
    read_cfg = cfg.model_copy(update={"data": cfg.data.model_copy(
        update={"dataset": name, "classes": None})})
    images = read_face_release(read_cfg, data_root)
    table = images.table
    match = match_classes(ckpt.classes, table.classes, where=f"{checkpoint} on {data_root}")
    # A release with a test split (FER2013's PrivateTest) is scored on it alone: its other
    # splits may be what the model was trained and selected on.
    has_test = any(s.split == "test" for s in table)
    split = "test" if has_test else "all"
    keep = np.array([s.label in match.data_index and (not has_test or s.split == "test")
                     for s in table], bool)
    if not keep.any():
        raise NoCommonClassError(f"{data_root}: no sample of the shared classes "
                                 f"{list(match.common)}")
    store = RunStore(out)
    info = {"protocol": "cross_dataset", "name": f"{cfg.name} on {name}", "seed": cfg.seed,
            "classes": list(match.common), "checkpoint": str(checkpoint),
            "data_root": str(data_root), "dataset": name, "split": split}
    store.open(cfg, {**info, "fingerprint": f"{Path(checkpoint).resolve()}|{name}"})
    spec = ckpt.input_spec
    scored = table.filter(keep)  # decode only the faces that are scored
    faces = load_face_images(scored, spec.resize or spec.size, gray=spec.mode == "gray",
                             pixels=None if images.pixels is None else images.pixels[keep],
                             show_progress=progress)
    index = torch.arange(len(scored))
    model = build_model_from_checkpoint(ckpt)
    probs = evaluate(model, eval_face_batches(faces, index, 256, spec.size,
                                              spec.scaling)).probs
    probs = probs[:, list(match.model_index)]
    probs = probs / probs.sum(1, keepdim=True)  # renormalised over the common classes
    preds = probs.argmax(1).numpy()
    to_common = {d: i for i, d in enumerate(match.data_index)}
    labels = np.array([to_common[int(v)] for v in faces.y[index]])
    metrics = {**split_summary(labels, preds, match.common),
               "left_out": {"model_only": list(match.model_only),
                            "data_only": list(match.data_only),
                            "n_samples": int(sum(s.label not in match.data_index
                                                 for s in table))},
               "checkpoint": str(checkpoint), "dataset": name, "split": split,
               "wall_s": round(time.monotonic() - started, 1)}
    clips = [sample.clip for sample in scored]
    split_prediction_frame("evaluation", clips, labels, preds, probs, match.common).to_csv(
        store.root / "predictions.csv", index=False)
    atomic_write(store.root / "metrics.json",
                 lambda p: p.write_text(json.dumps(metrics, indent=2)))
    return metrics
