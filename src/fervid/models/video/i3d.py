"""I3D-RGB (Carreira and Zisserman, CVPR 2017): Inception-v1 inflated to 3D, from scratch.

Every 2D kernel of GoogLeNet (Inception-v1 with BatchNorm) becomes a 3D one: the 7x7 stem
convolution 7x7x7, each 3x3 convolution 3x3x3 (the "5x5" branch of Inception-v1 is 3x3 in
this form too). Early pools are spatial only, so time is halved by the stem, after Mixed_3c and
after Mixed_4f (T/8 in all). The DFEW paper trains it from scratch, as here.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.models.registry import register_model
from fervid.models.video.c3d import VideoClassifier, init_conv_bn


class ConvUnit(nn.Sequential):
    """Conv3d (same padding, no bias) → BatchNorm3d → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: tuple[int, int, int] | int = 1,
                 stride: tuple[int, int, int] | int = 1):
        k = (kernel,) * 3 if isinstance(kernel, int) else kernel
        super().__init__(
            nn.Conv3d(in_ch, out_ch, k, stride=stride, padding=tuple(s // 2 for s in k),
                      bias=False),
            nn.BatchNorm3d(out_ch), nn.ReLU(inplace=True))


class InceptionModule(nn.Module):
    """Four branches concatenated along channels.

    1x1x1; 1x1x1 → 3x3x3; 1x1x1 → 3x3x3; 3x3x3 max-pool → 1x1x1.

    Parameters
    ----------
    in_ch : int
        Input channels.
    widths : tuple of 6 ints
        ``(b0, b1_reduce, b1, b2_reduce, b2, b3)``: output of branch 0, reduction and output of
        branches 1 and 2, output of the pool branch.

    Shapes
    ------
    ``(B, in_ch, T, H, W)`` → ``(B, b0 + b1 + b2 + b3, T, H, W)``.
    """

    def __init__(self, in_ch: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branch0 = ConvUnit(in_ch, b0)
        self.branch1 = nn.Sequential(ConvUnit(in_ch, b1_reduce), ConvUnit(b1_reduce, b1, 3))
        self.branch2 = nn.Sequential(ConvUnit(in_ch, b2_reduce), ConvUnit(b2_reduce, b2, 3))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), ConvUnit(in_ch, b3))
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


#: Inception-v1 module widths, (b0, b1_reduce, b1, b2_reduce, b2, b3), by module name.
MIXED_WIDTHS = {
    "3b": (64, 96, 128, 16, 32, 32), "3c": (128, 128, 192, 32, 96, 64),
    "4b": (192, 96, 208, 16, 48, 64), "4c": (160, 112, 224, 24, 64, 64),
    "4d": (128, 128, 256, 24, 64, 64), "4e": (112, 144, 288, 32, 64, 64),
    "4f": (256, 160, 320, 32, 128, 128),
    "5b": (256, 160, 320, 32, 128, 128), "5c": (384, 192, 384, 48, 128, 128),
}


def _pool(kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> nn.MaxPool3d:
    # Padding and ceil_mode keep at least one step when an 8-frame or 32-pixel clip gets here.
    return nn.MaxPool3d(kernel, stride=stride, padding=tuple((k - 1) // 2 for k in kernel),
                        ceil_mode=True)


class I3D(VideoClassifier):
    """I3D: inflated stem, Mixed_3b-5c inception modules, global average pool, head.

    Parameters
    ----------
    in_chans, num_classes, drop_rate
        See :class:`~fervid.models.video.c3d.VideoClassifier`.

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)`` → features ``(B, 1024)`` → logits
    ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        self.stem = nn.Sequential(
            ConvUnit(in_chans, 64, 7, stride=2),
            _pool((1, 3, 3), (1, 2, 2)),
            ConvUnit(64, 64, 1),
            ConvUnit(64, 192, 3),
            _pool((1, 3, 3), (1, 2, 2)))
        layers: list[nn.Module] = []
        in_ch = 192
        for name, widths in MIXED_WIDTHS.items():
            if name == "4b":
                layers.append(_pool((3, 3, 3), (2, 2, 2)))
            elif name == "5b":
                layers.append(_pool((2, 2, 2), (2, 2, 2)))
            module = InceptionModule(in_ch, widths)
            layers.append(module)
            in_ch = module.out_channels
        self.mixed = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self._init_head(in_ch)
        init_conv_bn(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return torch.flatten(self.pool(self.mixed(self.stem(x))), 1)


@register_model(protocols=("kfold",))
def i3d(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5) -> I3D:
    """I3D-RGB (inflated Inception-v1), random init; see :class:`I3D`."""
    return I3D(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
