"""Models: each takes a documented tensor shape and returns logits."""

from __future__ import annotations

from torch import nn

from fervid.models.off_apexnet import OffApexNet, off_apexnet
from fervid.models.ststnet import STSTNet, ststnet

#: Builders by config name; every builder takes in_chans, num_classes, drop_rate.
BUILDERS = {"ststnet": ststnet, "off_apexnet": off_apexnet}


def build_model(name: str, *, in_chans: int, num_classes: int, drop_rate: float) -> nn.Module:
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BUILDERS)}") from None
    return builder(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate)


__all__ = ["BUILDERS", "OffApexNet", "STSTNet", "build_model", "off_apexnet", "ststnet"]
