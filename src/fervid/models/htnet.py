"""HTNet: hierarchical transformer over four facial regions (Wang et al., Neurocomputing 2024).

What the paper specifies. The input is the onset→apex optical-flow image (28×28; any three
channels, here strain, v, u). The face is split into four regions, left eye, right eye, left
lip corner and right lip corner (found from landmarks). Each region is cut into patches that
are embedded linearly with learned position embeddings. A hierarchical transformer in the
manner of NesT (Zhang et al., AAAI 2022) follows: level 1 runs transformer blocks inside each
region on its own; an aggregation step (conv 3×3, LayerNorm, max-pool) merges neighbouring
tokens; level 2 runs blocks on pairs of regions (the two eyes together, the two lip corners
together); a second aggregation; level 3 runs blocks on the whole face. The classifier is
LayerNorm → global average pool → Linear. Defaults: dim 256, 3 heads, block repeats
(2, 2, 10), MLP ratio 4; widths and heads double at each aggregation.

What we decided.

* **A fixed template, not landmarks.** Our flow images are already aligned faces, so the eyes
  lie in the top half and the mouth corners in the bottom half of the 28×28 image. The four
  regions are its quadrants (:data:`REGIONS`, 14×14 px each for 28×28 inputs); "left" and
  "right" are as seen in the image. The pairs of level 2 are the template's rows.
* **Regions never straddle a patch**: ``patch_size`` must divide the region side (7 → 2×2
  patches per region at 28×28).
* **Aggregation pools 2×2 only inside a region** (stride 2, and only while a region is an even
  number of tokens wide), so a pooled token never mixes two regions' tokens. At 28×28 with
  patch 7 the first aggregation leaves one token per region and the second keeps that 2×2 grid:
  halving again would leave a single token, on which self-attention is a mere linear map
  (which is what happens in the authors' code, where every block holds one token).
* **A LayerNorm after the patch embedding** (not in the paper), so raw 0..255 flow images
  (``data.scale: 1``) and rescaled ones train alike.
* **Heads of width ``dim // heads``**, as in the authors' code (256 is not divisible by 3).
* **``drop_rate`` is dropout before the head only.**
* **The builder's defaults are a CPU-sized HTNet** (dim 64, 2 heads, block repeats (1, 1, 2),
  MLP ratio 2): fervid trains 68 LOSO folds on a two-core CPU. Pass the paper's values to
  :class:`HTNet` (or the builder) for the full-sized model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fervid.config import ConfigError
from fervid.models.output import ModelOutput
from fervid.models.registry import register_model

#: The fixed template: each facial region's cell ``(row, col)`` in a 2×2 tiling of the aligned
#: face (image coordinates: row 0 is the top). For 28×28 inputs the cells are 14×14 px, so the
#: boxes ``(y0, y1, x0, x1)`` are left_eye (0, 14, 0, 14), right_eye (0, 14, 14, 28),
#: left_lip (14, 28, 0, 14) and right_lip (14, 28, 14, 28).
REGIONS = {"left_eye": (0, 0), "right_eye": (0, 1), "left_lip": (1, 0), "right_lip": (1, 1)}
#: The paper's full-sized configuration.
PAPER_CONFIG = {"dim": 256, "heads": 3, "depths": (2, 2, 10), "mlp_ratio": 4.0}


def region_boxes(img_size: int = 28) -> dict[str, tuple[int, int, int, int]]:
    """The pixel box ``(y0, y1, x0, x1)`` of each region of :data:`REGIONS`."""
    side = img_size // 2
    return {name: (r * side, (r + 1) * side, c * side, (c + 1) * side)
            for name, (r, c) in REGIONS.items()}


def split_regions(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, S, S)`` → the four regions ``(B, 4, C, S/2, S/2)``, in :data:`REGIONS` order."""
    boxes = region_boxes(x.shape[-1]).values()
    return torch.stack([x[..., y0:y1, x0:x1] for y0, y1, x0, x1 in boxes], 1)


def _assemble(regions: torch.Tensor) -> torch.Tensor:
    """Region token maps ``(B, 4, t, t, C)`` → the face grid ``(B, 2t, 2t, C)`` (the template's
    layout)."""
    at = {cell: i for i, cell in enumerate(REGIONS.values())}
    rows = [torch.cat([regions[:, at[r, c]] for c in range(2)], 2) for r in range(2)]
    return torch.cat(rows, 1)


def _blocks(x: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
    """Grid ``(B, H, W, C)`` → non-overlapping ``bh×bw`` blocks ``(B·nblocks, bh·bw, C)``."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // bh, bh, w // bw, bw, c).transpose(2, 3)
    return x.reshape(-1, bh * bw, c)


def _unblocks(t: torch.Tensor, shape: torch.Size, bh: int, bw: int) -> torch.Tensor:
    """Inverse of :func:`_blocks`."""
    b, h, w, c = shape
    return t.reshape(b, h // bh, w // bw, bh, bw, c).transpose(2, 3).reshape(b, h, w, c)


class Attention(nn.Module):
    """Multi-head self-attention with heads of width ``dim // heads``.

    Shapes
    ------
    ``(N, L, dim)`` → ``(N, L, dim)``.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        inner = self.heads * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        q, k, v = self.qkv(x).reshape(n, length, 3, self.heads, self.head_dim).permute(
            2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, -1))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + Attn(LN x)``, then ``x + MLP(LN x)``.

    Shapes
    ------
    ``(N, L, dim)`` → ``(N, L, dim)``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = max(1, round(dim * mlp_ratio))
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Aggregate(nn.Module):
    """NesT's block aggregation: conv 3×3 → LayerNorm → max-pool 2×2 (when ``pool``).

    The convolution is where neighbouring blocks first see each other.

    Shapes
    ------
    ``(B, H, W, C_in)`` → ``(B, H/2, W/2, C_out)`` (``pool``) or ``(B, H, W, C_out)``.
    """

    def __init__(self, dim_in: int, dim_out: int, *, pool: bool):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(dim_out)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1))
        return self.pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class HTNet(nn.Module):
    """HTNet over a fixed four-region face template.

    Parameters
    ----------
    in_chans : int
        Input channels (3: strain, v, u; the order does not matter to the model).
    num_classes : int
        Output classes.
    drop_rate : float
        Dropout before the classifier.
    img_size : int
        Input side (28); each region is ``img_size / 2`` wide.
    patch_size : int
        Patch side; must divide ``img_size / 2`` (7: 2×2 patches per region).
    dim : int
        Token width at level 1; it doubles at each aggregation (``dim``, ``2 dim``, ``4 dim``).
    heads : int
        Attention heads at level 1; doubled at each aggregation like the width.
    depths : sequence of 3 ints
        Transformer blocks at levels 1 (each region), 2 (each pair), 3 (the face); the
        paper's "block repeats". 0 skips a level's blocks.
    mlp_ratio : float
        MLP hidden width over token width.

    Attributes
    ----------
    num_features : int
        Width of the pooled feature the head reads, ``4 * dim``.

    Shapes
    ------
    input ``(B, in_chans, img_size, img_size)``, e.g. ``(B, 3, 28, 28)`` → logits
    ``(B, num_classes)``, features ``(B, 4 * dim)``. Token grids (:meth:`forward_levels`) at
    28×28, patch 7: level 1 ``(B, 4, 4, dim)``, level 2 ``(B, 2, 2, 2 dim)``, level 3
    ``(B, 2, 2, 4 dim)``.
    """

    def __init__(self, *, in_chans: int = 3, num_classes: int = 3, drop_rate: float = 0.0,
                 img_size: int = 28, patch_size: int = 7, dim: int = 64, heads: int = 2,
                 depths: Sequence[int] = (1, 1, 2), mlp_ratio: float = 2.0):
        super().__init__()
        depths = tuple(depths)
        side = img_size // 2
        if img_size < 2 or img_size % 2 or patch_size < 1 or side % patch_size:
            raise ConfigError(f"HTNet: img_size={img_size} does not split into four square "
                              f"regions of whole {patch_size}×{patch_size} patches "
                              f"(patch_size must divide img_size / 2)")
        if len(depths) != 3 or min(depths) < 0:
            raise ConfigError(f"HTNet: depths={depths} must be 3 block counts >= 0 "
                              f"(region, pair, face)")
        if not 1 <= heads <= dim:
            raise ConfigError(f"HTNet: heads={heads} must be between 1 and dim={dim}")
        if mlp_ratio <= 0:
            raise ConfigError(f"HTNet: mlp_ratio={mlp_ratio} must be > 0")
        if not 0.0 <= drop_rate < 1.0:
            raise ConfigError(f"HTNet: drop_rate={drop_rate} must be in [0, 1)")
        self.in_chans, self.num_classes, self.drop_rate = in_chans, num_classes, drop_rate
        self.img_size, self.patch_size, self.depths = img_size, patch_size, depths
        dims = (dim, 2 * dim, 4 * dim)
        self.dims = dims

        # Tokens per region side at each level: a 2×2 pool only where it stays inside a region.
        t1 = side // patch_size
        t2 = t1 // 2 if t1 % 2 == 0 else t1
        t3 = t2 // 2 if t2 % 2 == 0 else t2
        self.region_tokens = (t1, t2, t3)

        self.patch_embed = nn.Conv2d(in_chans, dim, kernel_size=patch_size, stride=patch_size)
        self.embed_norm = nn.LayerNorm(dim)
        # Level 1 has one embedding per region and position, so the blocks (whose weights all
        # regions share) know which region they look at.
        self.pos1 = nn.Parameter(torch.zeros(1, len(REGIONS), t1 * t1, dims[0]))
        self.pos2 = nn.Parameter(torch.zeros(1, 2 * t2, 2 * t2, dims[1]))
        self.pos3 = nn.Parameter(torch.zeros(1, 2 * t3, 2 * t3, dims[2]))
        for p in (self.pos1, self.pos2, self.pos3):
            nn.init.trunc_normal_(p, std=0.02)
        self.level1, self.level2, self.level3 = (
            nn.Sequential(*(TransformerBlock(d, heads * 2 ** i, mlp_ratio) for _ in range(n)))
            for i, (d, n) in enumerate(zip(dims, depths, strict=True)))
        self.aggregate1 = Aggregate(dims[0], dims[1], pool=t2 != t1)
        self.aggregate2 = Aggregate(dims[1], dims[2], pool=t3 != t2)

        self.num_features = dims[2]
        self.norm = nn.LayerNorm(self.num_features)
        self.dropout = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes)

    def _check_input(self, x: torch.Tensor) -> None:
        want = (self.in_chans, self.img_size, self.img_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise ConfigError(f"HTNet takes (B, {want[0]}, {want[1]}, {want[2]}) inputs "
                              f"(in_chans, img_size), got {tuple(x.shape)}")

    def forward_levels(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each level's transformer output as a face grid ``(B, H_l, W_l, C_l)``.

        Level 1 is computed from each region's pixels alone.
        """
        self._check_input(x)
        b = x.shape[0]
        t1, t2, _ = self.region_tokens
        regions = split_regions(x).flatten(0, 1)                       # (B·4, C, S/2, S/2)
        tokens = self.embed_norm(self.patch_embed(regions).flatten(2).transpose(1, 2))
        tokens = (tokens.unflatten(0, (b, len(REGIONS))) + self.pos1).flatten(0, 1)
        tokens = self.level1(tokens)                                   # (B·4, t1², dim)
        g1 = _assemble(tokens.reshape(b, len(REGIONS), t1, t1, -1))

        g = self.aggregate1(g1) + self.pos2
        # Level 2: one block per template row, i.e. the two eyes, then the two lip corners.
        g2 = _unblocks(self.level2(_blocks(g, t2, 2 * t2)), g.shape, t2, 2 * t2)

        g = self.aggregate2(g2) + self.pos3
        g3 = self.level3(g.flatten(1, 2)).reshape(g.shape)
        return [g1, g2, g3]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, S, S)`` → pooled face feature ``(B, num_features)``."""
        return self.norm(self.forward_levels(x)[-1]).mean((1, 2))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> ModelOutput:
        features = self.forward_features(x)
        return ModelOutput(self.forward_head(features), features)


@register_model(protocols=("loso",))
def htnet(*, in_chans: int = 3, num_classes: int = 3, drop_rate: float = 0.0,
          img_size: int = 28, patch_size: int = 7, dim: int = 64, heads: int = 2,
          depths: Sequence[int] = (1, 1, 2), mlp_ratio: float = 2.0) -> HTNet:
    """Build a CPU-sized HTNet (``**PAPER_CONFIG`` gives the paper's), PyTorch's default
    initialisation except the position embeddings (truncated normal, std 0.02)."""
    return HTNet(in_chans=in_chans, num_classes=num_classes, drop_rate=drop_rate,
                 img_size=img_size, patch_size=patch_size, dim=dim, heads=heads,
                 depths=depths, mlp_ratio=mlp_ratio)
