"""The dataset table (fervid.datasets.registry): every release is one registered spec, its name
is written only where it registers, and a reader of one's own is one new file."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import ConfigError, FitConfig, LosoConfig, load_config
from fervid.datasets import registry
from fervid.datasets.registry import PLUGIN_ENV, UnknownDatasetError, dataset_spec, dataset_specs

SRC = Path(__file__).resolve().parents[1] / "src" / "fervid"

#: String literals equal to a dataset name allowed outside that dataset's reader file: none
#: (the last one, fit's default dataset, is now the table's ``default_for``). The test fails
#: on an entry no longer needed, so this list can only shrink.
KNOWN_ELSEWHERE: dict[str, set[str]] = {}


def _builtin_specs():
    return dataset_specs(load_plugins=False)


def _reader_file(spec) -> Path:
    reader = spec.read or spec.read_faces or spec.read_splits or spec.read_intervals
    return Path(inspect.getsourcefile(reader)).resolve()


def test_every_dataset_has_a_reader_and_a_subject_field():
    specs = _builtin_specs()
    assert {s.name for s in specs} >= {"casme2", "samm", "smic", "ckplus", "megc2019", "dfew",
                                       "fer2013", "image_folder"}
    for spec in specs:
        assert callable(spec.read or spec.read_faces or spec.read_splits
                        or spec.read_intervals), spec.name
        assert isinstance(spec.subject, str), spec.name
        if "loso" in spec.protocols:  # LOSO needs subject ids
            assert spec.subject and spec.read is not None, spec.name
        assert spec.protocols and spec.layouts, spec.name
        # Registered in its own reader file, under the datasets package.
        assert _reader_file(spec).parent == SRC / "datasets", spec.name


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """``(line, value)`` of every string constant in ``path`` except docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and id(n) not in docstrings]


def test_dataset_names_are_written_only_where_they_register():
    owner = {s.name: _reader_file(s) for s in _builtin_specs()}
    found: dict[str, set[str]] = {}
    where: list[str] = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for line, value in _string_literals(path):
            if value in owner and path.resolve() != owner[value]:
                found.setdefault(rel, set()).add(value)
                if value not in KNOWN_ELSEWHERE.get(rel, set()):
                    where.append(f"{rel}:{line}: {value!r}")
    assert not where, ("dataset names outside their reader file (look them up in "
                       "fervid.datasets.registry instead):\n" + "\n".join(where))
    stale = {f: names - found.get(f, set()) for f, names in KNOWN_ELSEWHERE.items()}
    stale = {f: n for f, n in stale.items() if n}
    assert not stale, f"no longer needed in KNOWN_ELSEWHERE, remove: {stale}"


def test_unknown_names_are_one_line_listing_the_registered_ones(tmp_path):
    with pytest.raises(UnknownDatasetError, match="unknown dataset 'casme9'; valid names: "
                                                  "casme2, samm, smic, ckplus, megc2019"):
        dataset_spec("casme9", lambda s: "loso" in s.protocols)
    with pytest.raises(ConfigError, match=r"data.dataset: .*unknown dataset 'casme9' for loso; "
                                          r"registered: casme2, samm, smic, ckplus, megc2019"):
        load_config(None, ["data.dataset=casme9"])
    with pytest.raises(ConfigError, match="unknown dataset 'casme2' for holdout; registered: "
                                          "image_folder, ckplus, fer2013"):
        load_config(None, ["data.dataset=casme2"], schema=FitConfig)

    cfg = tmp_path / "bad.yaml"
    cfg.write_text("data: {format: apex, dataset: casme9}\n")
    result = CliRunner().invoke(app, ["loso", "--config", str(cfg), "--data-root",
                                      str(tmp_path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "'casme9'" in lines[0] and "casme2, samm" in lines[0], lines
    result = CliRunner().invoke(app, ["prepare", "faces", "--dataset", "casme9", "--data-root",
                                      str(tmp_path), "--out", str(tmp_path / "faces")])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert "'casme9'" in lines[0] and "casme2, samm, smic, ckplus, dfew" in lines[0]
    assert not (tmp_path / "faces").exists()


# --- A dataset of one's own, in one new file --------------------------------------------------

TOY_READER = '''
"""A toy release: ROOT/<subject>/<clip>_<emotion>/frame<N>.png, onset the first frame."""

from pathlib import Path

from fervid.datasets.registry import DatasetSpec, ReadRequest, register_dataset
from fervid.samples import Sample, SampleTable

CLASSES = {"2class": ("negative", "positive")}


def read_toy(request: ReadRequest) -> SampleTable:
    classes = CLASSES[request.protocol]
    samples = []
    for subject in sorted(p for p in Path(request.root).iterdir() if p.is_dir()):
        for clip in sorted(p for p in subject.iterdir() if p.is_dir()):
            emotion = clip.name.rsplit("_", 1)[1]
            frames = tuple(sorted(clip.glob("frame*.png"), key=lambda f: int(f.stem[5:])))
            samples.append(Sample("toy", subject.name, clip.name, 0, len(frames) // 2,
                                  len(frames) - 1, emotion, classes.index(emotion), frames))
    return SampleTable(samples, classes, request.protocol)


register_dataset(DatasetSpec(name="toy", subject="p1", layouts=("raw",), protocols=("loso",),
                             read=read_toy, classes=CLASSES))
'''


def _write_toy_release(root: Path, subjects: int = 3, clips: int = 4, frames: int = 6,
                       size: int = 24) -> None:
    """Moving-blob clips: a negative clip's blob moves left, a positive one's right."""
    rng = np.random.default_rng(0)
    for s in range(1, subjects + 1):
        for c in range(clips):
            emotion = ("negative", "positive")[c % 2]
            folder = root / f"p{s}" / f"c{c}_{emotion}"
            folder.mkdir(parents=True)
            step = -1 if emotion == "negative" else 1
            for n in range(frames):
                image = rng.normal(100, 5, (size, size)).clip(0, 255).astype(np.uint8)
                x = size // 2 + step * n
                cv2.circle(image, (x, size // 2), 3, 220, -1)
                cv2.imwrite(str(folder / f"frame{n}.png"), image)


@pytest.fixture
def toy_plugin(tmp_path, monkeypatch):
    """The toy reader file, named in $FERVID_DATASETS; the table is restored afterwards."""
    reader = tmp_path / "toy_reader.py"
    reader.write_text(TOY_READER)
    monkeypatch.setenv(PLUGIN_ENV, str(reader))
    before = dict(registry._SPECS)
    yield reader
    registry._SPECS.clear()
    registry._SPECS.update(before)
    registry._LOADED_PLUGINS.discard(str(reader))


def test_a_toy_dataset_in_one_new_file_runs_loso_through_the_cli(toy_plugin, tmp_path):
    data = tmp_path / "toy"
    _write_toy_release(data)
    config = tmp_path / "toy.yaml"
    config.write_text(
        "name: toy_apex\n"
        "model: {name: apex_resnet, drop_rate: 0.0, stem: small}\n"
        "data: {format: apex, dataset: toy, protocol: 2class, classes: [negative, positive],\n"
        "       size: 16, dssi: {mode: gray}}\n"
        "train: {optimizer: adam, lr: 0.001, batch_size: 8, epochs: 1}\n"
        "run: {engine: sequential, workers: 1, accelerator: cpu, precision: 32-true}\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["loso", "--config", str(config), "--data-root", str(data),
                                      "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    predictions = (out / "predictions.csv").read_text().splitlines()
    assert len(predictions) == 1 + 3 * 4  # header + every clip, each tested in its fold
    assert dataset_spec("toy").subject == "p1"
    # The config check reads the same table.
    assert LosoConfig.model_validate({"data": {"dataset": "toy"}}).data.dataset == "toy"


def test_a_missing_reader_file_is_named(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere.py"
    monkeypatch.setenv(PLUGIN_ENV, str(missing))
    with pytest.raises(registry.OptionError, match=f"{PLUGIN_ENV}: reader file {missing}"):
        dataset_specs()
