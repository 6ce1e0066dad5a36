"""LOSO scored from already-trained models: one state dict per held-out subject, no training.

``fervid evaluate --config CONFIG --fold-weights DIR``: the fold that holds out subject ``s``
(:class:`~fervid.protocol.folds.LosoFolds`) is scored by ``DIR/<s>.pth``, a PyTorch state dict
of the config's model, e.g. STSTNet's released per-subject weights for the MEGC2019 composite
(christy1206/STSTNet ``STSTNet_Weights/``: ``006.pth``, ``s01.pth``, ``sub26.pth``, ...).

Key names: the authors' STSTNet weights use exactly fervid's parameter names (``conv1..3``,
``bn1..3``, ``fc``; :mod:`fervid.models.ststnet` is written after them), so they load strictly
as they are and no key mapping is needed. Any other model's weights must carry its own names.

The run directory is a LOSO run's (:mod:`fervid.runs.store`): ``run.json`` (with
``trained: false`` and ``fold_weights``: the folder), ``folds.csv``, ``folds/fold_NNN.csv``,
``models/fold_NNN.pt`` (each fold's weights as a self-describing checkpoint) and the merged
results of :func:`~fervid.runs.results.build_loso_results`, so ``fervid report`` reads it.
Models run in float32 whatever ``run.precision`` the config trains with: scoring released
weights should not depend on the training-speed setting. Rerunning resumes: finished folds
are kept.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from fervid.config import ConfigError, LosoConfig
from fervid.errors import FervidError, PathNotFoundError, library_reason, path_error
from fervid.models import model_from_config
from fervid.models.pretrained import state_mismatch
from fervid.progress import progress_bar
from fervid.protocol.fold_runner import FoldOutcome, run_folds
from fervid.protocol.folds import LosoFolds
from fervid.protocol.loso import open_loso_run
from fervid.protocol.loso_engines import fold_model_payload
from fervid.protocol.splits import Fold, loso_folds
from fervid.representation.loso_inputs import LosoData
from fervid.runs.checkpoint import CHECKPOINT_FORMAT
from fervid.runs.results import LosoReport, build_loso_results
from fervid.runs.store import FoldPredictions, RunStore, loso_fold_frame
from fervid.training.loop import evaluate, tensor_eval_batches
from fervid.training.setup import make_fabric

#: The file name of subject ``s``'s weights is ``s + WEIGHT_SUFFIX``.
WEIGHT_SUFFIX = ".pth"
#: The precision fold weights are scored in (recorded in the fingerprint).
EVAL_PRECISION = "32-true"


class FoldWeightsError(FervidError, ValueError):
    """A fold-weights folder lacks a held-out subject's file, or a file is not weights that fit
    the config's model; the message names the folder or file."""


def fold_weight_files(folds: LosoFolds, weights_dir: Path) -> list[Path]:
    """``weights_dir/<subject>.pth`` of every fold, in fold order.

    Raises
    ------
    PathNotFoundError
        ``weights_dir`` is not a folder.
    FoldWeightsError
        Subjects of the data have no weight file (all of them listed), or a subject name
        occurs in two data sets, so one file name cannot tell their weights apart.
    """
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise PathNotFoundError(f"{weights_dir}: no such folder (--fold-weights)")
    names = [s.split("/", 1)[1] for s in folds.subjects]
    shared = sorted(n for n, k in Counter(names).items() if k > 1)
    if shared:
        raise FoldWeightsError(
            f"{weights_dir}: subject(s) {', '.join(shared)} occur in more than one data set, "
            f"so <subject>{WEIGHT_SUFFIX} cannot tell their weights apart")
    paths = [weights_dir / f"{n}{WEIGHT_SUFFIX}" for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise FoldWeightsError(
            f"{weights_dir}: no weight file for {len(missing)} of the {len(names)} held-out "
            f"subjects of the data: {', '.join(missing)}")
    return paths


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (on the CPU), or in a fervid checkpoint's ``state_dict``.

    Raises
    ------
    FoldWeightsError
        The file is not a torch file, or holds something other than a state dict (a pickled
        model object is refused: ``weights_only`` loading runs no code from the file).
    """
    try:
        # map_location: the released weights were saved from CUDA tensors.
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise path_error(path, err, "weight file") from err
    except Exception as err:  # torch raises many types for a file it cannot read
        raise FoldWeightsError(f"{path}: not readable as PyTorch weights "
                               f"({library_reason(err)})") from err
    if isinstance(payload, Mapping) and payload.get("format") == CHECKPOINT_FORMAT:
        payload = payload.get("state_dict")  # a fervid fold model: its weights
    if not (isinstance(payload, Mapping) and payload
            and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                    for k, v in payload.items())):
        raise FoldWeightsError(f"{path}: not a state dict (it holds a {type(payload).__name__}"
                               f"; expected parameter names mapped to tensors)")
    return dict(payload)


def load_fold_model(cfg: LosoConfig, path: Path, *, in_chans: int, num_classes: int
                    ) -> nn.Module:
    """The config's model with ``path``'s weights, loaded strictly, float32, in eval mode.

    Raises
    ------
    FoldWeightsError
        The file is not a state dict, or its keys or shapes do not fit the model (the
        missing, unexpected and mis-shaped keys are listed).
    """
    state = read_state_dict(path)
    # The fold weights hold every parameter: never read the file training started from.
    model = model_from_config(cfg.model, in_chans=in_chans, num_classes=num_classes,
                              pretrained=False)
    diff = state_mismatch(model.state_dict(), state)
    problems = [f"{label} {', '.join(items)}" for label, items in
                (("missing", diff.missing), ("unexpected", diff.unexpected)) if items]
    problems += [f"{k} is {a}, the model's {b}" for k, a, b in diff.wrong_shape]
    if problems:
        raise FoldWeightsError(f"{path}: does not fit model {cfg.model.name!r} ({in_chans} "
                               f"channels, {num_classes} classes): {'; '.join(problems)}")
    model.load_state_dict(state, strict=True)
    return model.float().eval()


def evaluate_fold_weights(cfg: LosoConfig, data: LosoData, weights_dir: Path, out: Path, *,
                          data_root: str = "", progress: bool = True) -> LosoReport:
    """Score each LOSO fold of ``data`` with ``weights_dir/<subject>.pth`` into run ``out``.

    ``data.x`` ``(N, C, H, W)`` or ``(N, K+1, C, H, W)`` is cast to float32 per batch; each
    fold's held-out samples get softmax probabilities ``(n, n_classes)``. Returns the merged
    report (``metrics.json``: uf1, uar, per_dataset, ..., ``trained: false``,
    ``fold_weights``).

    Raises
    ------
    FoldWeightsError
        See :func:`fold_weight_files` and :func:`load_fold_model`.
    RunDirError
        ``out`` holds another run (another config, data set or weights folder).
    """
    started = time.monotonic()
    if cfg.group != "subject" or cfg.members:
        raise ConfigError("--fold-weights scores one released model per held-out subject: "
                          "it takes neither group=dataset nor members")
    folds = LosoFolds.from_table(data.table)
    paths = fold_weight_files(folds, weights_dir)  # before the run directory is created
    store = RunStore(out)
    open_loso_run(store, cfg, folds, data_root, precision=EVAL_PRECISION,
                  extra={"trained": False, "fold_weights": str(Path(weights_dir).resolve())})
    finished = set(store.finished(range(len(folds))))
    todo = [f for f in range(len(folds)) if f not in finished]
    # Fabric only resolves the config's accelerator ("auto": a GPU when there is one).
    device = make_fabric(cfg.run.accelerator, EVAL_PRECISION).device
    x = data.x.to(device)

    def score(fold: Fold) -> FoldOutcome:
        model = load_fold_model(cfg, paths[fold.number], in_chans=data.in_chans,
                                num_classes=len(data.classes)).to(device)
        result = evaluate(model, tensor_eval_batches(x, fold.test, cfg.train.batch_size))
        predictions = FoldPredictions(fold.number, fold.test, result.probs.argmax(-1),
                                      result.probs, result.extras.get("segment_weights"))
        return FoldOutcome(loso_fold_frame(predictions, data.table, data.classes),
                           fold_model_payload(cfg, data, model.state_dict()))

    with progress_bar(progress) as bar:
        run_folds(loso_folds(folds, cfg.seed, todo), store, score, bar)
    store.write_wall({"wall_s": time.monotonic() - started, "folds": todo,
                      "host": socket.gethostname(), "rank": 0})
    return build_loso_results(out)
