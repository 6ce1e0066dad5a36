"""One table of every network: ``create_model(name, **kwargs)``, in the spirit of timm's.

Each builder is a plain function with keyword-only options, registered by
:func:`register_model` under its own name, with the protocols it runs under (``loso``,
``kfold``, ``holdout``: what a config's ``model.name`` is checked against). Every builder takes
``in_chans``, ``num_classes`` and ``drop_rate``; some take more (the SMA-STN family:
``backbone``, ``pretrained_path``, ...).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from pydantic import BaseModel
from torch import nn

from fervid.config import ConfigError, register_name_source
from fervid.datasets.registry import PROTOCOLS
from fervid.errors import FervidError
from fervid.models.au_head import WithAuHead
from fervid.models.linear import LINEAR_MODELS

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
#: The protocols each registered model runs under (its registry tag).
_PROTOCOLS: dict[str, tuple[str, ...]] = {}


class UnknownModelError(FervidError, ValueError):
    """A model name no builder is registered under."""


def register_model(builder: Callable[..., nn.Module] | None = None, *,
                   protocols: tuple[str, ...] | None = None):
    """Register ``builder`` under its function name (a decorator, bare or called).

    ``protocols``: those it runs under (``fervid.datasets.registry.PROTOCOLS``); default
    every protocol.
    """
    if builder is None:
        return lambda b: register_model(b, protocols=protocols)
    name = builder.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is registered twice")
    tags = tuple(protocols or PROTOCOLS)
    if not tags or set(tags) - set(PROTOCOLS):
        raise ValueError(f"model {name!r}: protocols {tags} must be among {PROTOCOLS}")
    _BUILDERS[name] = builder
    _PROTOCOLS[name] = tags
    return builder


def model_names(protocol: str | None = None) -> list[str]:
    """Every registered model name, in registration order; with ``protocol``, those that run
    under it."""
    return [n for n in _BUILDERS if protocol is None or protocol in _PROTOCOLS[n]]


def _config_names(protocol: str) -> list[str]:
    # The scikit-learn models are no networks, but LOSO's model.name takes them too.
    return model_names(protocol) + (list(LINEAR_MODELS) if protocol == "loso" else [])


# Config validation comes before this stage and cannot import it: it asks the table through
# the lookup installed here (see fervid.config.register_name_source).
register_name_source("model", _config_names)


def _builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; choose one of "
                                f"{sorted(_BUILDERS)}") from None


def create_model(name: str, **kwargs) -> nn.Module:
    """Build the network ``name``; keyword arguments that are None are dropped (the builder's
    default applies)."""
    return _builder(name)(**{k: v for k, v in kwargs.items() if v is not None})


def model_from_config(model: BaseModel, *, in_chans: int, num_classes: int,
                      pretrained: bool = True, num_aus: int = 0) -> nn.Module:
    """The network a config's ``model`` section describes (``name``, ``drop_rate`` and any
    other field the builder takes as a keyword, e.g. SMA-STN's ``backbone``).

    ``pretrained=False`` ignores ``model.pretrained_path``: for a model whose every weight is
    loaded next (a checkpoint, fold weights), the file training started from is never read.
    ``num_aus`` > 0: the network with an AU head of that many logits beside its emotion head
    (:class:`~fervid.models.au_head.WithAuHead`), built after it, so the network's own
    initialisation is the same as without.
    """
    if not pretrained and getattr(model, "pretrained_path", None) is not None:
        model = model.model_copy(update={"pretrained_path": None})
    takes = inspect.signature(_builder(model.name)).parameters
    for field in ("pretrained_path", "stem"):
        value = getattr(model, field, None)
        if field not in takes and value not in (None, "imagenet"):
            raise ConfigError(f"model.{field}={value!r}: model {model.name!r} does not take it")
    options = {k: v for k, v in model.model_dump().items() if k != "name" and k in takes}
    net = create_model(model.name, in_chans=in_chans, num_classes=num_classes, **options)
    return WithAuHead(net, num_aus, name=model.name) if num_aus else net
