"""``fervid predict`` registers a window's frames when its model was trained on registered ones.

A model trained with ``data.register: true`` (or on faces prepared with ``--align register``)
records ``register`` in its checkpoint's input spec; predict then registers every frame a
window's DSSI, global dynamic image or apex uses onto the window's first frame, as training
registered each clip's frames onto its onset. Checkpoints written before the field existed
read as unregistered, and predict leaves their windows as they were.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fervid.cli.demo import VARIANTS, demo_config
from fervid.config import LosoConfig, deep_merge
from fervid.datasets import read_casme2
from fervid.faces import registration
from fervid.predict import predict_video
from fervid.predict.windows import window_input
from fervid.representation.clip_inputs import apex_image
from fervid.representation.dssi import DssiCache, DssiParams
from fervid.representation.input_spec import InputSpec, dssi_input
from fervid.runs.checkpoint import (
    CHECKPOINT_FORMAT,
    input_spec_from_config,
    load_checkpoint,
    save_checkpoint,
)
from fervid.synth import make_casme2_like
from fervid.synth.casme2_like import FRAMES_DIR, SHEET_NAME
from test_predict_frames import BlobDetector, scene

SIZE = 64


def registered_config(register: bool) -> LosoConfig:
    """The demo's SMA-STN config (32 px grey DSSI), with ``data.register``."""
    base = demo_config(VARIANTS[0], epochs=1).model_dump()
    return LosoConfig.model_validate(deep_merge(base, {"data": {"register": register}}))


def untrained_checkpoint(path: Path, cfg: LosoConfig) -> Path:
    from fervid.models import model_from_config

    torch.manual_seed(0)
    model_cfg = cfg.model.model_copy(update={"pretrained_path": None})
    model = model_from_config(model_cfg, in_chans=1, num_classes=len(cfg.data.classes))
    return save_checkpoint(path, model.state_dict(), config=cfg, classes=cfg.data.classes)


# --- What the checkpoint records -----------------------------------------------------------

def test_register_is_recorded_and_old_checkpoints_read_as_unregistered(tmp_path):
    on = load_checkpoint(untrained_checkpoint(tmp_path / "on.pt", registered_config(True)))
    off = load_checkpoint(untrained_checkpoint(tmp_path / "off.pt", registered_config(False)))
    assert on.input_spec.register and not off.input_spec.register
    # A checkpoint written before the field existed: its input spec has no "register".
    payload = torch.load(tmp_path / "off.pt", weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT
    del payload["input_spec"]["register"]
    torch.save(payload, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt")
    assert old.input_spec == off.input_spec and not old.input_spec.register


def test_faces_prepared_with_register_are_recorded(tmp_path):
    cfg = registered_config(False)

    def prepared(name: str, align: str | None) -> list[Path]:
        root = tmp_path / name
        clip = root / "sub01" / "EP01_01"
        clip.mkdir(parents=True)
        if align is not None:
            (root / "prepare_faces.json").write_text(json.dumps({"align": align}))
        frame = clip / "reg_img1.jpg"
        frame.write_bytes(b"")
        return [frame]

    registered, onset, plain = (prepared("reg", "register"), prepared("onset", "onset"),
                                prepared("plain", None))
    assert input_spec_from_config(cfg, None, registered).register
    assert not input_spec_from_config(cfg, None, onset).register
    assert not input_spec_from_config(cfg, None, plain).register
    assert not input_spec_from_config(cfg, None, registered + plain).register  # all or none
    assert not input_spec_from_config(cfg).register

    # and what a LOSO fold's checkpoint records, from the clips of its sample table
    from fervid.protocol.loso_engines import fold_model_payload
    from fervid.representation.loso_inputs import LosoData
    from fervid.samples import Sample, SampleTable

    for frames, expected in ((registered, True), (onset, False)):
        table = SampleTable([Sample("casme2", "sub01", "EP01_01", 1, 1, 1, "happiness", 0,
                                    tuple(frames))], tuple(cfg.data.classes))
        data = LosoData(torch.zeros(1, 3, 1, 32, 32), torch.zeros(1, dtype=torch.long), table)
        payload = fold_model_payload(cfg, data, {"w": torch.zeros(1)})
        assert payload["input_spec"]["register"] is expected


# --- The inputs predict builds ---------------------------------------------------------------

@pytest.fixture(scope="module")
def synth_table(tmp_path_factory):
    """A few SynthME clips (64 px), their heads still: the only head motion is what a test
    adds."""
    root = tmp_path_factory.mktemp("synth")
    make_casme2_like(root, n_subjects=2, clips_per_subject=3, size=SIZE, seed=4,
                     n_frames=(14, 18), head_jitter=0.0)
    return read_casme2(root / FRAMES_DIR, root / SHEET_NAME, protocol="5class")


def rgb_frames(sample) -> np.ndarray:
    return np.stack([cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1] for p in sample.frames])


@pytest.mark.parametrize("representation", ["dssi", "global_di", "apex"])
def test_predict_windows_are_registered_as_training_registers(synth_table, tmp_path,
                                                              representation):
    """Bit for bit: the window of a clip's frames, apex in the middle, through predict's path
    and through training's (``data.register``'s DSSI cache, the registered apex frame)."""
    params = DssiParams(mode="rgb", register=True)
    spec = InputSpec(representation, 32, "rgb", register=True)
    checked = 0
    for sample in synth_table:
        n = len(sample.frames) - (len(sample.frames) % 2 == 0)  # odd: one middle frame
        sample = replace(sample, frames=sample.frames[:n], offset=sample.onset + n - 1,
                         apex=sample.onset + (n - 1) // 2)  # the window's apex: its middle
        crops = rgb_frames(sample)
        predicted = torch.from_numpy(window_input(crops, spec))
        if representation == "apex":
            trained = torch.from_numpy(apex_image(sample, 32, "rgb", register=True))
        else:
            trained = torch.from_numpy(dssi_input(
                DssiCache(tmp_path / "cache").get_or_compute(sample, params), spec))
        assert torch.equal(trained, predicted)
        unregistered = torch.from_numpy(window_input(crops, InputSpec(representation, 32,
                                                                      "rgb")))
        checked += not torch.equal(unregistered, predicted)
    assert checked >= len(synth_table) - 1  # registration did change the inputs


def shifted(frames: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Each frame moved by its ``(dx, dy)`` sub-pixel shift, as a swaying head moves it."""
    out = []
    for frame, (dx, dy) in zip(frames, shifts, strict=True):
        m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
        out.append(cv2.warpAffine(frame, m, frame.shape[1::-1], flags=cv2.INTER_CUBIC,
                                  borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def test_a_known_head_shift_leaves_a_registered_models_input(synth_table):
    """Frames moved by known sub-pixel shifts (the first frame still): a registered model's
    global dynamic image comes close to the still clip's, as close as the frames moved back
    by the exact inverse shifts give (the floor: a dynamic image, standardised, magnifies
    the two interpolations); an unregistered model's stays far."""
    rng = np.random.default_rng(1)
    registered, plain = (InputSpec("global_di", SIZE, "rgb", register=True),
                         InputSpec("global_di", SIZE, "rgb"))
    to_plain, to_exact = [], []
    for sample in synth_table:
        still = rgb_frames(sample)
        moves = rng.uniform(-1.2, 1.2, (len(still), 2))
        moves[0] = 0
        moving = shifted(still, moves)
        reference = window_input(still, plain)

        def error(x: np.ndarray, reference: np.ndarray = reference) -> float:
            return float(np.abs(x - reference).mean())

        found = error(window_input(moving, registered))
        to_plain.append(found / error(window_input(moving, plain)))
        to_exact.append(found / error(window_input(shifted(moving, -moves), plain)))
    # measured: 0.47-0.69 of the unregistered error, 1.4-1.6 times the exact inverse's
    assert np.median(to_plain) < 0.65 and max(to_plain) < 0.8, to_plain
    assert np.median(to_exact) < 1.7, to_exact


# --- The whole predict pipeline ------------------------------------------------------------

def test_predict_registers_only_for_a_registered_checkpoint(tmp_path, monkeypatch):
    calls = []
    original = registration.register_cropped

    def counting(frames, reference=0):
        calls.append(len(frames))
        return original(frames, reference)

    monkeypatch.setattr(registration, "register_cropped", counting)
    frames = np.stack(scene(20, 20))
    results = {}
    for register in (False, True):
        ckpt = untrained_checkpoint(tmp_path / f"{register}.pt", registered_config(register))
        calls.clear()
        results[register] = predict_video(frames, ckpt, fps=10, detector=BlobDetector(),
                                          out_dir=tmp_path / f"out_{register}")
        results[register] = (len(calls), len(results[register].windows))
    assert results[False][0] == 0
    n_calls, n_windows = results[True]
    assert n_windows >= 2 and n_calls == n_windows  # one registration per window


def test_input_spec_round_trip_keeps_register():
    spec = InputSpec("dssi", 32, "gray", {"protocol": "uniform", "n_segments": 2}, register=True)
    assert InputSpec(**asdict(spec)) == spec
