"""The training core: one epoch loop and evaluation, and the fold-batched STSTNet engine."""
