"""``fervid predict``: expression probabilities over time for the face in a raw video."""

from fervid.predict.pipeline import (
    STAGES,
    PredictError,
    Prediction,
    WindowPrediction,
    predict_video,
)
from fervid.predict.windows import Window, sliding_windows, window_input, window_means

__all__ = ["STAGES", "PredictError", "Prediction", "Window", "WindowPrediction",
           "predict_video", "sliding_windows", "window_input", "window_means"]
