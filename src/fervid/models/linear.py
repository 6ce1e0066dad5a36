"""Linear models on flattened inputs (scikit-learn), for baselines: ``logistic_regression``
(the raw-pixel check of the pipeline) and ``linear_svm`` (MEGC2019's LBP-TOP / HOOF baseline).

Each is a pipeline standardise → classifier, fitted inside one fold, so the scaling never sees
the held-out subject. They take ``(N, D)`` float arrays (images are flattened first) and give
class scores ``(N, C)``: logistic regression's probabilities, or the SVM's one-vs-rest decision
values through a softmax (scores that sum to 1, not calibrated probabilities).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

from fervid.config import ConfigError

#: The model names this module builds.
LINEAR_MODELS = ("logistic_regression", "linear_svm")


def linear_estimator(model: BaseModel, *, c: float, class_weights: str, seed: int):
    """The scikit-learn pipeline of ``model.name`` with inverse regularisation ``c``;
    ``class_weights`` ``balanced`` weighs classes ``n / (K·n_c)`` (scikit-learn's)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    weight = "balanced" if class_weights == "balanced" else None
    if model.name == "logistic_regression":
        head = LogisticRegression(C=c, max_iter=2000, class_weight=weight)
    elif model.name == "linear_svm":
        head = LinearSVC(C=c, class_weight=weight, max_iter=20000, random_state=seed)
    else:
        raise ConfigError(f"model {model.name!r} is not a linear model "
                          f"({', '.join(LINEAR_MODELS)})")
    return make_pipeline(StandardScaler(), head)


def class_scores(estimator, x: np.ndarray, num_classes: int) -> np.ndarray:
    """``(N, num_classes)`` scores of a fitted pipeline, columns in class order even when the
    training labels lacked a class (its column is 0)."""
    if hasattr(estimator, "predict_proba"):
        raw = estimator.predict_proba(x)
    else:
        d = estimator.decision_function(x)
        if d.ndim == 1:  # two classes: one decision value
            d = np.stack([-d, d], axis=1)
        e = np.exp(d - d.max(axis=1, keepdims=True))
        raw = e / e.sum(axis=1, keepdims=True)
    out = np.zeros((len(x), num_classes))
    out[:, estimator.classes_.astype(int)] = raw
    return out
