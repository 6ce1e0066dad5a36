"""Every LOSO fold's STSTNet trained at once, as one batched model.

A 68-fold LOSO of STSTNet is 68 copies of one tiny convolution. Trained one after another, the
run is bound by per-step overhead and by memory traffic: each conv output (16×30×30 per sample)
is written, read by ReLU, by BatchNorm, by the pool, and again in backward. Here all folds share
one input batch, their convolutions become one matrix product, and the stage

    conv → ReLU → BatchNorm → max-pool 3/3

is fused so that the full-resolution maps only ever live in cache, a few samples at a time:

* max-pool commutes with ReLU and with BatchNorm's per-channel affine map when its scale is
  positive (for a negative scale the max becomes a min, handled too), so the pool runs *before*
  BatchNorm and only the 10×10 pooled maps leave the fused stage;
* BatchNorm's statistics need per-channel sums of ``r = relu(x)`` and ``r²`` over the full maps;
  with im2col patches ``p`` (a ones column carries the bias) ``x = w·p``, so
  ``Σ r = Q2[..., -1]`` and ``Σ r² = Σ r·x = w·Q2`` where ``Q2 = Σ_p r_p p`` and
  ``Q1 = Σ_p 1[x_p > 0] p`` are the only full-resolution reductions kept for backward;
* backward needs no recomputation: the gradient of a weight row is ``Q1·∂L/∂Σr + 2·Q2·∂L/∂Σr²``
  plus the pooled positions' patches.

Each fold's held-out subject is masked out of its loss *and* out of its BatchNorm statistics
(batch and running), so no test sample ever touches the fold that tests on it. Adam is
element-wise, so one optimiser over the stacked parameters is exactly one Adam per fold.
:meth:`FoldBatchedSTSTNet.fold_state_dict` exports any fold as a plain :class:`STSTNet`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fervid.models.output import ModelOutput
from fervid.models.ststnet import STREAM_WIDTHS, STSTNet

WIDTH = sum(STREAM_WIDTHS)  # 16 channels per fold
SIDE, POOLED = 30, 10  # conv output 30×30 (28 + 2·2 − 3 + 1), pooled 10×10
POSITIONS = SIDE * SIDE


def im2col_patches(x: torch.Tensor) -> torch.Tensor:
    """Conv patches of STSTNet's first layer, computed once per data set.

    ``(N, C, 28, 28)`` → ``(N, 900, 9C + 1)``; the last column is ones (the bias).
    """
    n = x.shape[0]
    cols = F.unfold(x.float(), kernel_size=3, padding=2).transpose(1, 2)  # (N, 900, 9C)
    return torch.cat([cols, cols.new_ones(n, POSITIONS, 1)], dim=2).contiguous()


_SHIFTS = torch.arange(8, dtype=torch.uint8)


def _dropout_keep(shape: tuple[int, ...], drop: float, device: torch.device) -> torch.Tensor:
    """Bernoulli keep-mask from the default generator (so checkpoints can restore it).

    For the paper's p = 0.5 every random bit is one coin, 64 per draw: far cheaper than
    ``bernoulli_`` on the tens of millions of pooled activations of a 68-fold batch.
    """
    numel = 1
    for d in shape:
        numel *= d
    if drop == 0.5:
        words = torch.randint(-(2**63), 2**63 - 1, ((numel + 63) // 64,), dtype=torch.int64,
                              device=device)
        bits = (words.view(torch.uint8).unsqueeze(-1) >> _SHIFTS.to(device)) & 1
        return bits.view(-1)[:numel].view(shape).bool()
    return torch.rand(shape, device=device) >= drop


class _ConvReluPoolDropAvg(torch.autograd.Function):
    """Fused conv → ReLU → (max|min)-pool 3/3 → dropout → avg-pool 2/2, plus BatchNorm sums.

    BatchNorm's affine map is applied by the caller *after* this function: with
    ``a = avgpool(keep·M)/q`` and ``d = avgpool(keep)/q`` the network's
    ``avgpool(dropout(scale·M + shift))`` equals ``scale·a + shift·d``.

    Inputs: patches ``(B, 900, K)``; weight ``(C, K)`` (bias as last column); ``test_fold``
    ``(B,)`` long, the fold each sample is held out of (-1: none), for the masked sums;
    ``minpool`` ``(C,)`` bool or None (channels whose BatchNorm scale is negative); chunk size;
    ``training`` (dropout and statistics); dropout probability.
    Outputs: ``a`` and ``d`` ``(B, C, 5, 5)``; ``Σ r`` and ``Σ r²`` ``(C,)`` over every
    position of the samples that train each channel's fold.
    """

    @staticmethod
    def forward(ctx, patches, weight, test_fold, minpool, chunk, training, drop):
        # Matrix products run in the patches' dtype (float32, or bfloat16 for speed: products
        # are accumulated in float32 inside each product, and across chunks in float32 here).
        b, _, k = patches.shape
        c = weight.shape[0]
        low = patches.dtype
        weight32, weight = weight, weight.to(low)
        n_folds = c // WIDTH
        dropping = training and drop > 0
        scale = 1.0 / (1.0 - drop) if dropping else 1.0
        # Per chunk: where each pooled value came from, and where its gradient may pass.
        indices, gates, avgs, denss = [], [], [], []
        q1 = weight32.new_zeros(c, k) if training else None  # Σ 1[x > 0]·p
        q2 = weight32.new_zeros(c, k) if training else None  # Σ r·p
        wt = weight.t()
        # Reused buffers: a fresh multi-MB tensor per chunk costs page faults, not just time.
        r_buf = patches.new_empty(min(chunk, b) * POSITIONS, c)
        on_buf = torch.empty_like(r_buf) if training else None
        for s in range(0, b, chunk):
            p = patches[s:s + chunk]
            n = p.shape[0]
            flat = p.reshape(n * POSITIONS, k)
            r = torch.mm(flat, wt, out=r_buf[:n * POSITIONS]).relu_()  # (n·900, C)
            planes = r.view(n, SIDE, SIDE, c).permute(0, 3, 1, 2)  # channels-last (n, C, 30, 30)
            top, idx = F.max_pool2d(planes, 3, 3, 1, return_indices=True)
            if minpool is not None:
                neg, neg_idx = F.max_pool2d(-planes, 3, 3, 1, return_indices=True)
                sel = minpool.view(1, c, 1, 1)
                top, idx = torch.where(sel, -neg, top), torch.where(sel, neg_idx, idx)
            top = top.to(weight32.dtype)
            gate = top > 0  # ReLU passes the gradient only where r > 0
            if dropping:
                keep = _dropout_keep((n, c, POOLED, POOLED), drop, p.device)
                gate &= keep
                top = top * keep
                denss.append(F.avg_pool2d(keep.to(top.dtype), 2, 2) * scale)
            avgs.append(F.avg_pool2d(top, 2, 2) * scale)
            indices.append(idx)
            gates.append(gate)
            if training:
                # Zero each held-out sample's maps for the fold that tests on it, so that its
                # data never enters that fold's statistics, not even through rounding.
                tf = test_fold[s:s + n]
                own = (tf >= 0).nonzero().flatten()
                if len(own):
                    r.view(n, POSITIONS, n_folds, WIDTH)[own, :, tf[own]] = 0
                on = torch.sign(r, out=on_buf[:n * POSITIONS])
                if low == q2.dtype:
                    q2.addmm_(r.t(), flat)
                    q1.addmm_(on.t(), flat)
                else:
                    q2 += torch.mm(r.t(), flat).to(q2.dtype)
                    q1 += torch.mm(on.t(), flat).to(q1.dtype)
        avg = torch.cat(avgs)
        dens = torch.cat(denss) if dropping else torch.ones_like(avg)
        if training:
            sum_r = q2[:, -1].clone()
            sum_r2 = (q2 * weight32).sum(-1)
        else:
            sum_r = sum_r2 = weight32.new_zeros(c)
        ctx.mark_non_differentiable(dens)
        ctx.chunk, ctx.scale, ctx.indices, ctx.gates = chunk, scale, indices, gates
        ctx.save_for_backward(patches, q1, q2)
        return avg, dens, sum_r, sum_r2

    @staticmethod
    def backward(ctx, d_avg, _d_dens, d_sum_r, d_sum_r2):
        patches, q1, q2 = ctx.saved_tensors
        b, _, k = patches.shape
        c = d_avg.shape[1]
        d_weight = d_avg.new_zeros(c, k)
        if q1 is not None:
            d_weight += d_sum_r[:, None] * q1 + 2 * d_sum_r2[:, None] * q2
        d_avg = d_avg * (ctx.scale / 4)
        grid_buf = patches.new_empty(min(ctx.chunk, b), c, POSITIONS)
        for i, s in enumerate(range(0, b, ctx.chunk)):
            n = min(ctx.chunk, b - s)
            # avg-pool backward, then dropout and ReLU, then to the one position pooled
            d_top = d_avg[s:s + n].repeat_interleave(2, 2).repeat_interleave(2, 3)
            d_top = (d_top * ctx.gates[i]).reshape(n, c, -1)
            grid = grid_buf[:n].zero_()
            grid.scatter_(2, ctx.indices[i].reshape(n, c, -1), d_top.to(grid.dtype))
            d_weight += torch.bmm(grid, patches[s:s + n]).sum(0).to(d_weight.dtype)
        del ctx.indices, ctx.gates
        return None, d_weight, None, None, None, None, None


class FoldBatchedSTSTNet(nn.Module):
    """``n_folds`` independent STSTNets evaluated on one shared batch.

    Parameters
    ----------
    n_folds : int
        Number of models (LOSO folds).
    in_chans, num_classes, drop_rate :
        As :class:`STSTNet`.
    chunk : int
        Samples per fused step; 2–4 keeps a chunk's conv maps in cache.

    Shapes
    ------
    ``patches`` ``(B, 900, 9·in_chans + 1)`` from :func:`im2col_patches` and ``test_fold``
    ``(B,)`` long, the fold each sample is held out of (-1: it trains every fold) → logits
    ``(B, n_folds, num_classes)``. In training, sample ``b`` contributes to fold ``f``'s loss and
    BatchNorm statistics only where ``test_fold[b] != f``.
    """

    def __init__(self, n_folds: int, *, in_chans: int = 3, num_classes: int = 3,
                 drop_rate: float = 0.5, chunk: int = 4, momentum: float = 0.1,
                 eps: float = 1e-5):
        super().__init__()
        self.n_folds, self.in_chans, self.num_classes = n_folds, in_chans, num_classes
        self.drop_rate, self.chunk, self.momentum, self.eps = drop_rate, chunk, momentum, eps
        k = in_chans * 9
        self.conv_weight = nn.Parameter(torch.empty(n_folds, WIDTH, k))
        self.conv_bias = nn.Parameter(torch.empty(n_folds, WIDTH))
        self.bn_weight = nn.Parameter(torch.ones(n_folds, WIDTH))
        self.bn_bias = nn.Parameter(torch.zeros(n_folds, WIDTH))
        self.register_buffer("running_mean", torch.zeros(n_folds, WIDTH))
        self.register_buffer("running_var", torch.ones(n_folds, WIDTH))
        self.register_buffer("num_batches_tracked", torch.zeros(n_folds, dtype=torch.long))
        self.fc_weight = nn.Parameter(torch.empty(n_folds, num_classes, WIDTH * 25))
        self.fc_bias = nn.Parameter(torch.empty(n_folds, num_classes))

    @classmethod
    def from_models(cls, models: list[STSTNet], **kwargs) -> FoldBatchedSTSTNet:
        """Stack independently initialised STSTNets, one per fold."""
        first = models[0]
        batched = cls(len(models), in_chans=first.in_chans, num_classes=first.num_classes,
                      drop_rate=first.drop_rate, **kwargs)
        for f, m in enumerate(models):
            batched.load_fold_state_dict(f, m.state_dict())
        return batched

    def load_fold_state_dict(self, fold: int, state: dict[str, torch.Tensor]) -> None:
        """Copy a plain :class:`STSTNet` state dict into fold ``fold``."""
        convs = [state[f"conv{i}.weight"].flatten(1) for i in (1, 2, 3)]
        with torch.no_grad():
            self.conv_weight[fold] = torch.cat(convs)
            for name, target in (("bias", self.conv_bias),):
                target[fold] = torch.cat([state[f"conv{i}.{name}"] for i in (1, 2, 3)])
            for name, target in (("weight", self.bn_weight), ("bias", self.bn_bias),
                                 ("running_mean", self.running_mean),
                                 ("running_var", self.running_var)):
                target[fold] = torch.cat([state[f"bn{i}.{name}"] for i in (1, 2, 3)])
            self.num_batches_tracked[fold] = state["bn1.num_batches_tracked"]
            self.fc_weight[fold] = state["fc.weight"]
            self.fc_bias[fold] = state["fc.bias"]

    def fold_state_dict(self, fold: int) -> dict[str, torch.Tensor]:
        """Fold ``fold`` as a plain :class:`STSTNet` state dict (loads with strict=True)."""
        state: dict[str, torch.Tensor] = {}
        start = 0
        for i, width in enumerate(STREAM_WIDTHS, 1):
            part = slice(start, start + width)
            state[f"conv{i}.weight"] = self.conv_weight[fold, part].reshape(
                width, self.in_chans, 3, 3).detach().cpu().clone()
            state[f"conv{i}.bias"] = self.conv_bias[fold, part].detach().cpu().clone()
            for name, src in (("weight", self.bn_weight), ("bias", self.bn_bias),
                              ("running_mean", self.running_mean),
                              ("running_var", self.running_var)):
                state[f"bn{i}.{name}"] = src[fold, part].detach().cpu().clone()
            state[f"bn{i}.num_batches_tracked"] = self.num_batches_tracked[fold].cpu().clone()
            start += width
        state["fc.weight"] = self.fc_weight[fold].detach().cpu().clone()
        state["fc.bias"] = self.fc_bias[fold].detach().cpu().clone()
        return state

    def forward(self, patches: torch.Tensor, test_fold: torch.Tensor | None = None
                ) -> ModelOutput:
        """``patches`` ``(B, P, K)`` (:func:`im2col_patches`), ``test_fold`` ``(B,)`` → logits
        ``(B, F, num_classes)``, one row per fold."""
        b = patches.shape[0]
        fo, c = self.n_folds, self.n_folds * WIDTH
        if test_fold is None:
            if self.training:
                raise ValueError("training needs test_fold (B,): the fold each sample is held "
                                 "out of, -1 for none")
            test_fold = torch.full((b,), -1, dtype=torch.long, device=patches.device)
        weight = torch.cat([self.conv_weight, self.conv_bias.unsqueeze(-1)], -1).view(c, -1)
        gamma = self.bn_weight
        negative = gamma.detach().reshape(c) < 0
        minpool = negative if bool(negative.any()) else None
        avg, dens, sum_r, sum_r2 = _ConvReluPoolDropAvg.apply(
            patches, weight, test_fold, minpool, self.chunk, self.training, self.drop_rate)
        if self.training:
            trains = b - torch.bincount(test_fold[test_fold >= 0], minlength=fo)  # (F,)
            count = trains.clamp_min(1).double() * POSITIONS
            mean = sum_r.view(fo, WIDTH).double() / count[:, None]
            var = (sum_r2.view(fo, WIDTH).double() / count[:, None] - mean * mean).clamp_min(0)
            with torch.no_grad():
                unbiased = var * (count / (count - 1).clamp_min(1))[:, None]
                m = self.momentum
                # A fold with no training sample in this batch keeps its statistics (the
                # engine builds batches so this does not happen; a direct caller might).
                active = (trains > 0)[:, None]
                self.running_mean.copy_(torch.where(
                    active, (1 - m) * self.running_mean + m * mean.float(), self.running_mean))
                self.running_var.copy_(torch.where(
                    active, (1 - m) * self.running_var + m * unbiased.float(), self.running_var))
                self.num_batches_tracked.add_(active[:, 0].long())
            mean, var = mean.float(), var.float()
        else:
            mean, var = self.running_mean, self.running_var
        scale = (gamma / torch.sqrt(var + self.eps)).view(1, c, 1, 1)
        shift = (self.bn_bias - mean * scale.view(fo, WIDTH)).view(1, c, 1, 1)
        y = (avg * scale + dens * shift).reshape(b, fo, WIDTH * 25)
        return ModelOutput(torch.einsum("bfk,fnk->bfn", y, self.fc_weight) + self.fc_bias)
