"""What protocols add to the one epoch loop (:class:`fervid.training.trainer.Hook` s).

- :class:`EveryEpochs`: a probe every N epochs but the last (test traces, inner-validation
  checks);
- :class:`WeightAveraging`: the mean weights of the last N epochs (``train.average_last``);
- :class:`BestValidation`: each epoch scored on a validation split carved from the training
  data or given by the release; keeps the epoch of best validation accuracy when asked to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from fervid.training.trainer import Hook


class EveryEpochs(Hook):
    """``probe(epoch, model)`` after every ``every``-th epoch, but not after the last one (the
    caller has the last model anyway). What the probe returns is kept by epoch in ``results``
    and in the resume state, so a resumed training still has the results of the epochs it had
    finished (the inner-validation scores of a k-fold fold)."""

    def __init__(self, key: str, every: int, epochs: int,
                 probe: Callable[[int, nn.Module], object]):
        self.key, self.every, self.epochs, self.probe = key, every, epochs, probe
        self.results: dict[int, object] = {}

    def after_epoch(self, epoch: int, model: nn.Module) -> dict:
        if self.every and epoch % self.every == 0 and epoch < self.epochs:
            self.results[epoch] = self.probe(epoch, model)
        return {}

    def state_dict(self) -> dict:
        return {"results": dict(self.results)}

    def load_state_dict(self, state: dict) -> None:
        self.results = dict(state.get("results", {}))


class WeightAveraging(Hook):
    """The mean of the weights after each of the last ``last`` epochs (torch's SWA average),
    with BatchNorm statistics recomputed by one pass over ``bn_batches()`` (the training
    samples in order, unaugmented), as torch's SWA recipe does."""

    key = "weight_averaging"

    def __init__(self, model: nn.Module, last: int, epochs: int,
                 bn_batches: Callable[[], Iterable[torch.Tensor]], device: torch.device):
        from torch.optim.swa_utils import AveragedModel

        self.averaged = AveragedModel(model, use_buffers=False)
        self.last, self.epochs, self.bn_batches, self.device = last, epochs, bn_batches, device

    def after_epoch(self, epoch: int, model: nn.Module) -> dict:
        if epoch > self.epochs - self.last:
            self.averaged.update_parameters(model)
        return {}

    def finish(self, model: nn.Module, epoch: int) -> tuple[nn.Module, int]:
        from torch.optim.swa_utils import update_bn

        update_bn(self.bn_batches(), self.averaged, device=self.device)
        return self.averaged.module, epoch

    def state_dict(self) -> dict:
        return {"averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.averaged.load_state_dict(state["averaged"])


class BestValidation(Hook):
    """Scores every epoch on a validation split: ``score(model)`` returns a summary with
    ``acc`` and ``uar`` (or None when there is no validation split), logged as ``val_acc``,
    ``val_uar``. With ``keep_best`` the training returns the weights of the epoch of best
    validation accuracy (ties: the earlier); nothing else is ever chosen on it."""

    key = "best_validation"

    def __init__(self, score: Callable[[nn.Module], dict | None], keep_best: bool):
        self.score, self.keep_best = score, keep_best
        self.best_acc, self.best_epoch, self.best_state = -1.0, 0, None
        self.scores: dict[int, float] = {}  # validation accuracy of each epoch

    def after_epoch(self, epoch: int, model: nn.Module) -> dict:
        val = self.score(model)
        if val is not None:
            self.scores[epoch] = val["acc"]
        if self.keep_best and val is not None and val["acc"] > self.best_acc:
            self.best_acc, self.best_epoch = val["acc"], epoch
            self.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return {"val_acc": "" if val is None else round(val["acc"], 6),
                "val_uar": "" if val is None else round(val["uar"], 6)}

    def finish(self, model: nn.Module, epoch: int) -> tuple[nn.Module, int]:
        if self.keep_best and self.best_state is not None:
            model.load_state_dict(self.best_state)
            return model, self.best_epoch
        return model, epoch

    def state_dict(self) -> dict:
        return {"best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "best_state": self.best_state, "scores": dict(self.scores)}

    def load_state_dict(self, state: dict) -> None:
        if state:
            self.best_acc, self.best_epoch = state["best_acc"], state["best_epoch"]
            self.best_state, self.scores = state["best_state"], dict(state["scores"])

    def record(self) -> dict:
        """The ``scores`` field of a ``selection.json``: each epoch's validation accuracy."""
        return {str(e): round(v, 6) for e, v in sorted(self.scores.items())}
