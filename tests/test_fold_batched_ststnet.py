"""The batched-fold STSTNet must be exactly n independent STSTNets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fervid.models.fold_batched_ststnet import FoldBatchedSTSTNet, im2col_patches
from fervid.models.ststnet import STSTNet


def _setup(n_folds=3, n=24, drop=0.0, seed=0):
    torch.manual_seed(seed)
    models = [STSTNet(drop_rate=drop) for _ in range(n_folds)]
    x = torch.rand(n, 3, 28, 28) * 255
    y = torch.randint(0, 3, (n,))
    subject = torch.arange(n) % n_folds  # fold f tests on subject f
    batched = FoldBatchedSTSTNet.from_models(models, chunk=5)
    return models, batched, x, y, subject


def _per_fold_loss(logits, y, test_fold):
    mask = test_fold[:, None] != torch.arange(logits.shape[1])[None, :]
    ce = F.cross_entropy(logits.permute(0, 2, 1), y[:, None].expand_as(mask), reduction="none")
    m = mask.float()
    return ((ce * m).sum(0) / m.sum(0)).sum()


@pytest.mark.parametrize("negative_gamma", [False, True])
def test_training_step_matches_independent_models(negative_gamma):
    models, batched, x, y, test_fold = _setup()
    mask = test_fold[:, None] != torch.arange(3)[None, :]
    if negative_gamma:  # a negative BatchNorm scale turns the max-pool into a min-pool
        with torch.no_grad():
            for m in models:
                m.bn2.weight[1] = -0.7
            batched.bn_weight[:, 4] = -0.7
    logits = batched(im2col_patches(x), test_fold).logits
    _per_fold_loss(logits, y, test_fold).backward()
    for f, m in enumerate(models):
        m.train()
        keep = mask[:, f]
        out = m(x[keep]).logits
        torch.testing.assert_close(logits[keep, f], out, rtol=1e-4, atol=1e-4)
        F.cross_entropy(out, y[keep]).backward()
        ref = {k: v.grad for k, v in m.named_parameters()}
        got = {
            "conv": batched.conv_weight.grad[f],
            "fc": batched.fc_weight.grad[f],
            "bn": batched.bn_weight.grad[f],
        }
        want_conv = torch.cat([ref[f"conv{i}.weight"].flatten(1) for i in (1, 2, 3)])
        want_bn = torch.cat([ref[f"bn{i}.weight"] for i in (1, 2, 3)])
        torch.testing.assert_close(got["conv"], want_conv, rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(got["bn"], want_bn, rtol=1e-3, atol=1e-4)
        torch.testing.assert_close(got["fc"], ref["fc.weight"], rtol=1e-3, atol=1e-4)
        # BatchNorm running statistics come from the fold's training samples only
        state = batched.fold_state_dict(f)
        torch.testing.assert_close(state["bn3.running_mean"], m.bn3.running_mean)
        torch.testing.assert_close(state["bn3.running_var"], m.bn3.running_var, rtol=1e-4,
                                   atol=1e-4)


def test_test_subject_never_touches_its_fold():
    _, batched, x, y, test_fold = _setup()
    mask = test_fold[:, None] != torch.arange(3)[None, :]
    x2 = x.clone()
    x2[~mask[:, 0]] = torch.rand_like(x2[~mask[:, 0]]) * 255  # change fold 0's test samples
    for data in (x, x2):
        b = FoldBatchedSTSTNet.from_models([STSTNet(drop_rate=0.0)] * 3)
        b.load_state_dict(batched.state_dict())
        logits = b(im2col_patches(data), test_fold).logits
        _per_fold_loss(logits, y, test_fold).backward()
        if data is x:
            first = (b.conv_weight.grad[0].clone(), b.running_var[0].clone())
        else:
            assert torch.equal(b.conv_weight.grad[0], first[0])
            assert torch.equal(b.running_var[0], first[1])
            assert not torch.equal(b.running_var[1], first[1])


def test_eval_matches_and_exports_plain_state_dict():
    models, batched, x, _, _ = _setup()
    batched.eval()
    with torch.no_grad():
        logits = batched(im2col_patches(x)).logits
    for f, m in enumerate(models):
        m.eval()
        fresh = STSTNet(drop_rate=0.0)
        fresh.load_state_dict(batched.fold_state_dict(f), strict=True)
        fresh.eval()
        with torch.no_grad():
            torch.testing.assert_close(logits[:, f], fresh(x).logits, rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(logits[:, f], m(x).logits, rtol=1e-4, atol=1e-4)
