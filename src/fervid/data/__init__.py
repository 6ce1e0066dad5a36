"""fervid's data for a training loop of your own: tables, inputs and folds.

::

    table = read_table("casme2", root, protocol="5class", sheet=sheet).labelled()
    data = ClipDataset(table, InputSpec("dssi", 64))      # items: Sample(input, label, ...)
    for fold in loso_splits(table):                       # Fold(number, name, train, test, seed)
        train = DataLoader(Subset(data, fold.train.tolist()), batch_size=16, collate_fn=collate)

The pieces are fervid's own: the release readers (:func:`fervid.datasets.load_dataset`), the
input builder ``fervid loso`` / ``fervid predict`` use
(:mod:`fervid.representation.input_spec`) and the folds of ``fervid loso``
(:mod:`fervid.protocol.splits`). See README.md, "Your own training loop".

``fervid/data/published_results.yaml`` (package data read by ``fervid.report.html``) lives in
this folder too.
"""

from fervid.data.clips import Batch, ClipDataset, Sample, collate
from fervid.data.splits import Fold, kfold_splits, loso_splits
from fervid.data.tables import read_table
from fervid.representation.input_spec import InputSpec
from fervid.samples import SampleTable

__all__ = ["Batch", "ClipDataset", "Fold", "InputSpec", "Sample", "SampleTable", "collate",
           "kfold_splits", "loso_splits", "read_table"]
