"""A shallow optical-flow three-stream network for spotting, in the spirit of SOFTNet (Liong et
al., "Shallow optical flow three-stream CNN for macro- and micro-expression spotting from long
videos", ICIP 2021).

Its input is the optical flow of one frame against the frame ``k`` before it (``k`` about half
an expression's mean length), as three small images: horizontal flow u, vertical flow v and
optical strain, ``size`` × ``size`` (42 in the paper). Each stream sees one of them, as in the
paper (unlike STSTNet, where every stream sees all three): a 3×3 convolution (3, 5 and 8
filters, padding 1) → ReLU → max-pool 3/3; the streams are concatenated, max-pooled 2/2,
flattened, and a hidden layer of 400 units (ReLU, dropout) gives one output per frame: how much
the frame looks like an expression under way (a logit; the spotter trains it against 0/1
pseudo-labels, :mod:`fervid.predict.spot_learned`).
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.registry import register_model

#: Filters of the u, v and strain streams.
STREAM_WIDTHS = (3, 5, 8)
HIDDEN = 400


class SpottingFlowNet(nn.Module):
    """The three-stream network for one training set.

    Parameters
    ----------
    in_chans : int
        Input channels, one stream each (3: u, v, strain).
    num_classes : int
        Outputs per frame (1: the expression score's logit).
    drop_rate : float
        Dropout before the output layer.
    size : int
        The input's side in pixels (42 in the paper).

    Shapes
    ------
    input ``(B, in_chans, size, size)`` → logits ``(B, num_classes)``, features
    ``(B, 400)`` (the hidden layer).
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 1, drop_rate: float = 0.2,
                 size: int = 42):
        super().__init__()
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        widths = [STREAM_WIDTHS[i % len(STREAM_WIDTHS)] for i in range(in_chans)]
        self.streams = nn.ModuleList(nn.Conv2d(1, w, kernel_size=3, padding=1) for w in widths)
        self.relu = nn.ReLU()
        self.pool_streams = nn.MaxPool2d(kernel_size=3, stride=3)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        side = (size // 3) // 2
        self.hidden = nn.Linear(sum(widths) * side * side, HIDDEN)
        self.dropout = nn.Dropout(p=drop_rate)
        self.num_features = HIDDEN
        self.fc = nn.Linear(HIDDEN, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, size, size)`` → hidden features ``(B, 400)``."""
        streams = [self.pool_streams(self.relu(conv(x[:, i:i + 1])))
                   for i, conv in enumerate(self.streams)]
        return self.relu(self.hidden(self.pool(torch.cat(streams, 1)).flatten(1)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


@register_model(protocols=("spotting",))
def softnet_spot(*, in_chans: int = 3, num_classes: int = 1, drop_rate: float = 0.2,
                 size: int = 42) -> SpottingFlowNet:
    """Build the spotting network with random initialisation (PyTorch's defaults)."""
    return SpottingFlowNet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                           size=size)
