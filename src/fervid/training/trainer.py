"""The one trainer: the epoch loop, its log and its resume state, for every protocol.

LOSO's sequential engine, the k-fold and hold-out (``fervid fit``) all train through
:class:`Trainer`; only the fold-batched STSTNet engine (:mod:`fervid.training.fold_batched`) has
a loop of its own. What used to differ between protocols is a :class:`Hook`: weight averaging,
test traces, inner-validation checks and best-validation selection.

**Seeding rule** (one for every protocol). A training with seed ``s`` builds its model under
``torch.manual_seed(s)`` and its loss under ``s + 1``, each in a forked generator
(:func:`seeded`); the loop starts from ``torch.manual_seed(s)``; batch order and augmentation
draw from the caller's own generators, seeded from ``s`` (LOSO: ``s`` and ``s + 2``). A resume
restores every generator, so a resumed training continues exactly as an uninterrupted one.

**Resume state** (``RUN/checkpoints/NAME.pt``, one format, written atomically after every epoch
when a path is given): model, optimizer, scheduler, loss, the torch and CUDA generator states,
the caller's generators, each hook's state and the number of finished epochs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from fervid.errors import FervidError, library_reason, path_error
from fervid.files import atomic_write, remove_stale_tmp
from fervid.progress import ProgressLike
from fervid.training.loop import EpochLogger, EpochStats, train_one_epoch

T = TypeVar("T")

#: The ``format`` field of a resume state: states of another format are refused, not misread.
STATE_FORMAT = "fervid-trainer-1"


class TrainingStateError(FervidError, ValueError):
    """A resumable training state that cannot be used (empty, damaged, another format)."""


def seeded(seed: int, build: Callable[[], T]) -> T:
    """``build()`` under ``torch.manual_seed(seed)`` in a forked generator: what it draws
    depends on ``seed`` alone, and the caller's global generator does not move."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class Hook:
    """Something a protocol adds to the epoch loop; every method is optional.

    ``key`` names the hook's part of the resume state (unique within a trainer).
    """

    key = "hook"

    def after_epoch(self, epoch: int, model: nn.Module) -> dict:
        """Called after each finished epoch (1-based); returns extra epoch-log fields."""
        return {}

    def finish(self, model: nn.Module, epoch: int) -> tuple[nn.Module, int]:
        """The model the training returns and the epoch it stands for (default: unchanged)."""
        return model, epoch

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass(frozen=True)
class Trained:
    """The model a training returns and the epoch it stands for (the last, or a chosen one:
    ``epoch`` 0 when no epoch ran)."""

    model: nn.Module
    epoch: int


class Trainer:
    """Trains one model for ``epochs`` epochs through Lightning Fabric.

    Parameters
    ----------
    fabric
        The run's Fabric (:func:`fervid.training.setup.make_fabric`).
    seed
        The training's seed (the rule in the module docstring).
    epochs
        Epochs to train.
    log
        Where each epoch's row goes (``epoch``, ``loss``, ``train_acc``, hook fields, ``lr``,
        and the epoch's wall time under ``time_field``); None: no log.
    state_path
        The resume state, saved after every epoch and loaded at the start; None: no resume.
    hooks
        :class:`Hook` s, called in order after every epoch.
    generators
        The caller's named random generators (batch order, augmentation), kept in the state.
    shared_batches
        Whether the ranks share each batch (DDP): the epoch statistics are summed over ranks
        and rank 0 alone writes the log and the state. Otherwise every process writes its own.
    progress, label
        A progress display and the label of this training's bar.
    batches_total
        Samples per epoch: with it, a second bar follows the batches of the current epoch.
    time_field, log_lr
        The log field of each epoch's wall time (None: not logged); whether ``lr`` is logged.
    """

    def __init__(self, fabric, *, seed: int, epochs: int, log: EpochLogger | None = None,
                 state_path: Path | None = None, hooks: Iterable[Hook] = (),
                 generators: dict[str, torch.Generator] | None = None,
                 shared_batches: bool = False, progress: ProgressLike | None = None,
                 label: str = "epochs", batches_total: int | None = None,
                 time_field: str | None = None, log_lr: bool = False):
        self.fabric, self.seed, self.epochs = fabric, seed, epochs
        self.log, self.state_path, self.hooks = log, state_path, list(hooks)
        self.generators = dict(generators or {})
        self.shared = shared_batches and fabric.world_size > 1
        self.progress, self.label, self.batches_total = progress, label, batches_total
        self.time_field, self.log_lr = time_field, log_lr
        keys = [h.key for h in self.hooks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"hook keys must be unique, got {keys}")

    @property
    def writes(self) -> bool:
        """Whether this process writes the log and the state."""
        return not self.shared or self.fabric.global_rank == 0

    def fit(self, model: nn.Module, criterion: nn.Module, optimizer: torch.optim.Optimizer,
            batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
            scheduler: torch.optim.lr_scheduler.LRScheduler | None = None) -> Trained:
        """Train ``model`` (set up by the caller) on ``batches(epoch)`` (0-based epoch →
        ``(x, y)`` batches, ``x`` as the model takes it, ``y`` ``(B,)``), resuming from the
        state when there is one. Returns the hooks' final model (by default the last)."""
        torch.manual_seed(self.seed)
        start = self._restore(model, criterion, optimizer, scheduler)
        if self.log is not None and self.writes:
            self.log.truncate_after(start)
        bar = self.progress
        task = bar.add_task(self.label, total=self.epochs, completed=start, status="") \
            if bar is not None else None
        inner = (bar.add_task("batches", total=self.batches_total, status="")
                 if bar is not None and self.batches_total else None)
        on_batch = (lambda n: bar.advance(inner, n)) if inner is not None else None
        for epoch in range(start, self.epochs):
            tick = time.monotonic()
            if inner is not None:
                bar.update(inner, completed=0, status=f"epoch {epoch + 1}")
            stats = train_one_epoch(model, criterion, optimizer, batches(epoch),
                                    self.fabric.backward, scheduler, on_batch)
            stats = self._all_ranks(stats)
            row = {"epoch": epoch + 1, "loss": round(stats.loss, 6),
                   "train_acc": round(stats.train_acc, 6)}
            for hook in self.hooks:
                row.update(hook.after_epoch(epoch + 1, model))
            if self.log_lr:
                row["lr"] = optimizer.param_groups[0]["lr"]
            if self.time_field:
                row[self.time_field] = round(time.monotonic() - tick, 2)
            # The row before the state: a kill between them redoes the epoch, and the resume
            # drops the row (truncate_after); the other order would lose it.
            if self.log is not None and self.writes:
                self.log.append(**row)
            self._save(epoch + 1, model, criterion, optimizer, scheduler)
            if bar is not None:
                bar.update(task, advance=1, status=f"loss {stats.loss:.4f}")
        if bar is not None:
            bar.remove_task(task)
            if inner is not None:
                bar.remove_task(inner)
        result, chosen = model, self.epochs
        for hook in self.hooks:
            result, chosen = hook.finish(result, chosen)
        return Trained(result, chosen)

    def finished(self) -> None:
        """Remove the resume state once the caller has written what the training made."""
        if self.state_path is not None and self.writes:
            self.state_path.unlink(missing_ok=True)

    def _all_ranks(self, stats: EpochStats) -> EpochStats:
        """One rank's epoch statistics merged over every rank (sample-weighted)."""
        if not self.shared:
            return stats
        sums = torch.tensor([stats.loss * stats.n, stats.train_acc * stats.n, stats.n],
                            dtype=torch.float64, device=self.fabric.device)
        loss, correct, n = self.fabric.all_reduce(sums, reduce_op="sum").tolist()
        return EpochStats(loss / max(n, 1), correct / max(n, 1), int(n))

    def _save(self, epoch: int, model, criterion, optimizer, scheduler) -> None:
        if self.state_path is None:
            return
        if self.writes:
            cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
            state = {"format": STATE_FORMAT, "epoch": epoch, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "criterion": criterion.state_dict(),
                     "scheduler": None if scheduler is None else scheduler.state_dict(),
                     "torch_rng": torch.get_rng_state(), "cuda_rng": cuda,
                     "generators": {k: g.get_state() for k, g in self.generators.items()},
                     "hooks": {h.key: h.state_dict() for h in self.hooks}}
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(self.state_path, lambda p: torch.save(state, p))
        if self.shared:
            self.fabric.barrier()

    def _restore(self, model, criterion, optimizer, scheduler) -> int:
        """Load the resume state into the objects; returns the finished epochs (0)."""
        if self.state_path is None:
            return 0
        if self.writes:
            remove_stale_tmp(self.state_path)  # left by a save a kill interrupted
        if self.shared:
            self.fabric.barrier()
        if not self.state_path.exists():
            return 0
        saved = check_state_format(self.state_path, load_training_state(self.state_path))
        model.load_state_dict(saved["model"])
        criterion.load_state_dict(saved["criterion"])  # e.g. the centres of a centre loss
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(saved["cuda_rng"])
        for name, generator in self.generators.items():
            generator.set_state(saved["generators"][name])
        for hook in self.hooks:
            hook.load_state_dict(saved["hooks"].get(hook.key, {}))
        return int(saved["epoch"])


def load_training_state(path: Path | str, *, weights_only: bool = True) -> dict:
    """The resumable training state a run saved at ``path`` (``RUN/checkpoints/NAME.pt``).

    Raises
    ------
    TrainingStateError
        Naming the file when it is empty, damaged, holds no dict or a state of another format
        (a trainer state without :data:`STATE_FORMAT`): deleting it restarts that training from
        its first epoch.
    """
    path = Path(path)
    redo = "delete it to restart that training from its first epoch"
    if path.stat().st_size == 0:
        raise TrainingStateError(f"{path}: the resumable training state is empty (0 bytes); "
                                 f"{redo}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=weights_only)
    except OSError as err:
        raise path_error(path, err, "training state") from err
    except Exception as err:  # torch raises many types for a damaged file
        raise TrainingStateError(f"{path}: the resumable training state is damaged "
                                 f"({library_reason(err)}); {redo}") from err
    if not isinstance(state, dict):
        raise TrainingStateError(f"{path}: holds a {type(state).__name__}, not a training "
                                 f"state; {redo}")
    return state


def check_state_format(path: Path, state: dict) -> dict:
    """``state`` when it is a :class:`Trainer` state, else a :class:`TrainingStateError`."""
    if state.get("format") != STATE_FORMAT:
        raise TrainingStateError(f"{path}: a training state of an earlier fervid (not "
                                 f"{STATE_FORMAT}); delete it to restart that training from "
                                 "its first epoch")
    return state
