"""Former-DFER (Zhao & Liu, ACM MM 2021): a spatial transformer inside a 2D CNN, then a
temporal transformer over the frames.

Each frame goes through a **CS-Former** (convolutional spatial transformer): the ResNet-18
stages with a transformer encoder over the ``h·w`` spatial tokens of one stage's feature map
(after ``layer3`` by default: 7×7 tokens of 256 channels at 112 px, one encoder layer, 8
heads, MLP 512), then the remaining stages and a global average pool → one 512-d vector per
frame. The **T-Former** (temporal transformer) reads the T frame vectors with a learnable class
token (3 layers, 8 heads, MLP 1024); the class token's output is the clip feature (the one
EC-STFL reads), then dropout + a linear classifier. Everything starts at random (no weights are
fetched), as in the authors' training.

This follows the paper and its authors' public network (pre-norm encoder layers, GELU,
learnable absolute positions). Our choices where they are silent or fixed to one input size:
position embeddings are kept at the reference grid (``num_frames`` frames of ``img_size``
pixels) and resampled (bicubic in space, linear in time) for other clip sizes, so any
``T, H, W`` runs; the attention projections have biases (``nn.MultiheadAttention``); the
T-Former ends with a LayerNorm.

Cost at the paper's input, one clip ``(1, 3, 16, 112, 112)``, default options, 7 classes,
measured with ``python benchmarks/gpu_check.py --costs`` (parameters: the sum of ``numel``;
FLOPs: ``torch.utils.flop_counter.FlopCounterMode``, which counts a multiply-add as 2 FLOPs,
attention products included):

==========================  ============  ==========================================
                            measured      paper
==========================  ============  ==========================================
parameters                  18.04 M       18 M
GFLOPs, 2 per multiply-add  16.59
GFLOPs, 1 per multiply-add  8.30          9 (nearest this convention)
==========================  ============  ==========================================

The ResNet-18 convolutions make 7.76 G multiply-adds of it (16 frames of 112 px), the two
transformers 0.54 G. The paper does not say how it counted; its 9 G is nearest the
multiply-add count (counters such as thop also add normalisation and activation operations).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fervid.models.registry import register_model
from fervid.models.resnet_trunk import resnet_trunk
from fervid.models.video.c3d import VideoClassifier

#: ResNet-18 stages the spatial encoder may follow, with their output channels.
STAGE_CHANNELS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


def encoder(dim: int, depth: int, heads: int, mlp_dim: int, dropout: float) -> nn.Module:
    """``depth`` pre-norm transformer encoder layers (GELU MLP of ``mlp_dim``), batch first:
    ``(N, L, dim)`` → ``(N, L, dim)``."""
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=mlp_dim, dropout=dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
    # Nested tensors only serve padded batches, which clips never are.
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


def _halvings(size: int, times: int) -> int:
    # Every stride-2 convolution or pool of the trunk maps n to ceil(n / 2).
    for _ in range(times):
        size = math.ceil(size / 2)
    return size


class SpatialEncoder(nn.Module):
    """A transformer encoder over the spatial positions of a feature map, each its own token.

    Parameters
    ----------
    channels : int
        C, the token width.
    grid : int
        Side of the reference token grid the position embedding is learnt at; other grids
        resample it (bicubic).
    depth, heads, mlp_dim, dropout
        See :func:`encoder`.

    Shapes
    ------
    ``(N, C, h, w)`` → ``(N, C, h, w)``.
    """

    def __init__(self, channels: int, grid: int, *, depth: int = 1, heads: int = 8,
                 mlp_dim: int = 512, dropout: float = 0.0):
        super().__init__()
        self.pos = nn.Parameter(torch.zeros(1, channels, grid, grid))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = encoder(channels, depth, heads, mlp_dim, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        pos = self.pos
        if pos.shape[-2:] != (h, w):
            pos = F.interpolate(pos, size=(h, w), mode="bicubic", align_corners=False)
        tokens = (x + pos).flatten(2).transpose(1, 2)  # (N, h·w, C)
        return self.encoder(tokens).transpose(1, 2).reshape(n, c, h, w)


class TemporalEncoder(nn.Module):
    """T-Former: a class token and the frame vectors through a transformer encoder.

    Parameters
    ----------
    dim : int
        D, the width of each frame vector.
    num_frames : int
        Frames of the reference clip the position embedding is learnt at; other lengths
        resample the frames' part of it (linear).
    depth, heads, mlp_dim, dropout
        See :func:`encoder`.

    Shapes
    ------
    ``(B, T, D)`` → the class token's output ``(B, D)``.
    """

    def __init__(self, dim: int, num_frames: int, *, depth: int = 3, heads: int = 8,
                 mlp_dim: int = 1024, dropout: float = 0.0):
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, dim))
        self.frame_pos = nn.Parameter(torch.zeros(1, dim, num_frames))
        for p in (self.cls_token, self.cls_pos, self.frame_pos):
            nn.init.trunc_normal_(p, std=0.02)
        self.encoder = encoder(dim, depth, heads, mlp_dim, dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        pos = self.frame_pos
        if pos.shape[-1] != t:
            pos = F.interpolate(pos, size=t, mode="linear", align_corners=False)
        cls = (self.cls_token + self.cls_pos).expand(b, -1, -1)
        tokens = torch.cat([cls, x + pos.transpose(1, 2)], dim=1)  # (B, 1 + T, D)
        return self.norm(self.encoder(tokens)[:, 0])


class FormerDFER(VideoClassifier):
    """CS-Former per frame → T-Former over the frames → dropout + linear head.

    Parameters
    ----------
    in_chans, num_classes, drop_rate
        See :class:`~fervid.models.video.c3d.VideoClassifier` (``drop_rate``: before the
        classifier only; the encoders use ``attn_drop``).
    spatial_stage : str
        The ResNet-18 stage the spatial encoder follows (:data:`STAGE_CHANNELS`); "layer3"
        as in the authors' network.
    spatial_depth, temporal_depth : int
        Encoder layers of the CS-Former (1) and the T-Former (3).
    num_frames, img_size : int
        The reference clip the position embeddings are learnt at (16 frames of 112 px).
    stem : str
        ResNet ``conv1``, see :func:`fervid.models.resnet_trunk.resnet_trunk`.
    attn_drop : float
        Dropout inside the encoders (0 in the paper).

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)``; H, W >= 16 → frames
    ``(B·T, C, H, W)`` → tokens ``(B·T, 7·7, 256)`` at 112 px → frame vectors ``(B, T, 512)``
    → features ``(B, 512)`` → logits ``(B, num_classes)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
                 spatial_stage: str = "layer3", spatial_depth: int = 1,
                 temporal_depth: int = 3, num_frames: int = 16, img_size: int = 112,
                 stem: str = "imagenet", attn_drop: float = 0.0):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        if spatial_stage not in STAGE_CHANNELS:
            raise ValueError(f"unknown spatial_stage {spatial_stage!r}; "
                             f"choose one of {sorted(STAGE_CHANNELS)}")
        if min(spatial_depth, temporal_depth, num_frames, img_size) < 1:
            raise ValueError("spatial_depth, temporal_depth, num_frames and img_size must be "
                             "positive")
        trunk = resnet_trunk("resnet18", in_chans=in_chans, stem=stem)
        self.stem = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool)
        self.stages = nn.ModuleDict((name, getattr(trunk, name)) for name in STAGE_CHANNELS)
        self.spatial_stage = spatial_stage
        # The token grid at img_size: the stem halves twice (once with stem "small"), then
        # every stage after layer1 once more.
        stage = list(STAGE_CHANNELS).index(spatial_stage)
        grid = _halvings(img_size, (2 if stem == "imagenet" else 1) + stage)
        channels = STAGE_CHANNELS[spatial_stage]
        self.spatial = SpatialEncoder(channels, grid, depth=spatial_depth,
                                      mlp_dim=2 * channels, dropout=attn_drop)
        self.temporal = TemporalEncoder(trunk.num_features, num_frames, depth=temporal_depth,
                                        mlp_dim=2 * trunk.num_features, dropout=attn_drop)
        self._init_head(trunk.num_features)

    def frame_features(self, frames: torch.Tensor) -> torch.Tensor:
        """CS-Former: ``(N, C, H, W)`` → ``(N, 512)``."""
        x = self.stem(frames)
        for name, stage in self.stages.items():
            x = stage(x)
            if name == self.spatial_stage:
                x = self.spatial(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        return self.temporal(self.frame_features(frames).reshape(b, t, -1))


@register_model(protocols=("kfold",))
def former_dfer(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
                spatial_stage: str = "layer3", stem: str = "imagenet", spatial_depth: int = 1,
                temporal_depth: int = 3, num_frames: int = 16) -> FormerDFER:
    """Former-DFER (CS-Former + T-Former), random init; see :class:`FormerDFER`."""
    return FormerDFER(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                      spatial_stage=spatial_stage, stem=stem, spatial_depth=spatial_depth,
                      temporal_depth=temporal_depth, num_frames=num_frames)
