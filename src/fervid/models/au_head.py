"""An action-unit head beside a model's emotion head: AUs as an aid to emotion recognition
(``train.au_weight``).

The head is one linear layer from the clip feature the emotion head reads (``features``
``(B, D)`` of :class:`~fervid.models.output.ModelOutput`) to one logit per AU, so any model that
exposes its features (``num_features``) can carry it. The AU head is a training aid: a fold's
saved model is the emotion network alone (:func:`emotion_state`), which loads as any model of
its name does.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.config import ConfigError
from fervid.models.output import ModelOutput


class WithAuHead(nn.Module):
    """``net`` with an AU head of ``num_aus`` logits on its clip feature.

    Shapes
    ------
    ``x`` as ``net`` takes it → ``net``'s output with ``au_logits`` ``(B, num_aus)``.
    """

    def __init__(self, net: nn.Module, num_aus: int, *, name: str = ""):
        super().__init__()
        dim = getattr(net, "num_features", None)
        if dim is None:
            raise ConfigError(f"train.au_weight: model {name or type(net).__name__!r} exposes "
                              "no clip feature (num_features) for an AU head")
        if num_aus < 1:
            raise ValueError(f"an AU head needs at least one AU, got {num_aus}")
        self.net = net
        self.au_head = nn.Linear(dim, num_aus)
        self.num_features, self.num_aus = dim, num_aus

    def forward(self, x: torch.Tensor) -> ModelOutput:
        out = self.net(x)
        if out.features is None:
            raise ValueError("an AU head reads the model's features (B, D); it returned none")
        return out._replace(au_logits=self.au_head(out.features))


def emotion_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The emotion network's weights from a :class:`WithAuHead` ``state_dict()``: the AU head
    left out, the rest under the names the bare network has."""
    prefix = "net."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
