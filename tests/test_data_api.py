"""fervid.data, the public data API: tables, the clip dataset, folds, and README's example."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fervid.data import (
    Batch,
    ClipDataset,
    Fold,
    InputSpec,
    Sample,
    SampleTable,
    collate,
    kfold_splits,
    loso_splits,
    read_table,
)
from fervid.errors import FervidError
from fervid.representation.clip_inputs import build_clip_inputs
from fervid.representation.dssi import DssiParams
from fervid.synth import make_casme2_like

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path]:
    """A small CASME II-like release: (frame folder, coding sheet); 3 subjects x 4 clips."""
    sheet = make_casme2_like(tmp_path_factory.mktemp("casme2"), n_subjects=3,
                             clips_per_subject=4, size=32, n_frames=(10, 12))
    return sheet.parent / "CASME2_RAW_selected", sheet


@pytest.fixture(scope="module")
def table(release) -> SampleTable:
    root, sheet = release
    return read_table("casme2", root, protocol="5class", sheet=sheet).labelled()


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Your own training loop", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_training_loop_runs(release, tmp_path, monkeypatch, capsys):
    root, sheet = release
    code = readme_example()
    settings = {
        'root, sheet = "CASME2/CASME2_RAW_selected", "CASME2/CASME2-coding-20140508.xlsx"':
            f"root, sheet = {str(root)!r}, {str(sheet)!r}",
        "size, epochs = 112, 10": "size, epochs = 32, 1",
    }
    for line, tiny in settings.items():
        assert code.count(line) == 1, f"README example lost its line {line!r}"
        code = code.replace(line, tiny)
    monkeypatch.chdir(tmp_path)  # its DSSI cache goes to runs/dssi_cache here
    torch.manual_seed(0)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    assert re.fullmatch(r"LOSO accuracy \d\.\d{3} over 12 clips\n", capsys.readouterr().out)
    assert any((tmp_path / "runs" / "dssi_cache").rglob("*.npz"))


@pytest.mark.parametrize("spec, shape", [
    (InputSpec("dssi", 32), (5, 3, 32, 32)),
    (InputSpec("global_di", 32, "gray"), (1, 32, 32)),
    (InputSpec("apex", 32), (3, 32, 32)),
    (InputSpec("clip", 32, num_frames=8), (3, 8, 32, 32)),
    (InputSpec("clip", 32, "gray"), (1, 16, 32, 32)),
], ids=lambda v: getattr(v, "representation", ""))
def test_clip_dataset_items(table, spec, shape):
    data = ClipDataset(table, spec)
    assert len(data) == len(table) == 12
    item = data[5]
    assert isinstance(item, Sample) and item.input.shape == shape == spec.example_shape()
    assert item.input.dtype == torch.float32 and torch.isfinite(item.input).all()
    row = table[5]
    assert (item.label, item.subject, item.clip, item.dataset) == (
        row.label, row.subject, row.clip, "casme2")
    assert isinstance(item.label, int) and 0 <= item.label < len(table.classes)
    if spec.representation == "clip":
        assert item.input.min() >= -1 and item.input.max() <= 1
    batch = next(iter(DataLoader(data, batch_size=4, collate_fn=collate)))
    assert isinstance(batch, Batch) and batch.input.shape == (4, *shape)
    assert batch.label.dtype == torch.int64
    assert batch.label.tolist() == [table[i].label for i in range(4)]
    assert batch.subject == tuple(table[i].subject for i in range(4))


def test_dssi_items_are_what_fervid_loso_trains_on(table, tmp_path):
    spec = InputSpec("dssi", 32)
    cached = ClipDataset(table, spec, cache_dir=tmp_path / "cache")
    loso = build_clip_inputs(table, "dssi", size=32, params=DssiParams(),
                             cache_dir=tmp_path / "loso_cache").x
    for i in (0, 7):
        assert torch.equal(cached[i].input, ClipDataset(table, spec)[i].input)
        assert torch.equal(cached[i].input.half(), loso[i])


def test_clip_dataset_refuses_what_it_cannot_build(release, table, tmp_path):
    root, sheet = release
    everything = read_table("casme2", root, protocol="all", sheet=sheet)
    unlabelled = SampleTable([*table.samples, table[0].__class__(
        **{**table[0].__dict__, "clip": "EXTRA", "label": None})], table.classes)
    with pytest.raises(FervidError, match="table.labelled()"):
        ClipDataset(unlabelled, InputSpec("dssi", 32))
    with pytest.raises(FervidError, match="pass root"):
        ClipDataset(everything, InputSpec("flow", 28, in_chans=3))
    with pytest.raises(FervidError, match="flow image not found"):
        ClipDataset(table, InputSpec("flow", 28, in_chans=3), root=tmp_path)[0]


def test_loso_splits_cover_every_sample_once_and_keep_subjects_apart(table):
    folds = list(loso_splits(table))
    assert all(isinstance(f, Fold) for f in folds)
    assert [f.name for f in folds] == ["casme2/sub01", "casme2/sub02", "casme2/sub03"]
    tested = np.concatenate([f.test for f in folds])
    assert sorted(tested.tolist()) == list(range(len(table)))  # each sample in one test fold
    for fold in folds:
        assert fold.train.dtype == torch.int64
        assert len(fold.train) + len(fold.test) == len(table)
        train_subjects = {table[i].subject for i in fold.train}
        test_subjects = {table[i].subject for i in fold.test}
        assert len(test_subjects) == 1 and not train_subjects & test_subjects
    with pytest.raises(FervidError, match="at least two datasets"):
        list(loso_splits(table, group="dataset"))  # one dataset: no fold to hold out
    with pytest.raises(FervidError, match="group 'clip'"):
        list(loso_splits(table, group="clip"))


def test_kfold_splits_from_subject_or_sample_folds(table):
    by_subject = list(kfold_splits(table, {"sub01": 0, "sub02": 1, "sub03": 1}))
    assert [f.name for f in by_subject] == ["fold 0", "fold 1"]
    assert sorted(np.concatenate([f.test for f in by_subject]).tolist()) == list(range(12))
    for fold in by_subject:
        assert not {table[i].subject for i in fold.train} & {table[i].subject for i in fold.test}
    per_sample = list(kfold_splits(table, [i % 3 for i in range(len(table))]))
    assert [len(f.test) for f in per_sample] == [4, 4, 4]
    with pytest.raises(FervidError, match="no fold for subject"):
        list(kfold_splits(table, {"sub01": 0}))
    with pytest.raises(FervidError, match="3 fold numbers for a table of 12"):
        list(kfold_splits(table, [0, 1, 2]))


@pytest.mark.parametrize("name, root, options, message", [
    ("casme9", None, {"protocol": "5class"}, "unknown dataset 'casme9'"),
    ("casme2", "missing", {"protocol": "5class"}, "does not exist"),
    ("casme2", None, {}, "protocol"),
    ("casme2", None, {"protocol": "5class", "colour": True}, "colour"),
])
def test_read_table_errors_are_one_fervid_line(release, tmp_path, name, root, options, message):
    frames, sheet = release
    root = frames if root is None else tmp_path / root
    options = {**options, "sheet": sheet} if name == "casme2" else options
    with pytest.raises(FervidError, match=message) as err:
        read_table(name, root, **options)
    assert "\n" not in str(err.value)
