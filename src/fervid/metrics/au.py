"""AU detection scores: binary F1 per action unit, and MEB's "macro" variant beside it.

The two are confused in the literature. **Binary F1** of an AU counts its presence only:
``F1 = 2TP / (2TP + FP + FN)`` with "present" the positive class; the mean over AUs is what
MEB's cross-dataset tables report (a constant "always present" guess gets ``2p / (1 + p)``
for an AU of prevalence p). **Macro F1** of an AU (scikit-learn's ``average="macro"`` on its
0/1 labels) averages the F1 of "present" and of "absent": with rare AUs the absent class's F1
is near 1, so macro figures run far higher and are not comparable with binary ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How reports label the two means.
BINARY_LABEL = "binary F1 (present AU = positive), mean over AUs"
MACRO_LABEL = "macro F1 (mean of present and absent F1 per AU), mean over AUs; not comparable"


def _f1(tp: float, fp: float, fn: float) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def au_scores(targets: np.ndarray, preds: np.ndarray, aus: Sequence[str]) -> dict:
    """Scores of 0/1 ``preds`` against 0/1 ``targets``, both ``(N, A)`` over ``aus``.

    Returns
    -------
    dict
        ``au_f1`` (AU → binary F1), ``au_f1_mean``, ``au_f1_macro`` (AU → macro F1),
        ``au_f1_macro_mean``, ``au_f1_constant`` (AU → binary F1 of always predicting
        present, from the labels alone) and its mean, ``positives`` (AU → count), ``n_samples``.
        An AU with no positive and no predicted positive scores 0 (binary).
    """
    t = np.asarray(targets, dtype=bool).reshape(-1, len(aus))
    p = np.asarray(preds, dtype=bool).reshape(-1, len(aus))
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    tn = (~t & ~p).sum(0)
    binary = {a: _f1(tp[j], fp[j], fn[j]) for j, a in enumerate(aus)}
    macro = {a: (_f1(tp[j], fp[j], fn[j]) + _f1(tn[j], fn[j], fp[j])) / 2
             for j, a in enumerate(aus)}
    n = len(t)
    constant = {a: _f1(t[:, j].sum(), n - t[:, j].sum(), 0) for j, a in enumerate(aus)}
    return {"au_f1": binary, "au_f1_mean": float(np.mean(list(binary.values()))),
            "au_f1_macro": macro, "au_f1_macro_mean": float(np.mean(list(macro.values()))),
            "au_f1_constant": constant,
            "au_f1_constant_mean": float(np.mean(list(constant.values()))),
            "positives": {a: int(t[:, j].sum()) for j, a in enumerate(aus)},
            "n_samples": int(n)}
