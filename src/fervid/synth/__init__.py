"""Generated micro-expression data: SynthME, in the official CASME II layout."""

from fervid.synth.casme2_like import make_casme2_like, make_synthme

__all__ = ["make_casme2_like", "make_synthme"]
