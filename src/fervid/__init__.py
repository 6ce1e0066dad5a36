"""fervid."""

from importlib.metadata import PackageNotFoundError as _NotInstalled
from importlib.metadata import version as _version

try:
    __version__ = _version("fervid")
except _NotInstalled:  # run from a source tree that was never installed
    __version__ = "0+unknown"

# Heavy entry points are imported on first use (PEP 562), so ``import fervid`` stays light.
_LAZY = {
    "dynamic_image": "fervid.representation.dynamic_image",
    "dssi": "fervid.representation.dssi",
    "predict_video": "fervid.predict.api",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fervid' has no attribute {name!r}")
