"""AUs as an aid to emotion recognition (``train.au_weight``): the masked AU loss, positive
weights from the training fold, the AU head beside the emotion head, an emotion LOSO run aided
by AU labels on part of its samples, and the configs it refuses; on generated data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from typer.testing import CliRunner

from fervid.cli import app
from fervid.config import ConfigError, LosoConfig, TrainConfig
from fervid.config.loading import load_config
from fervid.losses import (
    AuAidedLoss,
    AuAidedTargets,
    ClassificationWithFeatureLoss,
    build_training_loss,
    positive_weights,
)
from fervid.models import model_from_config
from fervid.models.au_head import WithAuHead
from fervid.models.output import ModelOutput
from generated import make_precomputed

runner = CliRunner()
CONFIGS = Path(__file__).parents[1] / "configs"
#: AU strings by the generated images' class (see tests/test_au_task.py).
AU_BY_CLASS = {0: "4+L7B", 1: "R12", 2: "7"}


@pytest.fixture(scope="module")
def aid_data(tmp_path_factory) -> tuple[Path, Path]:
    """A flow folder of 4 subjects × 8: two of dataset ``casme2``, coded by a CASME II-style
    sheet in ``sheets/casme2/`` (but one clip, ``?``), and two of ``smic``, which no sheet
    codes."""
    root = tmp_path_factory.mktemp("aid")
    flow = make_precomputed(root / "flow", n_subjects=4, per_subject=8, signal=90.0)
    index = pd.read_csv(flow / "index.csv")
    casme = index["subject"].isin(["s00", "s01"])
    index["dataset"] = ["casme2" if c else "smic" for c in casme]
    index["subject"] = [f"sub{int(s[1:]) + 1:02d}" if c else s
                        for s, c in zip(index["subject"], casme, strict=True)]
    index.to_csv(flow / "index.csv", index=False)
    coded = index[casme]
    aus = [AU_BY_CLASS[y] for y in coded["label"]]
    aus[-1] = "?"
    sheet = pd.DataFrame({"Subject": [s[3:] for s in coded["subject"]],
                          "Filename": coded["clip"], "OnsetFrame": 1, "ApexFrame": 2,
                          "OffsetFrame": 3, "Action Units": aus,
                          "Estimated Emotion": "others"})
    (root / "sheets" / "casme2").mkdir(parents=True)
    sheet.to_excel(root / "sheets" / "casme2" / "CASME2-coding-20140508.xlsx", index=False)
    return flow, root / "sheets"


def _aided(logits, au_logits, labels, aus, coded, weight=0.7, pos_weight=None):
    loss = AuAidedLoss(ClassificationWithFeatureLoss(), weight, pos_weight)
    return loss(ModelOutput(logits, None, {}, au_logits), AuAidedTargets(labels, aus, coded))


def test_samples_without_aus_add_no_au_loss_and_no_gradient():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    au_logits = torch.randn(4, 2, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 1])
    aus = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    coded = torch.tensor([True, False, True, False])
    pos = torch.tensor([0.5, 3.0])
    total, parts = _aided(logits, au_logits, labels, aus, coded, pos_weight=pos)
    total.backward()
    ce = F.cross_entropy(logits, labels)
    bce = F.binary_cross_entropy_with_logits(au_logits[coded], aus[coded], pos_weight=pos)
    assert float(total.detach()) == pytest.approx(float(ce + 0.7 * bce.detach()), rel=1e-6)
    assert float(parts.au) == pytest.approx(float(bce.detach()), rel=1e-6)
    assert float(parts.ce) == pytest.approx(float(ce), rel=1e-6)
    assert (au_logits.grad[~coded] == 0).all() and (au_logits.grad[coded] != 0).all()
    # What an uncoded sample's AU row holds is never read.
    other = aus.clone()
    other[~coded] = 1.0
    again, _ = _aided(logits, au_logits.detach(), labels, other, coded, pos_weight=pos)
    assert float(again) == float(total.detach())


def test_a_batch_without_aus_adds_zero():
    logits = torch.randn(3, 3, requires_grad=True)
    au_logits = torch.randn(3, 4, requires_grad=True)
    labels = torch.tensor([0, 2, 1])
    total, parts = _aided(logits, au_logits, labels, torch.zeros(3, 4),
                          torch.zeros(3, dtype=torch.bool), weight=2.0)
    total.backward()
    assert torch.isfinite(total) and float(parts.au) == 0.0
    assert float(total.detach()) == float(F.cross_entropy(logits.detach(), labels))
    assert (au_logits.grad == 0).all() and (logits.grad != 0).any()


def test_weight_zero_is_the_plain_emotion_loss_and_the_old_fingerprints():
    loss = build_training_loss(TrainConfig(au_weight=0.0), num_classes=3, feature_dim=None,
                               train_labels=torch.tensor([0, 1, 2]))
    assert type(loss) is ClassificationWithFeatureLoss
    aided = build_training_loss(TrainConfig(au_weight=0.5), num_classes=3, feature_dim=None,
                                train_labels=torch.tensor([0, 1, 2]),
                                train_aus=torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    assert isinstance(aided, AuAidedLoss) and aided.weight == 0.5
    # Run directories made before the option resume: their fingerprints hold (values of
    # commit e39ce72), also with the option written out at 0.
    for name, value in [("off_apexnet_megc2019.yaml", "05e750f9a318"),
                        ("htnet_megc2019.yaml", "146d6cbb3db0"),
                        ("off_apexnet_au_megc2019.yaml", "67f57aad30ad")]:
        assert load_config(CONFIGS / name).fingerprint() == value, name
        assert load_config(CONFIGS / name, ["train.au_weight=0"]).fingerprint() == value
    assert load_config(CONFIGS / "off_apexnet_megc2019.yaml",
                       ["train.au_weight=0.5"]).fingerprint() != "05e750f9a318"


def test_aid_configs_are_their_baselines_plus_the_aid():
    for base in ("off_apexnet_megc2019", "htnet_megc2019"):
        plain = load_config(CONFIGS / f"{base}.yaml").model_dump()
        aided = load_config(CONFIGS / f"{base}_au_aid.yaml").model_dump()
        assert aided["train"].pop("au_weight") == 0.5
        plain["train"].pop("au_weight")
        assert aided.pop("name") == f"{base}_au_aid"
        plain.pop("name")
        assert aided == plain, base  # data.aus is MEB's 12, the default


def test_the_au_head_leaves_the_emotion_network_as_it_was_built():
    cfg = LosoConfig(model={"name": "htnet"}, train={"au_weight": 1.0},
                     run={"engine": "sequential"})
    torch.manual_seed(3)
    plain = model_from_config(cfg.model, in_chans=3, num_classes=3)
    torch.manual_seed(3)
    aided = model_from_config(cfg.model, in_chans=3, num_classes=3, num_aus=5)
    assert isinstance(aided, WithAuHead)
    for key, value in plain.state_dict().items():
        assert torch.equal(aided.state_dict()[f"net.{key}"], value), key
    out = aided.eval()(torch.rand(2, 3, 28, 28))
    assert out.logits.shape == (2, 3) and out.au_logits.shape == (2, 5)
    assert plain(torch.rand(2, 3, 28, 28)).au_logits is None

    class NoFeatures(torch.nn.Module):
        pass

    with pytest.raises(ConfigError, match="exposes no clip feature"):
        WithAuHead(NoFeatures(), 3, name="nofeat")


def test_positive_weights_come_from_the_training_folds_coded_samples():
    from fervid.protocol.loso_engines import fold_criterion

    aus = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 1.0],
                        [0.0, 1.0]])
    coded = torch.tensor([True, False, True, True, False, True])
    targets = AuAidedTargets(torch.tensor([0, 1, 2, 0, 1, 2]), aus, coded)
    cfg = LosoConfig(model={"name": "htnet"}, train={"au_weight": 0.5},
                     run={"engine": "sequential"})
    model = model_from_config(cfg.model, in_chans=3, num_classes=3, num_aus=2)
    train = torch.tensor([0, 1, 2, 3])  # 4 and 5 are the test subject's
    loss = fold_criterion(cfg, 0, model, 3, targets[train])
    # The coded training samples 0, 2, 3: AU1 2 of 3 present, AU2 1 of 3.
    assert loss.pos_weight.tolist() == pytest.approx([0.5, 2.0])
    assert loss.pos_weight.tolist() != pytest.approx(positive_weights(aus).tolist())
    assert loss.pos_weight.tolist() != pytest.approx(positive_weights(aus[train]).tolist())


def _loso(tmp_path: Path, flow: Path, name: str, overrides: list[str], train: dict | None = None,
          **data) -> tuple[int, str]:
    cfg = {"name": name, "seed": 0, "model": {"name": "ststnet"},
           "data": {"scale": 1 / 255, "aus": [4, 7, 12, 15], **data},
           "train": {"lr": 1e-3, "batch_size": 16, "epochs": 1, **(train or {})},
           "run": {"engine": "sequential", "workers": 1}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = runner.invoke(app, ["loso", "--config", str(path), "--data-root", str(flow),
                                 "--out", str(tmp_path / name), "--no-progress", *[
                                     a for o in overrides for a in ("--set", o)]])
    return result.exit_code, result.output


def test_an_aided_emotion_run_through_the_cli(tmp_path, aid_data):
    """Emotion LOSO aided by AU labels on 15 of its 32 samples: scored on emotion over all
    32, the aid recorded, the fold models plain emotion networks, a rerun trains nothing."""
    from fervid.runs.checkpoint import build_model_from_checkpoint, load_checkpoint

    flow, sheets = aid_data
    code, output = _loso(tmp_path, flow, "aided", [f"data.au_sheets={sheets}"],
                         {"au_weight": 0.5})
    assert code == 0, output
    run_dir = tmp_path / "aided"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["classes"] == ["negative", "positive", "surprise"]
    assert metrics["n_samples"] == 32 and metrics["complete"]
    assert {"uf1", "uar"} <= set(metrics) and set(metrics["per_dataset"]) == {"casme2", "smic"}
    aid = metrics["au_aid"]
    assert aid["weight"] == 0.5 and aid["aus"] == ["AU4", "AU7", "AU12"]  # AU15 never occurs
    assert aid["n_samples"] == 32 and aid["n_with_aus"] == 15
    assert aid["without_aus"] == {"casme2": 1, "smic": 16} and aid["au_counts"]["AU15"] == 0
    assert json.loads((run_dir / "run.json").read_text())["au_aid"] == aid
    ckpt = load_checkpoint(run_dir / "models" / "fold_000.pt")
    assert not any(k.startswith(("net.", "au_head.")) for k in ckpt.state_dict)
    model = build_model_from_checkpoint(ckpt)  # loads as a plain STSTNet
    assert model(torch.rand(2, 3, 28, 28)).logits.shape == (2, 3)
    folds = sorted((run_dir / "folds").glob("*.csv"))
    stamps = [p.stat().st_mtime_ns for p in folds]
    code, output = _loso(tmp_path, flow, "aided", [f"data.au_sheets={sheets}"],
                         {"au_weight": 0.5})
    assert code == 0, output
    assert [p.stat().st_mtime_ns for p in folds] == stamps
    assert json.loads((run_dir / "metrics.json").read_text())["uf1"] == metrics["uf1"]
    shown = runner.invoke(app, ["report", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert ("AU aid: + 0.5 x AU loss over 3 AUs on the 15 samples with AU labels (none for "
            "casme2 1, smic 16)") in " ".join(shown.output.split())


@pytest.mark.parametrize("overrides, message", [
    (["train.au_weight=0.5"], "no sample has AU labels"),
    (["train.au_weight=0.5", "run.engine=fold_batched"],
     "train.au_weight=0.5 trains an AU head beside the emotion head on run.engine=sequential"),
    (["train.au_weight=1", "data.task=au"], "train.au_weight=1 aids an emotion run"),
    (["train.au_weight=1", "model.name=logistic_regression", "run.engine=linear"],
     "not run.engine=linear"),
    (["train.au_weight=-1"], "train.au_weight"),
])
def test_bad_aid_configs_are_refused_in_one_line(tmp_path, aid_data, overrides, message):
    flow, _ = aid_data
    code, output = _loso(tmp_path, flow, "bad", overrides)
    assert code == 2, output
    assert message in output and "Traceback" not in output


def test_other_protocols_refuse_the_aid():
    from fervid.config import KfoldConfig

    with pytest.raises(ConfigError, match="au_weight"):
        load_config(None, ["train.au_weight=0.5"], schema=KfoldConfig)
