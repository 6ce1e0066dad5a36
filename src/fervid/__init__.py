"""fervid."""

# Heavy entry points are imported on first use (PEP 562), so ``import fervid`` stays light.
_LAZY = {
    "dynamic_image": "fervid.representation.dynamic_image",
    "dssi": "fervid.representation.dssi",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fervid' has no attribute {name!r}")
