"""Leave-one-subject-out folds and the typed data the training engines consume."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fervid.number_ranges import parse_ranges
from fervid.samples import SampleTable, subject_key


@dataclass(frozen=True)
class LosoData:
    """Model inputs of a LOSO run.

    ``x`` ``(N, C, H, W)`` (images) or ``(N, K+1, C, H, W)`` (DSSI stacks), float32 or float16
    (cast per batch), ``y`` ``(N,)`` long class indices, and the sample table they came from
    (same order). ``train_views`` ``(V, *x.shape)``, when given, holds V jittered versions of
    every input: each training epoch draws one per sample; evaluation always uses ``x``.
    """

    x: torch.Tensor
    y: torch.Tensor
    table: SampleTable
    train_views: torch.Tensor | None = None

    def __post_init__(self):
        if not (len(self.x) == len(self.y) == len(self.table)):
            raise ValueError(f"x ({len(self.x)}), y ({len(self.y)}) and the table "
                             f"({len(self.table)}) differ in length")
        if self.train_views is not None and self.train_views.shape[1:] != self.x.shape:
            raise ValueError(f"train_views {tuple(self.train_views.shape)} must be (V, "
                             f"{', '.join(map(str, self.x.shape))})")

    @property
    def in_chans(self) -> int:
        """Channels of one image (dim -3 of ``x``)."""
        return self.x.shape[-3]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.table.classes


@dataclass(frozen=True)
class LosoFolds:
    """Fold ``k`` holds out subject ``subjects[k]`` (``dataset/subject``).

    Subjects are numbered in order of first appearance in the table, so a fold's number is
    stable for a given data set and can be used to shard a run (``--folds 0-33``).
    """

    subjects: tuple[str, ...]
    sample_fold: torch.Tensor  # (N,) long: the fold each sample is held out of

    @classmethod
    def from_table(cls, table: SampleTable) -> LosoFolds:
        subjects = tuple(table.subjects)
        number = {s: k for k, s in enumerate(subjects)}
        fold = torch.tensor([number[subject_key(s)] for s in table], dtype=torch.long)
        return cls(subjects, fold)

    def __len__(self) -> int:
        return len(self.subjects)

    def test_index(self, fold: int) -> torch.Tensor:
        return (self.sample_fold == fold).nonzero().flatten()

    def train_index(self, fold: int) -> torch.Tensor:
        return (self.sample_fold != fold).nonzero().flatten()


def parse_folds(spec: str | None, n_folds: int, *, first: int = 0) -> list[int]:
    """``None`` → all; ``"0-33"``, ``"5"``, ``"0-3,10,12-13"`` → sorted fold numbers, which
    run from ``first`` (0 for LOSO folds, 1 for DFEW's)."""
    if spec is None or spec.strip() in ("", "all"):
        return list(range(first, first + n_folds))
    chosen = parse_ranges(spec, option="--folds")
    bad = [k for k in chosen if not first <= k < first + n_folds]
    if bad:
        raise ValueError(f"--folds {spec!r}: fold(s) {bad} out of range "
                         f"{first}-{first + n_folds - 1}")
    return chosen
