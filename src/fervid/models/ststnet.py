"""STSTNet: shallow triple-stream three-dimensional CNN (Liong et al., FG 2019).

The input is the onset→apex optical flow "image" of a micro-expression: horizontal flow u,
vertical flow v and optical strain, 28×28. Three parallel convolutions (3, 5 and 8 filters,
3×3, padding 2) each go conv → ReLU → BatchNorm → max-pool 3/3 → dropout; the streams are
concatenated, average-pooled 2/2 and classified by one linear layer.

Parameter names follow the authors' released weights (``conv1..3``, ``bn1..3``, ``fc``), so
their per-subject ``.pth`` files load with ``load_state_dict``.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.registry import register_model

#: Filters of the three streams, in concatenation order.
STREAM_WIDTHS = (3, 5, 8)


class STSTNet(nn.Module):
    """STSTNet for one training set.

    Parameters
    ----------
    in_chans : int
        Input channels (3: u, v, strain).
    num_classes : int
        Output classes.
    drop_rate : float
        Dropout after each stream's pooling (the paper: 0.5).

    Shapes
    ------
    input ``(B, in_chans, 28, 28)`` → logits ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 3, drop_rate: float = 0.5):
        super().__init__()
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        w1, w2, w3 = STREAM_WIDTHS
        self.conv1 = nn.Conv2d(in_chans, w1, kernel_size=3, padding=2)
        self.conv2 = nn.Conv2d(in_chans, w2, kernel_size=3, padding=2)
        self.conv3 = nn.Conv2d(in_chans, w3, kernel_size=3, padding=2)
        self.relu = nn.ReLU()
        self.bn1, self.bn2, self.bn3 = nn.BatchNorm2d(w1), nn.BatchNorm2d(w2), nn.BatchNorm2d(w3)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=3, padding=1)
        self.avgpool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.dropout = nn.Dropout(p=drop_rate)
        self.num_features = 5 * 5 * sum(STREAM_WIDTHS)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, 28, 28)`` → pooled features ``(B, 400)``."""
        streams = []
        for conv, bn in ((self.conv1, self.bn1), (self.conv2, self.bn2), (self.conv3, self.bn3)):
            streams.append(self.dropout(self.maxpool(bn(self.relu(conv(x))))))
        return self.avgpool(torch.cat(streams, 1)).flatten(1)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


@register_model(protocols=("loso",))
def ststnet(*, in_chans: int = 3, num_classes: int = 3, drop_rate: float = 0.5) -> STSTNet:
    """Build an STSTNet with random initialisation (PyTorch defaults, as the authors')."""
    return STSTNet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
