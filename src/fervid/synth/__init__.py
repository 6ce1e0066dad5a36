"""Generated data for demos and tests: no licensed release needed."""

from fervid.synth.casme2_like import make_casme2_like

__all__ = ["make_casme2_like"]
