"""The one output type of every model: logits plus named features and extras."""

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
    """

    logits: torch.Tensor
    features: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = {}  # noqa: RUF012  (never mutated: rebuilt per call)

    @property
    def segment_weights(self) -> torch.Tensor | None:
        """SMA-STN's temporal attention ``(B, K)``, or None."""
        return self.extras.get("segment_weights")
