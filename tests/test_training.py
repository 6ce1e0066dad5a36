from __future__ import annotations

import torch
import torch.nn.functional as F

from fervid.losses import per_fold_class_weights as class_weights
from fervid.losses import per_fold_cross_entropy


def test_per_fold_loss_is_each_folds_own_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(12, 3, 3)
    y = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 0])
    test_fold = torch.arange(12) % 3
    for mode in ("none", "balanced"):
        w = class_weights(y, test_fold, [0, 1, 2], 3, mode)
        loss, mask = per_fold_cross_entropy(logits, y, test_fold, w)
        want = 0.0
        for f in range(3):
            keep = test_fold != f
            weight = None if w is None else w[f]
            want += F.cross_entropy(logits[keep, f], y[keep], weight=weight)
        torch.testing.assert_close(loss, want)
        assert mask[:, 0].tolist() == (test_fold != 0).float().tolist()


def test_balanced_weights_from_training_labels_only():
    y = torch.tensor([0, 0, 0, 1, 2, 2])
    test_fold = torch.tensor([0, 0, 1, 1, 1, 0])
    w = class_weights(y, test_fold, [0, 1], 3, "balanced")
    # fold 0 trains on samples 2, 3, 4: one of each class -> weights 1
    torch.testing.assert_close(w[0], torch.ones(3))
    # fold 1 trains on samples 0, 1, 5: classes 0, 0, 2 -> 3/(3*2) and 3/(3*1)
    torch.testing.assert_close(w[1], torch.tensor([0.5, 1.0, 1.0]))  # class 1 absent: unused
    assert class_weights(y, test_fold, [0], 3, "none") is None


def test_a_diverged_loss_stops_training_with_a_clear_error():
    import pytest

    from fervid.models.output import ModelOutput
    from fervid.training.loop import TrainingDivergedError, train_one_epoch

    class Blows(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(2))

        def forward(self, x):
            return ModelOutput(x * self.w)

    def criterion(out, y):
        return F.cross_entropy(out.logits, y), {}

    model = Blows()
    batches = [(torch.zeros(2, 2), torch.tensor([0, 1])),
               (torch.full((2, 2), float("nan")), torch.tensor([0, 1]))]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrainingDivergedError, match="nan at batch 2"):
        train_one_epoch(model, criterion, opt, batches)


def test_a_trailing_batch_of_one_is_skipped_only_where_batchnorm_cannot_train_on_it():
    import warnings

    from torch import nn

    from fervid.models.output import ModelOutput
    from fervid.training.loop import SkippedBatchWarning, train_one_epoch

    class Head(nn.Module):
        def __init__(self, norm: bool):
            super().__init__()
            self.fc = nn.Linear(4, 2)
            self.norm = nn.BatchNorm1d(2) if norm else nn.Identity()

        def forward(self, x):
            return ModelOutput(self.norm(self.fc(x)))

    def ce(out, y):
        return nn.functional.cross_entropy(out.logits, y), {}

    x, y = torch.randn(5, 4), torch.tensor([0, 1, 0, 1, 0])
    batches = [(x[:4], y[:4]), (x[4:], y[4:])]
    for norm, seen in ((True, 4), (False, 5)):
        model = Head(norm)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            stats = train_one_epoch(model, ce, torch.optim.SGD(model.parameters(), lr=0.1),
                                    batches)
        assert stats.n == seen
        assert any(w.category is SkippedBatchWarning for w in caught) == norm
