"""BatchNorm over the whole batch of a DDP step, whatever the device.

Under DDP each rank holds ``1/world_size`` of a batch. Plain BatchNorm would normalise by that
share's statistics, so a run's loss would depend on its number of devices. torch's
``nn.SyncBatchNorm`` fixes that on GPUs only (its forward raises on a CPU tensor), so on other
devices :func:`convert_sync_batchnorm` swaps in :class:`SyncBatchNorm`, built from
differentiable all-reduces: gloo (CPU) runs then compute what one process computes on the whole
batch, up to rounding.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce
from torch.nn.modules.batchnorm import _BatchNorm


class SyncBatchNorm(_BatchNorm):
    """BatchNorm of any dimension whose training statistics span every rank.

    Input ``(N, C, *)``. In eval mode, or outside a process group of several ranks, it is
    plain BatchNorm. The backward pass is exact: the all-reduces' gradients are all-reduced.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected an (N, C, *) input, got {input.dim()} dimension(s)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        x = input.float()  # statistics in float32, as BatchNorm keeps them under autocast
        dims, shape = [0, *range(2, x.dim())], (1, -1, *[1] * (x.dim() - 2))
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        dist.all_reduce(count)
        n = float(count)
        if n <= 1:
            raise ValueError("expected more than 1 value per channel when training")
        mean = all_reduce(x.sum(dims)) / n
        centred = x - mean.view(shape)  # two passes: no cancellation in E[x²] - E[x]²
        var = all_reduce(centred.square().sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (self.momentum if self.momentum is not None
                     else 1.0 / float(self.num_batches_tracked))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
                self.running_var.lerp_((var * (n / (n - 1))).to(self.running_var.dtype), m)
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(input.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` with every BatchNorm layer synchronised across ranks (torch's
    ``nn.SyncBatchNorm`` on CUDA, :class:`SyncBatchNorm` elsewhere); parameters, buffers and
    state-dict keys are kept, so a saved model loads into the unconverted network."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert(module)


def _convert(module: nn.Module) -> nn.Module:
    out = module
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm
                                                          | nn.SyncBatchNorm):
        out = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _convert(child))
    return out
