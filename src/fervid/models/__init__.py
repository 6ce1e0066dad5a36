"""Models: each takes a documented tensor shape and returns a :class:`ModelOutput`.

``create_model(name, **kwargs)`` builds any of them by name (:mod:`fervid.models.registry`).
"""

from __future__ import annotations

# Importing the model modules registers their builders.
from fervid.models import htnet as _htnet  # noqa: F401
from fervid.models import mini_xception as _mini_xception  # noqa: F401
from fervid.models import off_apexnet as _off_apexnet  # noqa: F401
from fervid.models import smastn as _smastn  # noqa: F401
from fervid.models import softnet as _softnet  # noqa: F401
from fervid.models import ststnet as _ststnet  # noqa: F401
from fervid.models import video as _video  # noqa: F401
from fervid.models.htnet import HTNet
from fervid.models.off_apexnet import OffApexNet
from fervid.models.output import ModelOutput
from fervid.models.registry import create_model, model_from_config, model_names, register_model
from fervid.models.smastn import SMASTN, SingleImageResNet
from fervid.models.ststnet import STSTNet

__all__ = ["SMASTN", "HTNet", "ModelOutput", "OffApexNet", "STSTNet", "SingleImageResNet",
           "create_model", "model_from_config", "model_names", "register_model"]
