"""SMA-STN over DSSI dynamic images (Liu, Zheng, Zong, arXiv:2010.09342), as read in methods.md §1.

Only the paper's abstract is available; the choices below are the defaults documented there.
A clip is summarised by K local dynamic images (one per temporal segment) and one global one.
A shared 2D ResNet encodes every image; the STMA module attends in space (a non-local block after
an intermediate stage) and in time (attention weights over the K local segment features). The
clip feature ``z = [sum_k alpha_k f_k ; f_global]`` feeds a linear classifier and DE-Loss.

The single-image baselines of the ablation table (apex frame only, one global DI) share the
backbone and live at the end of this file.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.pretrained import load_backbone_weights
from fervid.models.registry import register_model
from fervid.models.resnet_trunk import BACKBONES, STEMS, resnet_trunk  # noqa: F401

#: ResNet stages after which the spatial non-local block may sit, with their base widths.
STAGE_WIDTHS = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}


class SpatialNonLocal(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., CVPR 2018) with a residual connection.

    ``y_i = sum_j softmax_j(theta(x_i) . phi(x_j)) g(x_j)`` over all H·W positions, then
    ``out = x + BN(W y)``. The BatchNorm scale starts at zero so the block is the identity at
    initialisation and pretrained backbone features pass through unchanged.

    Parameters
    ----------
    channels : int
        Channels C of the feature map.
    reduction : int
        The embeddings theta, phi and g have ``C // reduction`` channels (2, as in the paper).

    Shapes
    ------
    ``(N, C, H, W)`` → ``(N, C, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 2):
        super().__init__()
        inner = max(channels // reduction, 1)
        self.channels, self.inner = channels, inner
        self.theta = nn.Conv2d(channels, inner, kernel_size=1)
        self.phi = nn.Conv2d(channels, inner, kernel_size=1)
        self.g = nn.Conv2d(channels, inner, kernel_size=1)
        self.out = nn.Conv2d(inner, channels, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)  # identity at init; bias is already zero

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        phi = self.phi(x).flatten(2)  # (N, C', HW)
        g = self.g(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        attn = torch.softmax(theta @ phi, dim=-1)  # (N, HW, HW): each row sums to 1
        y = (attn @ g).transpose(1, 2).reshape(n, self.inner, h, w)
        return x + self.bn(self.out(y))


class TemporalSegmentAttention(nn.Module):
    """Attention pooling over segments: ``s_k = w^T tanh(W f_k)``, ``alpha = softmax_k(s)``.

    Parameters
    ----------
    dim : int
        Feature size D of each segment.
    hidden : int
        Size of the hidden projection ``W``.

    Shapes
    ------
    ``(B, K, D)`` → ``(pooled (B, D), alpha (B, K))`` with ``pooled = sum_k alpha_k f_k``.
    """

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.proj = nn.Linear(dim, hidden)  # W (with a bias)
        self.score = nn.Linear(hidden, 1, bias=False)  # w

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = torch.softmax(self.score(torch.tanh(self.proj(f))).squeeze(-1), dim=1)
        return torch.einsum("bk,bkd->bd", alpha, f), alpha


class ResNetBackbone(nn.Module):
    """A torchvision ResNet trunk (no classifier), optionally with a non-local block inside.

    Parameters
    ----------
    backbone : str
        One of :data:`BACKBONES`; built with ``weights=None`` (load weights with
        :func:`~fervid.models.pretrained.load_backbone_weights`).
    in_chans : int
        Input channels; other than 3 replaces ``conv1`` by a freshly initialised one.
    spatial_attention : bool
        Insert a :class:`SpatialNonLocal` block after ``spatial_stage``.
    spatial_stage : str
        One of :data:`STAGE_WIDTHS`.
    stem : {"imagenet", "small"}
        ``imagenet``: torchvision's 7×7 stride-2 ``conv1`` (the input shrinks 4× before
        ``layer1``); ``small``: a 3×3 stride-1 ``conv1`` (2× before ``layer1``), for faces of
        about 48 px, where the ImageNet stem leaves ``layer4`` a 2×2 map. Either keeps
        torchvision's parameter names, so weights move between models of the same stem.

    Shapes
    ------
    ``(N, in_chans, H, W)`` → globally average-pooled features ``(N, out_dim)``; ``out_dim`` is
    512 for resnet18/34 and 2048 for resnet50.
    """

    def __init__(self, backbone: str = "resnet18", *, in_chans: int = 3,
                 spatial_attention: bool = True, spatial_stage: str = "layer3",
                 stem: str = "imagenet"):
        super().__init__()
        if spatial_stage not in STAGE_WIDTHS:
            raise ValueError(f"unknown spatial_stage {spatial_stage!r}; "
                             f"choose one of {sorted(STAGE_WIDTHS)}")
        resnet = resnet_trunk(backbone, in_chans=in_chans, stem=stem)
        self.out_dim = resnet.num_features
        self.resnet, self.in_chans, self.name, self.stem = resnet, in_chans, backbone, stem
        self.spatial_stage = spatial_stage
        expansion = type(resnet.layer1[0]).expansion  # 1 basic block, 4 bottleneck
        self.spatial = (SpatialNonLocal(STAGE_WIDTHS[spatial_stage] * expansion)
                        if spatial_attention else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.resnet
        x = r.maxpool(r.relu(r.bn1(r.conv1(x))))
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(r, stage)(x)
            if stage == self.spatial_stage:
                x = self.spatial(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class SMASTN(nn.Module):
    """SMA-STN: shared ResNet + STMA (spatial non-local, temporal segment attention) + linear head.

    Parameters
    ----------
    in_chans, num_classes, drop_rate : int, int, float
        Channels of each dynamic image, output classes, dropout on z before the classifier.
    backbone, spatial_attention, spatial_stage
        See :class:`ResNetBackbone`.
    temporal_attention : bool
        Pool the K local features with :class:`TemporalSegmentAttention`; else their plain mean
        (alpha uniform, ``1/K``).
    use_global : bool
        Append the global DI feature to z (ablation: False ignores the global image entirely).
    attention_hidden : int
        Hidden size of the temporal attention.

    Shapes
    ------
    input ``(B, K+1, in_chans, H, W)``: along dim 1 the K local dynamic images in temporal order,
    then the global one last (the layout DSSI produces, also when ``use_global=False``).
    Output :class:`~fervid.models.output.ModelOutput`; ``features`` is ``(B, 2D)`` or ``(B, D)``
    without the global
    part, with D the backbone width (512 for resnet18).
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 5, drop_rate: float = 0.5,
                 backbone: str = "resnet18", spatial_attention: bool = True,
                 spatial_stage: str = "layer3", temporal_attention: bool = True,
                 use_global: bool = True, attention_hidden: int = 128,
                 stem: str = "imagenet"):
        super().__init__()
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        self.use_global = use_global
        self.backbone = ResNetBackbone(backbone, in_chans=in_chans,
                                       spatial_attention=spatial_attention,
                                       spatial_stage=spatial_stage, stem=stem)
        dim = self.backbone.out_dim
        self.temporal = TemporalSegmentAttention(dim, attention_hidden) if temporal_attention \
            else None
        self.num_features = 2 * dim if use_global else dim
        self.dropout = nn.Dropout(p=drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, K+1, C, H, W)`` → ``(features (B, F), segment_weights (B, K))``."""
        if x.ndim != 5 or x.shape[1] < 2 or x.shape[2] != self.in_chans:
            raise ValueError(f"SMASTN expects (B, K+1, {self.in_chans}, H, W) with K >= 1, "
                             f"got {tuple(x.shape)}")
        b, n = x.shape[:2]
        k = n - 1
        images = x if self.use_global else x[:, :k]  # skip the unused global DI's compute
        f = self.backbone(images.flatten(0, 1)).unflatten(0, (b, images.shape[1]))  # (B, ·, D)
        local = f[:, :k]
        if self.temporal is not None:
            pooled, alpha = self.temporal(local)
        else:
            pooled, alpha = local.mean(1), local.new_full((b, k), 1.0 / k)
        z = torch.cat([pooled, f[:, k]], dim=1) if self.use_global else pooled
        return z, alpha

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, F)`` → logits ``(B, num_classes)`` (dropout, then the linear classifier)."""
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """Logits ``(B, num_classes)``, features z ``(B, F)`` and ``extras["segment_weights"]``
        ``(B, K)``, the temporal attention alpha."""
        z, alpha = self.forward_features(x)
        return ModelOutput(self.forward_head(z), z, {"segment_weights": alpha})


class SingleImageResNet(nn.Module):
    """One image → ResNet (the same backbone as SMA-STN, no attention) → dropout → linear.

    The baselines of the ablation table (the apex frame alone, or the single global DI) and
    the frame model trained on still faces (``frame_resnet``).

    Shapes
    ------
    input ``(B, in_chans, H, W)`` → logits ``(B, num_classes)``; features ``(B, D)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 5, drop_rate: float = 0.5,
                 backbone: str = "resnet18", stem: str = "imagenet"):
        super().__init__()
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        self.backbone = ResNetBackbone(backbone, in_chans=in_chans, spatial_attention=False,
                                       stem=stem)
        self.num_features = self.backbone.out_dim
        self.dropout = nn.Dropout(p=drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` → ``(B, D)``."""
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


@register_model(protocols=("loso", "kfold"))
def smastn(*, in_chans: int = 3, num_classes: int = 5, drop_rate: float = 0.5,
           backbone: str = "resnet18", spatial_attention: bool = True,
           spatial_stage: str = "layer3", temporal_attention: bool = True,
           use_global: bool = True, stem: str = "imagenet",
           pretrained_path: str | Path | None = None) -> SMASTN:
    """Build an SMA-STN (:class:`SMASTN`); backbone weights from ``pretrained_path`` if given
    (:func:`fervid.models.pretrained.load_backbone_weights`)."""
    model = SMASTN(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                   backbone=backbone, spatial_attention=spatial_attention,
                   spatial_stage=spatial_stage, temporal_attention=temporal_attention,
                   use_global=use_global, stem=stem)
    if pretrained_path is not None:
        load_backbone_weights(model, pretrained_path)
    return model


@register_model(protocols=("loso", "holdout"))
def apex_resnet(*, in_chans: int = 3, num_classes: int = 5, drop_rate: float = 0.5,
                backbone: str = "resnet18", stem: str = "imagenet",
                pretrained_path: str | Path | None = None) -> SingleImageResNet:
    """Baseline on the apex frame alone: ``(B, C, H, W)`` → logits."""
    model = SingleImageResNet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                              backbone=backbone, stem=stem)
    if pretrained_path is not None:
        load_backbone_weights(model, pretrained_path)
    return model


@register_model(protocols=("loso", "holdout"))
def global_di_resnet(*, in_chans: int = 3, num_classes: int = 5, drop_rate: float = 0.5,
                     backbone: str = "resnet18", stem: str = "imagenet",
                     pretrained_path: str | Path | None = None) -> SingleImageResNet:
    """Baseline on one global dynamic image of the whole clip: ``(B, C, H, W)`` → logits."""
    return apex_resnet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                       backbone=backbone, stem=stem, pretrained_path=pretrained_path)


@register_model(protocols=("loso", "holdout"))
def frame_resnet(*, in_chans: int = 1, num_classes: int = 7, drop_rate: float = 0.0,
                 backbone: str = "resnet18", stem: str = "small",
                 pretrained_path: str | Path | None = None) -> SingleImageResNet:
    """The frame model for still faces (FER2013, image folders), ``(B, C, H, W)`` → logits; its
    backbone can initialise SMA-STN's and the baselines' (``model.pretrained_path``)."""
    return apex_resnet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                       backbone=backbone, stem=stem, pretrained_path=pretrained_path)
