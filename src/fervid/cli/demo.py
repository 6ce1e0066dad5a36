"""``fervid demo``: the whole pipeline on built-in generated data, in a few minutes on a CPU.

generated CASME II-format tree → CASME II reader → onset→apex TV-L1 flow (``prepare flow``) →
STSTNet LOSO (batched folds) → report.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fervid.config import LosoConfig
from fervid.samples import PROTOCOL_CLASSES

#: The demo's generated set: subjects × clips, frame side in pixels.
DEMO_SUBJECTS, DEMO_CLIPS, DEMO_SIZE = 12, 10, 64


def demo_config(epochs: int) -> LosoConfig:
    return LosoConfig.model_validate({
        "name": "demo_ststnet_casme2_like",
        "seed": 0,
        "model": {"name": "ststnet"},
        "data": {"classes": list(PROTOCOL_CLASSES["casme2_5class"])},
        "train": {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": epochs},
        "run": {"engine": "fold_batched"},
    })


def run_demo(out: Path, *, epochs: int = 200, console: Console | None = None) -> None:
    from fervid.datasets import read_casme2
    from fervid.prepare_flow import prepare_flow
    from fervid.protocol.loso import load_precomputed_data, run_loso
    from fervid.report import print_report
    from fervid.synth.casme2_like import FRAMES_DIR, make_casme2_like

    console = console or Console()
    out = Path(out)
    data_dir = out / "casme2_like"
    sheet = data_dir / "CASME2-coding-20140508.xlsx"
    if not sheet.exists():  # generated once, then reused
        console.print(f"generating {DEMO_SUBJECTS}×{DEMO_CLIPS} clips in {data_dir}")
        make_casme2_like(data_dir, n_subjects=DEMO_SUBJECTS, clips_per_subject=DEMO_CLIPS,
                         size=DEMO_SIZE, seed=0)
    table = read_casme2(data_dir / FRAMES_DIR, sheet, protocol="5class")
    flow_dir = out / "flow"
    result = prepare_flow(table, flow_dir, size=28)
    if not result.ok:
        raise RuntimeError(f"optical flow failed for {len(result.failed)} clip(s): "
                           f"{result.failed[:3]}")
    cfg = demo_config(epochs)
    data = load_precomputed_data(cfg, flow_dir)
    console.print(f"LOSO of STSTNet over {len(data.table.subjects)} subjects, {epochs} epochs")
    report = run_loso(cfg, data, out / "ststnet", data_root=str(flow_dir))
    print_report(report, console)
