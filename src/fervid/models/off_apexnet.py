"""OFF-ApexNet (Gan, Liong et al., Signal Processing: Image Communication 2019).

Optical-flow features of the apex frame: the horizontal (u) and vertical (v) onset→apex flow,
28×28, each feed its own stream of two conv 5×5 → ReLU → max-pool 2×2 stages (6 then 16
filters); the streams are concatenated and classified by two fully connected layers of 1024
units.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.config import ConfigError
from fervid.models.output import ModelOutput
from fervid.models.registry import register_model


def _stream(in_chans: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
    )


class OffApexNet(nn.Module):
    """Two-stream OFF-ApexNet.

    Parameters
    ----------
    in_chans : int
        Input channels; the first is the u stream, the second the v stream (2).
    num_classes : int
        Output classes.
    drop_rate : float
        Dropout before each fully connected layer (0 in the paper's description).
    size : int
        Input side (28).

    Shapes
    ------
    input ``(B, 2, size, size)`` → logits ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 2, num_classes: int = 3, drop_rate: float = 0.0,
                 size: int = 28):
        super().__init__()
        if in_chans != 2:
            raise ConfigError(f"OFF-ApexNet takes 2 channels (u, v), got in_chans={in_chans} "
                              f"(set data.channels: [0, 1])")
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        self.stream_u, self.stream_v = _stream(1), _stream(1)
        flat = 2 * 16 * (size // 4) ** 2
        self.fc1 = nn.Linear(flat, 1024)
        self.fc2 = nn.Linear(1024, 1024)
        self.num_features = 1024
        self.head = nn.Linear(1024, num_classes)
        self.dropout = nn.Dropout(drop_rate)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 2, H, W)`` → features ``(B, 1024)``."""
        u = self.stream_u(x[:, :1]).flatten(1)
        v = self.stream_v(x[:, 1:2]).flatten(1)
        h = torch.relu(self.fc1(self.dropout(torch.cat([u, v], 1))))
        return torch.relu(self.fc2(self.dropout(h)))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


@register_model(protocols=("loso",))
def off_apexnet(*, in_chans: int = 2, num_classes: int = 3, drop_rate: float = 0.0,
                size: int = 28) -> OffApexNet:
    return OffApexNet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate, size=size)
