"""The networks of the DFEW benchmark (methods.md §2), over clips ``(B, C, T, H, W)``.

All are :class:`VideoClassifier` s with the same builder options
``(*, in_chans=3, num_classes=7, drop_rate=0.5)`` and ``forward_features`` → ``(B,
num_features)``, the features EC-STFL (:mod:`fervid.losses.ec_stfl`) reads. Former-DFER
(:mod:`fervid.models.video.former_dfer`), a later transformer network on the same benchmark,
shares that interface.
"""

from __future__ import annotations

from fervid.models.video.c3d import C3D, VideoClassifier, c3d
from fervid.models.video.cnn_lstm import CnnLstm, resnet18_lstm, vgg11_lstm
from fervid.models.video.former_dfer import FormerDFER, former_dfer
from fervid.models.video.i3d import I3D, i3d
from fervid.models.video.p3d import P3D, p3d
from fervid.models.video.resnet3d import VideoResNetClassifier, r2plus1d_18, r3d_18

#: The DFEW benchmark networks, in the order of the DFEW paper's table (all registered in
#: :mod:`fervid.models.registry`).
VIDEO_MODELS = ("c3d", "p3d", "r2plus1d_18", "r3d_18", "i3d", "vgg11_lstm", "resnet18_lstm")

__all__ = ["C3D", "I3D", "P3D", "VIDEO_MODELS", "CnnLstm", "FormerDFER", "VideoClassifier",
           "VideoResNetClassifier", "c3d", "former_dfer", "i3d", "p3d", "r2plus1d_18",
           "r3d_18", "resnet18_lstm", "vgg11_lstm"]
