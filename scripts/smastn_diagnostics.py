"""Per-class recall of LOSO runs side by side, and SMA-STN's segment attention per class.

For each run directory (``fervid loso --out RUN``): the recall of every class, read from its
fold files (``folds/fold_*.csv``), in one table with a column per run, and for SMA-STN runs
the STMA segment weights alpha_1..alpha_K per true class, mean ± sd over the held-out samples.
Each test sample's weights are written beside its prediction when a fold is evaluated
(``alpha_<k>`` columns, :func:`fervid.runs.store.loso_fold_frame`); a run whose fold files
lack them is given them again with ``--recompute``, from its fold models
(``models/fold_NNN.pt``) and the inputs of ``--data-root`` (default: the run's own), read
from the DSSI cache when there.

    python scripts/smastn_diagnostics.py runs/ckplus_smastn runs/ckplus_apex
    python scripts/smastn_diagnostics.py runs/old_smastn --recompute --cache-dir runs/dssi_cache
    python scripts/smastn_diagnostics.py runs/ckplus_smastn --strength

``--strength`` adds, for each SMA-STN run, how strong each of its clips' dynamic images are
before they are standardised (the standard deviation of each local DI and of the global one,
in grey levels, mean per class): per-image standardisation divides each by exactly this.

Nothing is chosen here on the test folds: the script only reads what the runs predicted.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fervid.errors import FervidError
from fervid.runs.store import RunStore, read_run_meta

ALPHA = "alpha_"


@dataclass
class RunSummary:
    """What the tables show of one run.

    ``recall`` and ``count`` are per class name (classes without test samples left out);
    ``attention`` has one row per class present, columns ``alpha_<k>`` (mean) and
    ``alpha_<k>_sd``, and ``n``; None for a model without segment weights. ``source`` says
    where the weights came from (``stored``, ``recomputed``).
    """

    name: str
    model: str
    classes: tuple[str, ...]
    recall: dict[str, float]
    count: dict[str, int]
    attention: pd.DataFrame | None = None
    source: str = ""

    @property
    def uar(self) -> float:
        return float(np.mean(list(self.recall.values())))


def alpha_columns(frame: pd.DataFrame) -> list[str]:
    """``alpha_0..alpha_{K-1}`` in segment order."""
    return sorted((c for c in frame.columns if c.startswith(ALPHA) and c[len(ALPHA):].isdigit()),
                  key=lambda c: int(c[len(ALPHA):]))


def run_config(run_dir: Path) -> dict:
    path = Path(run_dir) / "config.yaml"
    if not path.is_file():
        raise FervidError(f"{run_dir}: no config.yaml (not a LOSO run directory)")
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def recompute_attention(run_dir: Path, predictions: pd.DataFrame, data_root: Path | None,
                        cache_dir: Path | None) -> pd.DataFrame:
    """``predictions`` with ``alpha_<k>`` columns from each fold's model applied to its own
    held-out samples (the inputs built as training built them, from the cache when there)."""
    import torch

    from fervid.config import LosoConfig
    from fervid.protocol.loso import load_loso_data
    from fervid.representation.loso_inputs import default_cache_dir
    from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint

    run_dir = Path(run_dir)
    cfg = LosoConfig.model_validate(run_config(run_dir))
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_views": 0})})
    root = Path(data_root or read_run_meta(run_dir).get("data_root") or "")
    if not root.exists():
        raise FervidError(f"{run_dir}: data root {str(root)!r} not found; give --data-root")
    data = load_loso_data(cfg, root, cache_dir=cache_dir or default_cache_dir(),
                          progress=False)
    where = {(s.dataset, s.subject, s.clip): i for i, s in enumerate(data.table)}
    store = RunStore(run_dir)
    weights = np.full((len(predictions), 0), np.nan)
    for fold, rows in predictions.groupby("fold"):
        path = store.model_path(int(fold))
        if not path.is_file():
            raise FervidError(f"{path}: fold model missing, cannot recompute its weights")
        model = build_model_from_checkpoint(load_checkpoint(path))
        keys = list(zip(rows["dataset"], rows["subject"], rows["clip"], strict=True))
        missing = [k for k in keys if k not in where]
        if missing:
            raise FervidError(f"{run_dir}: sample {'/'.join(missing[0])} of fold {fold} is not "
                              f"in {root}")
        with torch.no_grad():
            out = model(data.x[[where[k] for k in keys]].float())
        alpha = out.extras.get("segment_weights")
        if alpha is None:
            raise FervidError(f"{path}: model {load_checkpoint(path).model_name!r} gives no "
                              "segment weights")
        if weights.shape[1] == 0:
            weights = np.full((len(predictions), alpha.shape[1]), np.nan)
        weights[predictions.index.get_indexer(rows.index)] = alpha.numpy()
    out = predictions.copy()
    for k in range(weights.shape[1]):
        out[f"{ALPHA}{k}"] = weights[:, k]
    return out


def summarise(run_dir: Path, *, recompute: bool = False, data_root: Path | None = None,
              cache_dir: Path | None = None) -> RunSummary:
    """Per-class recall and, for models with segment weights, their per-class statistics."""
    run_dir = Path(run_dir)
    meta = read_run_meta(run_dir)
    classes = tuple(meta.get("classes") or ())
    if not classes:
        raise FervidError(f"{run_dir}/run.json: no classes (not a LOSO run directory)")
    model = str(run_config(run_dir).get("model", {}).get("name", "?"))
    frame = RunStore(run_dir).read_predictions(len(classes))
    source = "stored" if alpha_columns(frame) else ""
    if not source and recompute and model == "smastn":
        frame, source = recompute_attention(run_dir, frame, data_root, cache_dir), "recomputed"
    recall, count = {}, {}
    for label, rows in frame.groupby("label", sort=True):
        name = classes[int(label)]
        recall[name] = float((rows["pred"] == label).mean())
        count[name] = len(rows)
    attention = None
    alphas = alpha_columns(frame)
    if alphas:
        grouped = frame.groupby("label", sort=True)[alphas]
        means, sds = grouped.mean(), grouped.std(ddof=0)
        attention = pd.concat([means, sds.add_suffix("_sd")], axis=1)
        attention["n"] = frame.groupby("label", sort=True).size()
        attention.index = [classes[int(i)] for i in attention.index]
    return RunSummary(run_dir.name, model, classes, recall, count, attention, source)


def segment_strength(run_dir: Path, data_root: Path | None = None,
                     cache_dir: Path | None = None) -> pd.DataFrame:
    """Per true class: the mean standard deviation of each local dynamic image (``seg<k>``)
    and of the global one, before standardisation, with ``n`` and ``weak``: the share of the
    class's clips whose faintest local DI has under a quarter of the strongest's."""
    from fervid.config import LosoConfig
    from fervid.datasets.from_config import read_release
    from fervid.representation.dssi import DssiCache
    from fervid.representation.loso_inputs import default_cache_dir, dssi_params

    run_dir = Path(run_dir)
    cfg = LosoConfig.model_validate(run_config(run_dir))
    root = Path(data_root or read_run_meta(run_dir).get("data_root") or "")
    if not root.exists():
        raise FervidError(f"{run_dir}: data root {str(root)!r} not found; give --data-root")
    params = dssi_params(cfg.data)
    cache = DssiCache(cache_dir or default_cache_dir())
    rows = []
    for sample in read_release(cfg, root):
        result = cache.get_or_compute(sample, params)
        sds = [float(np.std(im)) for im in result.local]
        rows.append({"class": cfg.data.classes[sample.label],
                     **{f"seg{k + 1}": sd for k, sd in enumerate(sds)},
                     "global": float(np.std(result.global_)),
                     "weak": float(min(sds) < 0.25 * max(sds))})
    frame = pd.DataFrame(rows)
    out = frame.groupby("class", sort=False).mean()
    out.insert(0, "n", frame.groupby("class", sort=False).size())
    return out


def strength_table(name: str, strength: pd.DataFrame) -> str:
    """Markdown of :func:`segment_strength`."""
    segs = [c for c in strength.columns if c.startswith("seg")]
    lines = [f"{name}: dynamic-image strength before standardisation (sd, grey levels; "
             "weak: faintest local < 1/4 of strongest)",
             "| class | n | " + " | ".join(segs) + " | global | weak |",
             "| --- | --- |" + " --- |" * (len(segs) + 2)]
    for cls, row in strength.iterrows():
        cells = [f"{row[c]:.2f}" for c in [*segs, "global"]]
        lines.append(f"| {cls} | {int(row['n'])} | " + " | ".join(cells)
                     + f" | {row['weak']:.2f} |")
    return "\n".join(lines)


def recall_table(runs: list[RunSummary]) -> str:
    """Markdown: one row per class (the first run's order, then any others'), a column per
    run with recall and the class's test count; UAR last."""
    names = list(dict.fromkeys(c for r in runs for c in r.classes))
    head = "| class | " + " | ".join(f"{r.name} ({r.model})" for r in runs) + " |"
    lines = [head, "| --- |" + " --- |" * len(runs)]
    for c in names:
        cells = [f"{r.recall[c]:.3f} (n={r.count[c]})" if c in r.recall else "–" for r in runs]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines.append("| **UAR** | " + " | ".join(f"**{r.uar:.3f}**" for r in runs) + " |")
    return "\n".join(lines)


def attention_table(run: RunSummary) -> str:
    """Markdown: per true class, each segment's weight, mean ± sd over its test samples."""
    a = run.attention
    ks = [c for c in a.columns if c.startswith(ALPHA) and not c.endswith("_sd")]
    lines = [f"{run.name}: STMA segment weights by true class ({run.source}; uniform = "
             f"{1 / len(ks):.3f})",
             "| class | n | " + " | ".join(f"α{int(k[len(ALPHA):]) + 1}" for k in ks) + " |",
             "| --- | --- |" + " --- |" * len(ks)]
    for name, row in a.iterrows():
        cells = [f"{row[k]:.3f} ± {row[k + '_sd']:.3f}" for k in ks]
        lines.append(f"| {name} | {int(row['n'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN")
    parser.add_argument("--recompute", action="store_true",
                        help="SMA-STN runs whose fold files lack the segment weights: compute "
                             "them from the fold models")
    parser.add_argument("--data-root", type=Path, help="with --recompute: the frames (default: "
                                                       "each run's data_root)")
    parser.add_argument("--cache-dir", type=Path, help="with --recompute or --strength: the "
                                                       "DSSI cache")
    parser.add_argument("--strength", action="store_true",
                        help="SMA-STN runs: each dynamic image's strength before "
                             "standardisation, per class")
    args = parser.parse_args(argv)
    try:
        runs = [summarise(r, recompute=args.recompute, data_root=args.data_root,
                          cache_dir=args.cache_dir) for r in args.runs]
    except FervidError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("Per-class recall (fold files pooled over the LOSO folds)\n")
    print(recall_table(runs))
    for run in runs:
        if run.attention is not None:
            print()
            print(attention_table(run))
        elif run.model == "smastn":
            print(f"\n{run.name}: fold files hold no segment weights; --recompute computes "
                  "them from the fold models")
    for path, run in zip(args.runs, runs, strict=True):
        if args.strength and run.model == "smastn":
            try:
                strength = segment_strength(path, args.data_root, args.cache_dir)
            except FervidError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            print()
            print(strength_table(run.name, strength))
    return 0


if __name__ == "__main__":
    sys.exit(main())
