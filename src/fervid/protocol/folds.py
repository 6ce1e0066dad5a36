"""Leave-one-subject-out folds: which samples train and which are tested."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from fervid.config import ConfigError
from fervid.number_ranges import parse_ranges
from fervid.samples import Sample, SampleTable, subject_key

#: What one fold holds out: a subject (``dataset/subject``, leave-one-subject-out) or a whole
#: dataset (``dataset``: MEGC2019's hold-out-database protocol).
GROUPS = ("subject", "dataset")


def group_key(sample: Sample, group: str = "subject") -> str:
    """The group ``sample`` belongs to: ``dataset/subject`` or ``dataset``."""
    return subject_key(sample) if group == "subject" else sample.dataset


@dataclass(frozen=True)
class LosoFolds:
    """Fold ``k`` holds out group ``subjects[k]``: a subject (``dataset/subject``) by default,
    or a whole dataset (``group="dataset"``).

    Groups are numbered in order of first appearance in the table, so a fold's number is
    stable for a given data set and can be used to shard a run (``--folds 0-33``).
    """

    subjects: tuple[str, ...]
    sample_fold: torch.Tensor  # (N,) long: the fold each sample is held out of
    group: str = "subject"

    @classmethod
    def from_table(cls, table: SampleTable, group: str = "subject") -> LosoFolds:
        if group not in GROUPS:
            raise ConfigError(f"group {group!r}: choose one of {', '.join(GROUPS)}")
        keys = [group_key(s, group) for s in table]
        subjects = tuple(dict.fromkeys(keys))
        if len(subjects) < 2:
            raise ConfigError(f"leave-one-{group}-out needs at least two {group}s; the data "
                              f"hold one ({subjects[0] if subjects else 'none'})")
        number = {s: k for k, s in enumerate(subjects)}
        fold = torch.tensor([number[k] for k in keys], dtype=torch.long)
        return cls(subjects, fold, group)

    def table(self) -> pd.DataFrame:
        """``folds.csv``: ``fold, dataset, subject`` (``subject`` is ``*`` when a fold holds
        out a whole dataset)."""
        parts = [s.split("/", 1) if self.group == "subject" else (s, "*")
                 for s in self.subjects]
        return pd.DataFrame({"fold": range(len(parts)), "dataset": [p[0] for p in parts],
                             "subject": [p[1] for p in parts]})

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
