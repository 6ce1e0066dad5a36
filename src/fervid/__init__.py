"""fervid."""
