"""Leave-one-subject-out folds: which samples train and which are tested."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fervid.config import ConfigError
from fervid.number_ranges import parse_ranges
from fervid.samples import SampleTable, subject_key


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
        raise ConfigError(f"--folds {spec!r}: fold(s) {bad} out of range "
                          f"{first}-{first + n_folds - 1}")
    return chosen
