"""One model registry and one output type; the CLI tells user errors from bugs."""

from __future__ import annotations

import pytest
import torch
import typer

from fervid.cli.common import EXIT_BUG, EXIT_USER_ERROR, run_app
from fervid.config import ConfigError
from fervid.models import ModelOutput, create_model, model_names
from fervid.models.registry import UnknownModelError
from fervid.models.video import VIDEO_MODELS

#: One input per network, at the smallest size each takes.
INPUTS = {"ststnet": (2, 3, 28, 28), "off_apexnet": (2, 2, 28, 28), "htnet": (2, 3, 28, 28),
          "smastn": (2, 3, 1, 32, 32), "apex_resnet": (2, 1, 32, 32),
          "global_di_resnet": (2, 1, 32, 32), "frame_resnet": (2, 1, 40, 40),
          "mini_xception": (2, 3, 64, 64), "softnet_spot": (2, 3, 42, 42),
          "former_dfer": (2, 3, 4, 32, 32), **{n: (2, 3, 8, 32, 32) for n in VIDEO_MODELS}}
IN_CHANS = {"ststnet": 3, "off_apexnet": 2, "smastn": 1, "apex_resnet": 1,
            "global_di_resnet": 1, "frame_resnet": 1}


def test_every_network_is_registered_once():
    assert sorted(model_names()) == sorted(INPUTS)


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_every_model_returns_model_output(name):
    torch.manual_seed(0)
    model = create_model(name, in_chans=IN_CHANS.get(name, 3), num_classes=4,
                         drop_rate=None).eval()  # None: the builder's default
    with torch.no_grad():
        out = model(torch.randn(INPUTS[name]))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (2, 4)
    assert out.features.shape == (2, model.num_features)
    if name == "smastn":
        assert out.segment_weights.shape == (2, 2)
    else:
        assert out.segment_weights is None


def test_unknown_model_is_a_user_error():
    with pytest.raises(UnknownModelError, match="unknown model 'resnet9000'"):
        create_model("resnet9000")


def _app(error: Exception) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)

    @app.command()
    def boom() -> None:
        raise error

    @app.command()
    def other() -> None:
        pass

    return app


def test_a_user_error_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_app(_app(ConfigError("cfg.yaml: invalid config")), ["boom"])
    assert exit_.value.code == EXIT_USER_ERROR
    captured = capsys.readouterr()
    assert "cfg.yaml: invalid config" in captured.err and "Traceback" not in captured.err


def test_a_bug_shows_its_traceback_and_asks_for_a_report(capsys):
    with pytest.raises(SystemExit) as exit_:
        run_app(_app(RuntimeError("mat1 and mat2 shapes cannot be multiplied")), ["boom"])
    assert exit_.value.code == EXIT_BUG
    captured = capsys.readouterr()
    assert "Traceback" in captured.err and "mat1 and mat2" in captured.err
    assert "bug in fervid" in captured.err
