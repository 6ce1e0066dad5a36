"""The parallel, resumable flow-image writer and ``fervid prepare flow``, on a generated set."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from fervid.cli.prepare import prepare_app
from fervid.prepare import flow as pf
from fervid.samples import PROTOCOL_CLASSES, Sample, SampleTable
from fervid.synth import make_casme2_like


def table_from_tree(sheet: Path) -> SampleTable:
    """A 5-class table read straight from the generated tree (independent of fervid.datasets)."""
    root = sheet.parent / "CASME2_RAW_selected"
    classes = PROTOCOL_CLASSES["casme2_5class"]
    samples = []
    for subject, clip, _, onset, apex, offset, _, _, emotion in openpyxl.load_workbook(
            sheet).active.iter_rows(min_row=2, values_only=True):
        frames = tuple(root / f"sub{subject}" / clip / f"img{n}.jpg"
                       for n in range(onset, offset + 1))
        samples.append(Sample("casme2", f"sub{subject}", clip, onset, apex, offset, emotion,
                              classes.index(emotion), frames))
    return SampleTable(samples, classes, "casme2_5class")


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def sheet(tmp_path_factory) -> Path:
    return make_casme2_like(tmp_path_factory.mktemp("tree"), n_subjects=3, clips_per_subject=3)


@pytest.fixture(scope="module")
def table(sheet) -> SampleTable:
    base = table_from_tree(sheet)
    # One clip outside the protocol: it must be counted, not prepared.
    samples = list(base.samples)
    samples[4] = dataclasses.replace(samples[4], label=None)
    return SampleTable(samples, base.classes, base.protocol)


@pytest.fixture(scope="module")
def reference(table, tmp_path_factory) -> tuple[Path, pf.PrepareFlowResult]:
    """One in-process run; other tests compare against its bytes."""
    out = tmp_path_factory.mktemp("ref")
    return out, pf.prepare_flow(table, out, workers=1, progress=False)


def test_writes_one_image_per_labelled_clip_and_an_index(table, reference):
    out, result = reference
    labelled = [s for s in table if s.label is not None]
    assert (result.written, result.skipped, result.unlabelled) == (len(labelled), 0, 1)
    assert result.ok and result.failed == [] and result.index == out / "index.csv"
    index = pd.read_csv(result.index, dtype={"subject": str, "clip": str})
    assert list(index.columns) == ["dataset", "subject", "clip", "label", "file"]
    assert list(index.file) == [f"{s.key}.png" for s in labelled]  # table order
    assert list(index.label) == [s.label for s in labelled]
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == len(labelled)
    for path in pngs:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert image.shape == (28, 28, 3) and image.dtype == np.uint8
        assert image.reshape(-1, 3).min(0).tolist() == [0, 0, 0]
        assert image.reshape(-1, 3).max(0).tolist() == [255, 255, 255]


def test_index_is_readable_by_read_precomputed(table, reference):
    precomputed = pytest.importorskip("fervid.datasets.precomputed",
                                      reason="fervid.datasets.precomputed not written yet")
    out, result = reference
    loaded = precomputed.read_precomputed(out, table.classes)
    assert len(loaded) == result.written and loaded.images.shape[1:] == (28, 28, 3)
    assert [s.label for s in loaded.table] == [s.label for s in table if s.label is not None]
    np.testing.assert_array_equal(loaded.images[0], cv2.imread(str(loaded.table[0].frames[0])))


def test_resume_skips_finished_and_redoes_damaged(table, reference, tmp_path):
    out, first = reference
    before = folder_bytes(out)
    again = pf.prepare_flow(table, out, workers=1, progress=False)
    assert (again.written, again.skipped) == (0, first.written)
    assert folder_bytes(out) == before

    copy = tmp_path / "partial"
    copy.mkdir()
    for name, data in before.items():
        (copy / name).write_bytes(data)
    pngs = sorted(copy.glob("*.png"))
    pngs[0].unlink()  # never written
    pngs[1].write_bytes(pngs[1].read_bytes()[:40])  # damaged by someone else
    (copy / f".{pngs[2].name}.tmp-999").write_bytes(b"half")  # left by a killed run
    resumed = pf.prepare_flow(table, copy, workers=1, progress=False)
    assert (resumed.written, resumed.skipped) == (2, first.written - 2)
    assert folder_bytes(copy) == before  # byte-identical, no temporary file left


def test_parallel_equals_in_process_and_reports_failures(table, reference, tmp_path):
    out, _ = reference
    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff this is not a jpeg")
    samples = list(table.samples)
    victim = samples[1]
    frames = list(victim.frames)
    frames[victim.apex_position] = bad
    samples[1] = dataclasses.replace(victim, frames=tuple(frames))
    broken = SampleTable(samples, table.classes, table.protocol)

    result = pf.prepare_flow(broken, tmp_path / "par", workers=2, progress=False)
    assert [k for k, _ in result.failed] == [victim.key] and not result.ok
    assert "corrupt.jpg" in result.failed[0][1]
    expected = folder_bytes(out)
    del expected[f"{victim.key}.png"]
    got = folder_bytes(tmp_path / "par")
    assert got.pop("index.csv") != expected.pop("index.csv")  # the failed clip is left out
    assert got == expected  # every other image byte-identical to the in-process run
    index = pd.read_csv(result.index)
    assert f"{victim.key}.png" not in set(index.file)


def test_refuses_other_settings_and_duplicate_keys(table, reference, tmp_path):
    out, _ = reference
    with pytest.raises(ValueError, match="size"):
        pf.prepare_flow(table, out, size=16, workers=1, progress=False)
    twice = SampleTable([table[0], table[0]], table.classes)
    with pytest.raises(ValueError, match="share a key"):
        pf.prepare_flow(twice, tmp_path / "dup", workers=1, progress=False)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "a.png"

    def killed(src, dst):
        raise KeyboardInterrupt  # the run dies between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        pf.atomic_write_bytes(target, b"data")
    assert list(tmp_path.iterdir()) == []


def test_cli_prepare_flow(sheet, reference, tmp_path):
    pytest.importorskip("fervid.datasets", reason="fervid.datasets (load_dataset) not written yet")
    app = typer.Typer()  # registered the way the lead's `fervid` app does it
    app.add_typer(prepare_app, name="prepare")

    @app.command()
    def version() -> None:  # a second command keeps `prepare` a sub-command, as in fervid
        """Unused."""

    runner = CliRunner()
    help_text = runner.invoke(app, ["prepare", "flow", "--help"]).output
    for word in ("--dataset", "--data-root", "--sheet", "--protocol", "--out", "--workers",
                 "casme2", "strain"):
        assert word in help_text
    args = ["prepare", "flow", "--dataset", "casme2", "--data-root",
            str(sheet.parent / "CASME2_RAW_selected"), "--sheet", str(sheet),
            "--protocol", "5class", "--workers", "1", "--no-progress"]
    out = tmp_path / "flow"
    done = runner.invoke(app, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert re.search(r"clips written\W+9\b", done.output), done.output
    ref, _ = reference
    for png in ref.glob("*.png"):  # same images as the library call
        assert (out / png.name).read_bytes() == png.read_bytes()

    missing = runner.invoke(app, [*args[:5], str(tmp_path / "nowhere"), *args[6:],
                                  "--out", str(out)])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    assert "nowhere" in missing.output

    clip = next((sheet.parent / "CASME2_RAW_selected").glob("sub02/*"))
    bad_frame = min(clip.glob("*.jpg"), key=lambda p: int(p.stem[3:]))  # the onset frame
    saved = bad_frame.read_bytes()
    try:
        bad_frame.write_bytes(b"garbage")
        for png in out.glob("casme2_sub02_*.png"):
            png.unlink()
        failed = runner.invoke(app, [*args, "--out", str(out)])
    finally:
        bad_frame.write_bytes(saved)
    assert failed.exit_code == 1
    assert f"casme2_sub02_{bad_frame.parent.name}" in failed.output
    assert bad_frame.name in failed.output
