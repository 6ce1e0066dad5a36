"""Pseudo-3D ResNet (Qiu, Yao, Mei, ICCV 2017) for the DFEW benchmark.

Each bottleneck replaces the 3x3x3 convolution by a 1x3x3 spatial convolution S and a 3x1x1
temporal one T, combined three ways that cycle block by block:

- P3D-A: ``T(S(x))`` (serial),
- P3D-B: ``S(x) + T(x)`` (parallel),
- P3D-C: ``S(x) + T(S(x))`` (serial with a shortcut).

We build the 50-layer bottleneck layout (3, 4, 6, 3 blocks; 16 blocks, A-B-C cycling over the
whole network), the depth on which the P3D paper compares the three block types. Time is kept by
the stem and halved, with space, at the first block of stages 2-4.
"""

from __future__ import annotations

import torch
from torch import nn

from fervid.models.registry import register_model
from fervid.models.video.c3d import VideoClassifier, init_conv_bn

#: The three block types, cycled A, B, C, A, ... over all blocks.
BLOCK_TYPES = ("A", "B", "C")


def _bn_relu(channels: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm3d(channels), nn.ReLU(inplace=True))


class P3DBottleneck(nn.Module):
    """1x1x1 reduce → factorised S/T (type A, B or C) → 1x1x1 expand (x4), plus the shortcut.

    Parameters
    ----------
    in_ch : int
        Input channels.
    width : int
        Bottleneck width; the block outputs ``4 * width`` channels.
    stride : int
        Stride in time and space (1 or 2), taken by the spatial convolution (and by the
        temporal one in type B, which reads the block input too).
    block_type : str
        "A", "B" or "C".

    Shapes
    ------
    ``(B, in_ch, T, H, W)`` → ``(B, 4·width, ceil(T/s), ceil(H/s), ceil(W/s))``.
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, block_type: str):
        super().__init__()
        if block_type not in BLOCK_TYPES:
            raise ValueError(f"unknown P3D block type {block_type!r}; choose one of {BLOCK_TYPES}")
        self.block_type = block_type
        out_ch = width * self.expansion
        self.reduce = nn.Sequential(nn.Conv3d(in_ch, width, 1, bias=False), _bn_relu(width))
        self.spatial = nn.Sequential(
            nn.Conv3d(width, width, (1, 3, 3), stride=stride, padding=(0, 1, 1), bias=False),
            _bn_relu(width))
        temporal_stride = stride if block_type == "B" else 1
        self.temporal = nn.Sequential(
            nn.Conv3d(width, width, (3, 1, 1), stride=temporal_stride, padding=(1, 0, 0),
                      bias=False),
            _bn_relu(width))
        self.expand = nn.Sequential(nn.Conv3d(width, out_ch, 1, bias=False),
                                    nn.BatchNorm3d(out_ch))
        self.shortcut = nn.Identity() if stride == 1 and in_ch == out_ch else nn.Sequential(
            nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm3d(out_ch))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.reduce(x)
        if self.block_type == "A":
            h = self.temporal(self.spatial(h))
        elif self.block_type == "B":
            h = self.spatial(h) + self.temporal(h)
        else:
            s = self.spatial(h)
            h = s + self.temporal(s)
        return self.relu(self.expand(h) + self.shortcut(x))


class P3D(VideoClassifier):
    """P3D ResNet: stem, four stages of :class:`P3DBottleneck`, global average pool, head.

    Parameters
    ----------
    in_chans, num_classes, drop_rate
        See :class:`VideoClassifier`.
    layers : tuple of int
        Blocks per stage; (3, 4, 6, 3) is the 50-layer layout.

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)`` → features ``(B, 2048)`` → logits
    ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
                 layers: tuple[int, ...] = (3, 4, 6, 3)):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        if len(layers) != 4 or min(layers) < 1:
            raise ValueError(f"layers must be 4 positive block counts, got {layers}")
        self.stem = nn.Sequential(
            nn.Conv3d(in_chans, 64, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            _bn_relu(64),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)))
        stages, in_ch, index = [], 64, 0
        for stage, blocks in enumerate(layers):
            width = 64 * 2 ** stage
            stage_blocks = []
            for b in range(blocks):
                stride = 2 if stage > 0 and b == 0 else 1
                block_type = BLOCK_TYPES[index % len(BLOCK_TYPES)]
                stage_blocks.append(P3DBottleneck(in_ch, width, stride, block_type))
                in_ch, index = width * P3DBottleneck.expansion, index + 1
            stages.append(nn.Sequential(*stage_blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool3d(1)
        self._init_head(in_ch)
        init_conv_bn(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.pool(x), 1)


@register_model(protocols=("kfold",))
def p3d(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5) -> P3D:
    """P3D ResNet-50 layout (A/B/C cycling), random init; see :class:`P3D`."""
    return P3D(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
