"""Every error a user can fix is a :class:`~fervid.errors.FervidError` naming what to fix;
a broken promise of fervid's own code stays a plain exception (a bug, shown with a traceback)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from fervid.config import ConfigError, LosoConfig, load_config
from fervid.datasets import (
    dfew,
    load_dataset,
    megc2019,
    precomputed,
    read_megc2019_gt,
    read_precomputed,
)
from fervid.datasets.dfew import read_dfew, read_split_csv
from fervid.datasets.frames import numbered_images
from fervid.datasets.sheets import read_sheet
from fervid.errors import (
    FervidError,
    OptionError,
    PathNotFoundError,
    UserPathError,
    path_error,
)
from fervid.faces.alignment import AlignmentError, template_points
from fervid.faces.detection import FaceImageError, FaceModelMissingError, HaarCascadeMissingError
from fervid.faces.tracking import NoFaceFoundError
from fervid.faces.video import VideoReadError, read_video_frames
from fervid.number_ranges import parse_ranges
from fervid.predict.onnx import ExportMismatchError, OnnxModelError
from fervid.predict.pipeline import PredictError, predict_video
from fervid.prepare.pool import OutputFolderError, check_settings
from fervid.prepare.raw_clips import find_clips
from fervid.report.html.published import PublishedResultsError
from fervid.report.html.run_data import RunReportError
from fervid.representation.dssi import DssiParams, dssi_from_sample
from fervid.representation.dynamic_image import dynamic_image
from fervid.representation.frame_loading import FrameReadError, load_frame
from fervid.representation.optical_flow import FrameSizeError
from fervid.runs.checkpoint import CheckpointError, save_checkpoint
from fervid.runs.store import RunDirError
from fervid.samples import PROTOCOL_CLASSES, DatasetFormatError, Sample, SampleError

#: (class, the base it had before FervidError: ``except <base>`` code keeps catching it).
USER_ERRORS = [
    (DatasetFormatError, ValueError), (ConfigError, ValueError), (RunDirError, RuntimeError),
    (CheckpointError, ValueError), (FrameReadError, ValueError), (PredictError, ValueError),
    (ExportMismatchError, RuntimeError), (FaceModelMissingError, FileNotFoundError),
    (FaceImageError, ValueError), (HaarCascadeMissingError, FileNotFoundError),
    (VideoReadError, ValueError), (NoFaceFoundError, ValueError), (AlignmentError, ValueError),
    (RunReportError, ValueError), (PublishedResultsError, ValueError),
    # New ones.
    (UserPathError, Exception), (PathNotFoundError, FileNotFoundError), (OptionError, ValueError),
    (SampleError, ValueError), (FrameSizeError, ValueError), (OnnxModelError, ValueError),
    (OutputFolderError, ValueError),
]


@pytest.mark.parametrize("cls, old_base", USER_ERRORS, ids=lambda c: getattr(c, "__name__", ""))
def test_user_errors_are_fervid_errors_and_keep_their_old_base(cls, old_base):
    assert issubclass(cls, FervidError)
    assert issubclass(cls, old_base)


@pytest.mark.parametrize("error", [
    FrameReadError("/data/img1.jpg", "not a JPEG", "casme2_sub01_EP01"),
    DatasetFormatError("/data/CASME2", ["sub01/EP01: clip folder missing"]),
    PathNotFoundError("/data/absent.mp4: video file not found"), OptionError("bad --size"),
], ids=lambda e: type(e).__name__)
def test_user_errors_survive_a_worker_process(error):
    # prepare's worker processes send a clip's error back pickled.
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)


def test_path_error_names_the_path_and_the_reason(tmp_path):
    target = tmp_path / "gone.yaml"
    try:
        target.read_text()
    except OSError as err:
        missing = path_error(target, err, "config file")
    assert isinstance(missing, PathNotFoundError) and isinstance(missing, FileNotFoundError)
    assert str(missing) == f"{target}: cannot use this config file: No such file or directory"
    denied = path_error(target, PermissionError(13, "Permission denied"), "sheet")
    assert type(denied) is UserPathError and not isinstance(denied, FileNotFoundError)
    assert str(denied) == f"{target}: cannot use this sheet: Permission denied"
    assert "cannot use this file: boom" in str(path_error(target, OSError("boom")))


def test_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "absent.yaml"
    with pytest.raises(FervidError, match=f"{missing}: config file not found"):
        load_config(missing)


def test_folder_given_as_config_file_is_named(tmp_path):
    with pytest.raises(FervidError, match=f"{tmp_path}: is a folder"):
        load_config(tmp_path)


def test_binary_config_file_is_named(tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81 not text")
    with pytest.raises(ConfigError, match=f"{binary}: not a UTF-8 text file"):
        load_config(binary)


def _deny(path: Path):
    """A stand-in for a read that the operating system refuses (tests may run as root, who
    reads any file whatever its mode)."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))
    return refuse


def test_unreadable_config_file_is_named(tmp_path, monkeypatch):
    locked = tmp_path / "locked.yaml"
    locked.write_text("seed: 1\n")
    monkeypatch.setattr(Path, "read_text", _deny(locked))
    with pytest.raises(UserPathError, match=f"{locked}: cannot use this config file: "
                                            "Permission denied"):
        load_config(locked)


def test_unreadable_sheet_is_named(tmp_path):
    sheet = tmp_path / "CASME2-coding-20140508.xlsx"
    sheet.write_bytes(b"this is not a workbook")
    with pytest.raises(FervidError, match=f"(?s){sheet}: 1 problem.*cannot read as an Excel sheet"):
        read_sheet(sheet, ["Subject", "Filename"])
    (tmp_path / "frames").mkdir()
    with pytest.raises(FervidError, match=str(sheet)):
        load_dataset("casme2", tmp_path / "frames", "5class", sheet=sheet)


def test_folders_given_where_a_file_is_expected_are_named(tmp_path):
    with pytest.raises(FervidError, match=f"{tmp_path}: DFEW split file not found"):
        read_split_csv(tmp_path)
    with pytest.raises(FervidError, match=f"(?s){tmp_path}: 1 problem.*ground-truth file"):
        read_megc2019_gt(tmp_path)
    with pytest.raises(FervidError, match=f"(?s){tmp_path}: 1 problem.*sheet file does not exist"):
        read_sheet(tmp_path, ["Subject"])
    with pytest.raises(PathNotFoundError, match=f"video {tmp_path} is a folder"):
        read_video_frames(tmp_path)


def test_empty_ground_truth_csv_is_a_format_error(tmp_path):
    empty = tmp_path / "combined_3class_gt.csv"
    empty.write_text("")
    with pytest.raises(DatasetFormatError, match=f"(?s){empty}: 1 problem.*cannot read as CSV"):
        read_megc2019_gt(empty)


def test_unreadable_csv_files_are_named(tmp_path, monkeypatch):
    split = tmp_path / "set_1.csv"
    split.write_text("order,label\n1,1\n")
    index = tmp_path / "pre" / "index.csv"
    index.parent.mkdir()
    index.write_text("dataset,subject,clip,label,file\n")
    gt = tmp_path / "combined_3class_gt.csv"
    gt.write_text("casme2,01,EP01,0\n")
    for path, module in ((split, dfew), (index, precomputed), (gt, megc2019)):
        with monkeypatch.context() as patch:
            patch.setattr(module.pd, "read_csv", _deny(path))
            call = {dfew: lambda: read_split_csv(split),
                    precomputed: lambda: read_precomputed(index.parent),
                    megc2019: lambda: read_megc2019_gt(gt)}[module]
            with pytest.raises(UserPathError, match=f"{path}: cannot use this .*: Permission "
                                                    "denied"):
                call()


def test_unlistable_frame_folder_is_named(tmp_path, monkeypatch):
    import fervid.datasets.frames as frames

    monkeypatch.setattr(frames.os, "scandir", _deny(tmp_path))
    with pytest.raises(UserPathError, match=f"{tmp_path}: cannot use this frame folder"):
        numbered_images(tmp_path)


def test_missing_release_folders_are_named(tmp_path):
    nowhere = tmp_path / "nowhere"
    with pytest.raises(PathNotFoundError, match=f"{nowhere}: DFEW folder not found"):
        read_dfew(nowhere)
    with pytest.raises(PathNotFoundError, match=f"{nowhere}: data folder not found"):
        find_clips("casme2", nowhere, tmp_path / "out")
    with pytest.raises(PathNotFoundError, match=f"{nowhere}: not a folder of frames"):
        numbered_images(nowhere)
    with pytest.raises(DatasetFormatError, match=f"(?s){tmp_path}: 1 problem.*no clips found"):
        find_clips("samm", tmp_path, tmp_path / "out")


def test_missing_video_for_predict_is_named(tmp_path):
    classes = list(PROTOCOL_CLASSES["casme2_5class"])
    cfg = LosoConfig.model_validate({
        "model": {"name": "apex_resnet"},
        "data": {"format": "apex", "dataset": "casme2", "protocol": "5class",
                 "classes": classes, "size": 32}})
    # The video is opened before any weight is used: a stub state dict is enough.
    ckpt = save_checkpoint(tmp_path / "apex.pt", {"w": torch.zeros(1)}, config=cfg,
                           classes=classes)
    missing = tmp_path / "holiday.mp4"
    with pytest.raises(PathNotFoundError, match=f"video {missing} does not exist"):
        predict_video(missing, ckpt, out_dir=tmp_path / "out")
    not_a_video = tmp_path / "notes.mp4"
    not_a_video.write_text("not a video")
    with pytest.raises(VideoReadError, match=str(not_a_video)):
        predict_video(not_a_video, ckpt, out_dir=tmp_path / "out")


def test_missing_and_broken_frames_are_named(tmp_path):
    with pytest.raises(PathNotFoundError, match="absent.jpg: frame file not found"):
        load_frame(tmp_path / "absent.jpg")
    broken = tmp_path / "img1.jpg"
    broken.write_bytes(b"not a jpeg")
    (tmp_path / "img2.jpg").write_bytes(b"not a jpeg either")
    sample = Sample("casme2", "sub01", "EP01", 1, 1, 2, "happiness", 0,
                    (broken, tmp_path / "img2.jpg"))
    params = DssiParams(segments_per_phase=1, frames_per_segment=2)
    with pytest.raises(FrameReadError, match=f"clip casme2_sub01_EP01: {broken}"):
        dssi_from_sample(sample, params)


def test_bad_option_values_are_option_errors(tmp_path):
    cases = [
        (lambda: load_dataset("casme9", tmp_path, "3class"), "unknown dataset 'casme9'"),
        (lambda: parse_ranges("1,,2", option="--folds"), "--folds '1,,2'"),
        (lambda: read_dfew(tmp_path, source="clip_64"), "unknown DFEW source 'clip_64'"),
        (lambda: read_dfew(tmp_path, folds=[6]), "DFEW folds are 1..5"),
        (lambda: template_points("3point"), "unknown alignment template '3point'"),
        (lambda: find_clips("casme2", tmp_path, tmp_path / "o", {1}), "selects DFEW videos"),
    ]
    for call, message in cases:
        with pytest.raises(OptionError, match=message):
            call()


def test_bad_annotation_of_a_clip_is_a_sample_error(tmp_path):
    frames = tuple(tmp_path / f"img{n}.jpg" for n in range(1, 5))
    outside = Sample("casme2", "sub01", "EP09", 1, 9, 4, "happiness", 0, frames)
    with pytest.raises(SampleError, match=r"clip casme2_sub01_EP09: apex \(8\)"):
        dssi_from_sample(outside, DssiParams(segments_per_phase=1, frames_per_segment=2))


def test_output_folder_of_other_settings_is_named(tmp_path):
    settings = tmp_path / "prepare_faces.json"
    check_settings(settings, {"size": 64}, "faces")
    with pytest.raises(OutputFolderError, match=f"{tmp_path} holds faces made with other"):
        check_settings(settings, {"size": 32}, "faces")
    settings.write_text("{not json")
    with pytest.raises(OutputFolderError, match=f"{settings}: not a readable settings file"):
        check_settings(settings, {"size": 64}, "faces")


def test_contract_checks_stay_plain_bugs():
    # A wrong array from fervid's own code is a bug: never dressed up as a user mistake.
    with pytest.raises(ValueError, match="at least 2 frames") as caught:
        dynamic_image(np.zeros((1, 8, 8), np.uint8))
    assert not isinstance(caught.value, FervidError)
    with pytest.raises(ValueError, match="rng") as caught:
        dssi_from_sample(Sample("casme2", "s", "c", 0, 1, 3, "happiness", 0,
                                tuple(Path(f"/nowhere/{n}.jpg") for n in range(4))),
                         DssiParams(segments_per_phase=1, frames_per_segment=2), train=True)
    assert not isinstance(caught.value, FervidError)
