"""torchvision ResNet trunks with fervid's input stems: one builder for every 2D backbone
(SMA-STN's, the single-image models', the CNN+LSTM frame encoder's)."""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

#: Backbone names → torchvision constructors (always called with ``weights=None``).
BACKBONES = {"resnet18": tvm.resnet18, "resnet34": tvm.resnet34, "resnet50": tvm.resnet50}
#: ``conv1`` variants: ``imagenet``, torchvision's 7×7 stride 2 (the input shrinks 4× before
#: ``layer1``); ``small``, 3×3 stride 1 (2×, with the max-pool), for faces of about 48 px.
STEMS = ("imagenet", "small")


def resnet_trunk(backbone: str = "resnet18", *, in_chans: int = 3,
                 stem: str = "imagenet") -> tvm.ResNet:
    """A randomly initialised torchvision ResNet whose ``fc`` is the identity: ``(N, C, H, W)``
    → pooled ``(N, D)``, D in its ``num_features``. Parameter names stay torchvision's, so
    weights move between trunks of the same backbone, stem and ``in_chans``; a replaced
    ``conv1`` gets torchvision's own (Kaiming, fan-out) initialisation.

    Raises
    ------
    ValueError
        Unknown ``backbone`` or ``stem``.
    """
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    resnet = BACKBONES[backbone](weights=None)
    if stem == "small":
        resnet.conv1 = nn.Conv2d(in_chans, 64, kernel_size=3, stride=1, padding=1, bias=False)
    elif in_chans != 3:
        resnet.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
    if stem == "small" or in_chans != 3:
        nn.init.kaiming_normal_(resnet.conv1.weight, mode="fan_out", nonlinearity="relu")
    resnet.num_features = resnet.fc.in_features  # D: 512 (resnet18/34), 2048 (resnet50)
    resnet.fc = nn.Identity()  # the heads live in the models
    return resnet
