"""Models: each takes a documented tensor shape and returns logits (SMA-STN: plus extras)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from fervid.models.off_apexnet import OffApexNet, off_apexnet
from fervid.models.smastn import SMASTN, SingleImageResNet, apex_resnet, global_di_resnet, smastn
from fervid.models.ststnet import STSTNet, ststnet

if TYPE_CHECKING:
    from fervid.config import ModelConfig

#: Builders by config name; every builder takes in_chans, num_classes, drop_rate.
BUILDERS = {"ststnet": ststnet, "off_apexnet": off_apexnet, "smastn": smastn,
            "apex_resnet": apex_resnet, "global_di_resnet": global_di_resnet}


def build_model(name: str, *, in_chans: int, num_classes: int, drop_rate: float,
                config: ModelConfig | None = None) -> nn.Module:
    """Build a model by config name; ``config`` supplies the SMA-STN family's options."""
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BUILDERS)}") from None
    extra: dict = {}
    if config is not None and name in ("smastn", "apex_resnet", "global_di_resnet"):
        extra = {"backbone": config.backbone, "pretrained_path": config.pretrained_path}
        if name == "smastn":
            extra.update(spatial_attention=config.spatial_attention,
                         spatial_stage=config.spatial_stage,
                         temporal_attention=config.temporal_attention,
                         use_global=config.use_global)
    return builder(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate, **extra)


__all__ = ["BUILDERS", "SMASTN", "OffApexNet", "STSTNet", "SingleImageResNet", "apex_resnet",
           "build_model", "global_di_resnet", "off_apexnet", "smastn", "ststnet"]
