"""Offline face pipeline for raw footage: detection, landmarks, alignment and tracking."""

from fervid.faces.alignment import (
    AlignedFace,
    AlignmentError,
    align_face,
    five_points,
    template_points,
    transform_points,
)
from fervid.faces.detection import (
    DlibFaceDetector,
    FaceBox,
    FaceDetection,
    FaceImageError,
    FaceModelMissingError,
    HaarCascadeMissingError,
    HaarFaceDetector,
    LandmarkPredictor,
    detect_faces,
    dlib_model_path,
)
from fervid.faces.registration import (
    ANALYSIS_SIZE,
    MOTIONS,
    Registration,
    check_motion,
    compose,
    register_cropped,
    register_frames,
    stable_mask,
    template_mask,
)
from fervid.faces.tracking import (
    FaceTrack,
    FaceTracker,
    NoFaceFoundError,
    landmark_jitter,
    track_faces,
    track_video,
)
from fervid.faces.video import DecodedFrame, VideoFrames, VideoReadError, read_video_frames

__all__ = [
    "ANALYSIS_SIZE", "MOTIONS", "Registration", "check_motion", "compose", "register_cropped",
    "register_frames",
    "stable_mask", "template_mask",
    "AlignedFace", "AlignmentError", "DecodedFrame", "DlibFaceDetector", "FaceBox", "FaceDetection",
    "FaceImageError", "FaceModelMissingError", "FaceTrack", "HaarCascadeMissingError",
    "FaceTracker", "HaarFaceDetector", "LandmarkPredictor", "NoFaceFoundError", "VideoFrames",
    "VideoReadError", "align_face", "detect_faces", "dlib_model_path", "five_points",
    "landmark_jitter", "read_video_frames", "template_points", "track_faces", "track_video",
    "transform_points",
]
