"""The one output type of every model: logits plus named features, extras and, for an
emotion model aided by action units, AU logits."""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModelOutput(NamedTuple):
    """What every fervid model's ``forward`` returns.

    A named tuple rather than a dataclass: Fabric, DDP and ``torch.utils._pytree`` take tuples
    apart and put them back without copying tensors.

    Attributes
    ----------
    logits
        ``(B, num_classes)`` (the fold-batched STSTNet: ``(B, F, num_classes)``).
    features
        ``(B, D)``: the clip feature the head reads, which feature losses (DE-Loss, EC-STFL)
        use; None where a model exposes none.
    extras
        Named extra outputs, e.g. ``segment_weights`` ``(B, K)``: SMA-STN's temporal attention.
    au_logits
        ``(B, A)``: one logit per action unit (a sigmoid each) from the AU head an emotion model
        carries beside its emotion head when AUs aid its training (``train.au_weight``,
        :class:`fervid.models.au_head.WithAuHead`); None otherwise.
    """

    logits: torch.Tensor
    features: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = {}  # noqa: RUF012  (never mutated: rebuilt per call)
    au_logits: torch.Tensor | None = None

    @property
    def segment_weights(self) -> torch.Tensor | None:
        """SMA-STN's temporal attention ``(B, K)``, or None."""
        return self.extras.get("segment_weights")
