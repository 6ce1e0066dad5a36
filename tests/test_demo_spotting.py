"""The demo's spotting row: a generated long video spotted with the training-free spotter's
defaults and scored, printed and written to spotting.json and demo.md."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from fervid.cli.demo import run_demo
from fervid.synth.long_video import LongVideoSpec


def test_the_spotting_row_runs_alone_and_is_written(tmp_path):
    console = Console(record=True, width=120)
    rows = run_demo(tmp_path, only=["spotting"], console=console, progress=False,
                    long_video=LongVideoSpec(seconds=8, size=128, n_micro=1, n_macro=1))
    assert rows == [] and not (tmp_path / "ablation.json").exists()
    row = json.loads((tmp_path / "spotting.json").read_text())
    assert row["videos"] == 1 and row["frames"] == 240
    for kind in ("micro", "macro"):  # one coded expression of each kind
        assert row[kind]["tp"] + row[kind]["fn"] == 1
    overall = row["overall"]
    assert overall["tp"] == row["micro"]["tp"] + row["macro"]["tp"]
    text = console.export_text()
    assert "Spotting 1 SynthME long video (240 frames" in text
    markdown = (tmp_path / "demo.md").read_text()
    assert (f"| overall | {overall['tp']} | {overall['fp']} | {overall['fn']} | "
            f"{overall['precision']:.3f} | {overall['recall']:.3f} | {overall['f1']:.3f} |"
            in markdown)
    assert "UF1" not in markdown  # no recognition row was run


def test_an_unknown_row_names_the_spotting_one_too(tmp_path):
    with pytest.raises(ValueError, match="'spotting'"):
        run_demo(tmp_path, only=["nope"], progress=False)


def test_demo_md_puts_the_spotting_row_next_to_the_recognition_table():
    from fervid.cli.demo import demo_markdown

    rows = [{"model": "smastn", "uf1": 0.5, "uar": 0.25, "acc": 0.75, "f1_macro": 0.125,
             "wall_s": 12.0, "n_folds": 10, "n_samples": 80}]
    counts = {"tp": 1, "fp": 1, "fn": 0, "precision": 0.5, "recall": 1.0, "f1": 2 / 3}
    spotting = {"videos": 1, "frames": 900, "seed": 2, "wall_s": 20.0,
                **{k: counts for k in ("micro", "macro", "overall")}}
    text = demo_markdown(rows, 8, spotting)
    assert "| smastn | 0.5000 | 0.2500 | 0.7500 | 0.1250 | 12 |" in text
    assert "| micro | 1 | 1 | 0 | 0.500 | 1.000 | 0.667 |" in text
    assert text.index("UF1") < text.index("Spotting")
