"""SMA-STN training throughput beside a plain ResNet-18 fed the same K+1 images, in one run.

The target: SMA-STN (shared ResNet-18 + STMA non-local block + temporal attention) trains at
no less than 75% of the samples/s of a plain torchvision ResNet-18 that sees the same K+1
images of every sample and averages their features. Both run alternately, one optimiser
step per batch, on the same random batch; medians of the repeats are printed with the ratio.

    python benchmarks/smastn_throughput.py [--size 112] [--k 4] [--batch 8] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18

from fervid.models.smastn import smastn


class PlainResNetOverImages(nn.Module):
    """``(B, K+1, C, H, W)`` → ResNet-18 on every image → mean feature → linear."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.net = resnet18(weights=None, num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[:2]
        net = self.net
        h = net.maxpool(net.relu(net.bn1(net.conv1(x.flatten(0, 1)))))
        h = net.layer4(net.layer3(net.layer2(net.layer1(h))))
        h = torch.flatten(net.avgpool(h), 1).unflatten(0, (b, n)).mean(1)
        return net.fc(h)


def step_time(model: nn.Module, opt, x, y) -> float:
    start = time.perf_counter()
    logits = model(x).logits
    loss = F.cross_entropy(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--k", type=int, default=4, help="local segments (K)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.k + 1, 3, args.size, args.size)
    y = torch.randint(0, 5, (args.batch,))
    models = {"plain ResNet-18 over K+1 images": PlainResNetOverImages(5),
              "SMA-STN (ResNet-18 + STMA)": smastn(num_classes=5)}
    opts = {n: torch.optim.Adam(m.parameters(), 1e-4) for n, m in models.items()}
    times: dict[str, list[float]] = {n: [] for n in models}
    for n, m in models.items():  # warm-up
        step_time(m, opts[n], x, y)
    for _ in range(args.repeats):
        for n, m in models.items():
            times[n].append(step_time(m, opts[n], x, y))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {args.batch} x "
          f"{args.k + 1} images of {args.size}x{args.size}, {args.repeats} repeats")
    rate = {}
    for n in models:
        rate[n] = args.batch / statistics.median(times[n])
        print(f"{n:34s} {rate[n]:8.2f} samples/s")
    plain, ours = rate.values()
    print(f"SMA-STN / plain: {ours / plain:.3f} (target >= 0.75)")


if __name__ == "__main__":
    main()
