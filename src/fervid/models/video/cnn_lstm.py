"""CNN + LSTM baselines of the DFEW benchmark: VGG11+LSTM and ResNet18+LSTM.

A torchvision 2D backbone (``weights=None``, the paper trains from scratch) encodes every frame
into a globally average-pooled vector; an LSTM reads those vectors in temporal order; its last
hidden state (or the mean of its hidden states over time) is the clip feature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.vgg import cfgs as vgg_cfgs
from torchvision.models.vgg import make_layers as make_vgg_layers

from fervid.models.pretrained import load_backbone_weights
from fervid.models.registry import register_model
from fervid.models.resnet_trunk import resnet_trunk
from fervid.models.video.c3d import VideoClassifier

#: Ways to turn the LSTM outputs ``(B, T, hidden)`` into one clip feature.
TEMPORAL_POOLS = ("last", "mean")


class FrameEncoder(nn.Module):
    """A torchvision 2D CNN without its classifier, globally average-pooled.

    Parameters
    ----------
    backbone : str
        "vgg11" (the convolutional part, 512 channels) or "resnet18" (up to layer4, 512).
    in_chans : int
        Input channels; other than 3 replaces the first convolution.

    Shapes
    ------
    ``(N, in_chans, H, W)`` → ``(N, 512)``; H, W >= 32 for vgg11 (five 2x2 max-pools).
    """

    def __init__(self, backbone: str, *, in_chans: int = 3, stem: str = "imagenet"):
        super().__init__()
        if stem != "imagenet" and backbone != "resnet18":
            raise ValueError(f"stem={stem!r} applies to the resnet18 frame encoder only")
        if backbone == "vgg11":
            # torchvision's VGG11 convolutional part ("A" layout), without the 120M-parameter
            # classifier that tvm.vgg11 would allocate and initialise only to be discarded.
            trunk = make_vgg_layers(vgg_cfgs["A"], batch_norm=False)
            if in_chans != 3:
                trunk[0] = nn.Conv2d(in_chans, trunk[0].out_channels, kernel_size=3, padding=1)
            for m in trunk.modules():
                if isinstance(m, nn.Conv2d):  # as torchvision's VGG initialises them
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
            self.out_dim = 512
        elif backbone == "resnet18":
            trunk = resnet_trunk("resnet18", in_chans=in_chans, stem=stem)
            self.out_dim = trunk.num_features  # the pooled 512-d vector comes out
        else:
            raise ValueError(f"unknown frame backbone {backbone!r}; choose vgg11 or resnet18")
        self.backbone, self.trunk = backbone, trunk

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.backbone == "vgg11":
            return torch.flatten(F.adaptive_avg_pool2d(self.trunk(x), 1), 1)
        return self.trunk(x)


class CnnLstm(VideoClassifier):
    """Per-frame 2D CNN → LSTM over time → clip feature → dropout + linear head.

    Parameters
    ----------
    backbone : str
        Frame encoder, see :class:`FrameEncoder`.
    in_chans, num_classes, drop_rate
        See :class:`~fervid.models.video.c3d.VideoClassifier`.
    hidden_size : int
        LSTM hidden size, hence ``num_features``.
    num_layers : int
        Stacked LSTM layers.
    temporal_pool : str
        "last": the top layer's hidden state after the last frame; "mean": its hidden states
        averaged over the frames.

    Shapes
    ------
    ``(B, C, T, H, W)``, default ``(B, 3, 16, 112, 112)`` → frames ``(B·T, C, H, W)`` →
    ``(B, T, 512)`` → LSTM ``(B, T, hidden_size)`` → features ``(B, hidden_size)`` → logits
    ``(B, num_classes)``.
    """

    def __init__(self, backbone: str = "resnet18", *, in_chans: int = 3, num_classes: int = 7,
                 drop_rate: float = 0.5, hidden_size: int = 512, num_layers: int = 1,
                 temporal_pool: str = "last", stem: str = "imagenet"):
        super().__init__(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)
        if temporal_pool not in TEMPORAL_POOLS:
            raise ValueError(f"unknown temporal_pool {temporal_pool!r}; "
                             f"choose one of {TEMPORAL_POOLS}")
        self.temporal_pool = temporal_pool
        self.encoder = FrameEncoder(backbone, in_chans=in_chans, stem=stem)
        self.lstm = nn.LSTM(self.encoder.out_dim, hidden_size, num_layers=num_layers,
                            batch_first=True)
        self._init_head(hidden_size)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        per_frame = self.encoder(frames).reshape(b, t, -1)
        outputs, _ = self.lstm(per_frame)  # (B, T, hidden): the top layer at every step
        return outputs[:, -1] if self.temporal_pool == "last" else outputs.mean(1)


@register_model(protocols=("kfold",))
def vgg11_lstm(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
               temporal_pool: str = "last") -> CnnLstm:
    """VGG11 (per frame) + LSTM, random init; see :class:`CnnLstm`."""
    return CnnLstm("vgg11", in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                   temporal_pool=temporal_pool)


@register_model(protocols=("kfold",))
def resnet18_lstm(*, in_chans: int = 3, num_classes: int = 7, drop_rate: float = 0.5,
                  temporal_pool: str = "last", stem: str = "imagenet",
                  pretrained_path: str | None = None) -> CnnLstm:
    """ResNet-18 (per frame) + LSTM; see :class:`CnnLstm`. The frame encoder starts from
    ``pretrained_path`` (a torchvision file or a fervid checkpoint, e.g. of ``fervid fit``)
    when given, else at random."""
    model = CnnLstm("resnet18", in_chans=in_chans, num_classes=num_classes,
                    drop_rate=drop_rate, temporal_pool=temporal_pool, stem=stem)
    if pretrained_path is not None:
        load_backbone_weights(model, pretrained_path)
    return model
