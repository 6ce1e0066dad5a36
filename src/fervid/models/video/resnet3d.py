"""3D ResNet-18 and R(2+1)D-18 (Tran et al., CVPR 2018) from torchvision, for the DFEW benchmark.

The trunks are torchvision's ``r3d_18`` and ``r2plus1d_18`` built with ``weights=None`` (the DFEW
paper trains from scratch). The first stem convolution is replaced for ``in_chans != 3`` and the
torchvision classifier by the shared dropout + linear head. The DFEW paper's table calls
R(2+1)D-18 "R3D18"; the two are distinct networks here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchvision.models import video as tvv

from fervid.models.registry import register_model
from fervid.models.video.c3d import VideoClassifier

#: Trunk names → torchvision constructors (always called with ``weights=None``).
TRUNKS: dict[str, Callable[..., tvv.VideoResNet]] = {"r3d_18": tvv.r3d_18,
                                                      "r2plus1d_18": tvv.r2plus1d_18}


class VideoResNetClassifier(VideoClassifier):
    """A torchvision video ResNet trunk (stem, layer1-4, global average pool) with our head.

    Parameters
    ----------
    trunk : str
        One of :data:`TRUNKS`.
    in_chans, num_classes, drop_rate
        See :class:`~fervid.models.video.c3d.VideoClassifier`.

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)`` → features ``(B, 512)`` → logits
    ``(B, num_classes)``.
    """

    def __init__(self, trunk: str = "r3d_18", *, in_chans: int = 3, num_classes: int = 7,
                 drop_rate: float = 0.5):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        if trunk not in TRUNKS:
            raise ValueError(f"unknown trunk {trunk!r}; choose one of {sorted(TRUNKS)}")
        resnet = TRUNKS[trunk](weights=None)
        if in_chans != 3:
            first = resnet.stem[0]
            conv = nn.Conv3d(in_chans, first.out_channels, kernel_size=first.kernel_size,
                             stride=first.stride, padding=first.padding, bias=False)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            resnet.stem[0] = conv
        self.trunk_name = trunk
        self.stem = resnet.stem
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        self.layer3, self.layer4 = resnet.layer3, resnet.layer4
        self.pool = resnet.avgpool  # adaptive (1, 1, 1)
        self._init_head(resnet.fc.in_features)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


@register_model(protocols=("kfold",))
def r3d_18(*, in_chans: int = 3, num_classes: int = 7,
           drop_rate: float = 0.5) -> VideoResNetClassifier:
    """3D ResNet-18 (3x3x3 convolutions), random init."""
    return VideoResNetClassifier("r3d_18", in_chans=in_chans, num_classes=num_classes,
                                 drop_rate=drop_rate)


@register_model(protocols=("kfold",))
def r2plus1d_18(*, in_chans: int = 3, num_classes: int = 7,
                drop_rate: float = 0.5) -> VideoResNetClassifier:
    """R(2+1)D-18 (1x3x3 then 3x1x1 convolutions), random init."""
    return VideoResNetClassifier("r2plus1d_18", in_chans=in_chans, num_classes=num_classes,
                                 drop_rate=drop_rate)
