"""C3D (Tran et al., ICCV 2015) and the interface shared by the DFEW benchmark networks.

Every network of the DFEW benchmark (methods.md §2) is a :class:`VideoClassifier`: it takes a
clip ``(B, C, T, H, W)`` and exposes ``forward_features`` (the last hidden features, which
EC-STFL reads), ``forward_head`` and ``num_features``, like timm models. The base class lives
here, beside the simplest network, so that the family needs no extra module.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.registry import register_model


class VideoClassifier(nn.Module):
    """Base of the clip classifiers: input check, dropout + linear head, ``forward``.

    Subclasses build their trunk, set ``num_features`` and call :meth:`_init_head`, then
    implement :meth:`forward_features`.

    Parameters
    ----------
    in_chans, num_classes, drop_rate : int, int, float
        Channels of each frame (3 RGB, 1 grayscale), output classes, dropout before the
        classifier.

    Shapes
    ------
    ``(B, in_chans, T, H, W)`` → logits ``(B, num_classes)``.
    """

    num_features: int

    def __init__(self, *, in_chans: int, num_classes: int, drop_rate: float):
        super().__init__()
        if in_chans < 1 or num_classes < 1:
            raise ValueError(f"in_chans and num_classes must be positive, "
                             f"got {in_chans} and {num_classes}")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate must lie in [0, 1), got {drop_rate}")
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate

    def _init_head(self, num_features: int) -> None:
        self.num_features = num_features
        self.head_drop = nn.Dropout(p=self.drop_rate)
        self.fc = nn.Linear(num_features, self.num_classes)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError unless ``x`` is ``(B, in_chans, T, H, W)``."""
        if x.ndim != 5 or x.shape[1] != self.in_chans:
            raise ValueError(f"{type(self).__name__} expects a clip (B, {self.in_chans}, T, H, W), "
                             f"got shape {tuple(x.shape)}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` → last hidden features ``(B, num_features)``."""
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, num_features)`` → logits ``(B, num_classes)``."""
        return self.fc(self.head_drop(features))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """``(B, C, T, H, W)`` → logits ``(B, num_classes)`` and features ``(B, num_features)``."""
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


def init_conv_bn(module: nn.Module) -> None:
    """He init for convolutions, unit/zero BatchNorm, small normal linear layers (from scratch)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.01)
            nn.init.zeros_(m.bias)


def _conv(in_ch: int, out_ch: int) -> nn.Sequential:
    # BatchNorm, absent from the 2015 network, lets it train from scratch at the paper's batch 24.
    return nn.Sequential(nn.Conv3d(in_ch, out_ch, kernel_size=3, padding=1, bias=False),
                         nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True))


def _pool(temporal: int) -> nn.MaxPool3d:
    # ceil_mode keeps one output step when a short clip (T=8) reaches pool5 with a single frame.
    return nn.MaxPool3d(kernel_size=(temporal, 2, 2), stride=(temporal, 2, 2), ceil_mode=True)


class C3D(VideoClassifier):
    """C3D: 8 3x3x3 convolutions, 5 max-pools, fc6/fc7, linear classifier.

    Widths 64-128-256-256-512-512-512-512 as in the original; pool1 is spatial only, pool2-5
    halve time and space. An adaptive average pool to ``(1, 4, 4)`` before fc6 gives the
    112-pixel layout (512·4·4 = 8192 inputs) at any clip size, 224 included. fc6/fc7 are
    ``fc_width`` wide (2048 rather than 4096: DFEW has 7 classes and ~9k training clips).

    Parameters
    ----------
    in_chans, num_classes, drop_rate
        See :class:`VideoClassifier`; ``drop_rate`` also follows fc6 and fc7.
    fc_width : int
        Width of fc6 and fc7, hence ``num_features``.

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)``; H, W >= 16 →
    features ``(B, fc_width)`` (fc7 after ReLU) → logits ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
                 fc_width: int = 2048):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        self.features = nn.Sequential(
            _conv(in_chans, 64), _pool(1),
            _conv(64, 128), _pool(2),
            _conv(128, 256), _conv(256, 256), _pool(2),
            _conv(256, 512), _conv(512, 512), _pool(2),
            _conv(512, 512), _conv(512, 512), _pool(2),
        )
        self.pool = nn.AdaptiveAvgPool3d((1, 4, 4))
        self.fc6 = nn.Sequential(nn.Linear(512 * 16, fc_width), nn.ReLU(inplace=True),
                                 nn.Dropout(p=drop_rate))
        self.fc7 = nn.Sequential(nn.Linear(fc_width, fc_width), nn.ReLU(inplace=True))
        self._init_head(fc_width)
        init_conv_bn(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = torch.flatten(self.pool(self.features(x)), 1)
        return self.fc7(self.fc6(x))


@register_model(protocols=("kfold",))
def c3d(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
        fc_width: int = 2048) -> C3D:
    """C3D of the DFEW benchmark, random init; see :class:`C3D`."""
    return C3D(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
               fc_width=fc_width)
