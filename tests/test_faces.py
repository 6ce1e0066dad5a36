"""Face detection, landmarks and alignment on real photos and generated images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fervid.faces import (
    AlignmentError,
    DlibFaceDetector,
    FaceBox,
    FaceImageError,
    FaceModelMissingError,
    HaarCascadeMissingError,
    HaarFaceDetector,
    LandmarkPredictor,
    align_face,
    detect_faces,
    dlib_model_path,
    five_points,
    template_points,
    transform_points,
)
from fervid.faces.alignment import similarity_matrix
from fervid.faces.detection import default_haar_cascade


def read_rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def hog():
    return DlibFaceDetector(upsample=1)


@pytest.fixture(scope="module")
def single_face(hog):
    from conftest import shared_path

    image = read_rgb(shared_path("faces", "single_face.jpg"))
    return image, hog.detect_faces(image)[0]


# --- detection on real photos

def test_photo_face_counts(shared, hog):
    assert len(hog.detect_faces(read_rgb(shared("faces", "single_face.jpg")))) == 1
    assert hog.detect_faces(read_rgb(shared("faces", "no-face.jpg"))) == []


def test_bgr_and_rgb_give_the_same_faces(shared, hog):
    image = read_rgb(shared("faces", "single_face.jpg"))
    rgb = hog.detect_faces(image)[0]
    bgr = hog.detect_faces(np.ascontiguousarray(image[:, :, ::-1]))[0]
    assert rgb.box.iou(bgr.box) > 0.9
    assert np.abs(rgb.landmarks - bgr.landmarks).mean() < 2.0


@pytest.mark.slow
def test_multi_face_photo_has_five_faces(shared):
    # Five people; one wears sunglasses, which the HOG detector misses and the CNN finds.
    image = read_rgb(shared("faces", "multi_face.jpg"))
    cnn = DlibFaceDetector(model="cnn", landmarks=False).detect_boxes(image)
    assert len(cnn) == 5
    hog = DlibFaceDetector(upsample=1, landmarks=False).detect_boxes(image)
    assert 4 <= len(hog) <= 5
    for box in hog:  # every HOG face is one of the five
        assert max(box.iou(other) for other in cnn) > 0.4


def test_landmarks_lie_in_the_face_box(single_face):
    _, face = single_face
    assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
    box = face.box
    margin = 0.25 * box.width
    assert (face.landmarks[:, 0] > box.x0 - margin).all()
    assert (face.landmarks[:, 0] < box.x1 + margin).all()
    assert (face.landmarks[:, 1] > box.y0 - margin).all()
    assert (face.landmarks[:, 1] < box.y1 + margin).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = five_points(face.landmarks)
    assert left_eye[0] < nose[0] < right_eye[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_downscaled_detection_maps_boxes_back(single_face):
    image, face = single_face
    small = DlibFaceDetector(upsample=1, max_side=256, landmarks=False).detect_boxes(image)
    assert len(small) == 1
    assert small[0].iou(face.box) > 0.7


def test_generated_images(hog):
    blank = np.full((120, 160, 3), 128, np.uint8)
    assert detect_faces(blank, hog) == []
    with pytest.raises(FaceImageError, match="8-bit"):
        detect_faces(blank.astype(np.float32), hog)
    with pytest.raises(FaceImageError, match=r"\(H, W, 3\)"):
        detect_faces(np.zeros((10, 10, 4), np.uint8), hog)


def test_facebox_geometry():
    box = FaceBox(10, 20, 50, 100, 1.5)
    assert (box.width, box.height, box.area, box.center) == (40, 80, 3200, (30, 60))
    assert box.iou(box) == 1.0 and box.iou(box.shifted(100, 0)) == 0.0
    assert box.iou(box.shifted(20, 0)) == pytest.approx(1 / 3)
    assert FaceBox.from_dlib(box.to_dlib()) == FaceBox(10, 20, 50, 100, 0.0)


# --- model files and the Haar fallback

def test_missing_model_files_give_clear_errors(tmp_path):
    assert dlib_model_path("shape_predictor_68_face_landmarks.dat").is_file()
    with pytest.raises(FaceModelMissingError, match="nope.dat"):
        dlib_model_path("nope.dat")
    bogus = tmp_path / "model.dat"
    bogus.write_text("not a model")
    with pytest.raises(FaceModelMissingError, match="model.dat"):
        LandmarkPredictor(bogus)
    with pytest.raises(ValueError, match="unknown dlib face model"):
        DlibFaceDetector(model="mtcnn")


def test_haar_without_shipped_cascades_says_so():
    if default_haar_cascade().is_file():
        pytest.skip(f"this OpenCV ships Haar cascades ({default_haar_cascade()})")
    with pytest.raises(HaarCascadeMissingError, match="ships no Haar cascades"):
        HaarFaceDetector()


def test_haar_with_shipped_cascade_finds_the_face(shared):
    if not default_haar_cascade().is_file():
        pytest.skip("this OpenCV ships no Haar cascades (cv2.data.haarcascades is empty)")
    faces = HaarFaceDetector().detect_faces(read_rgb(shared("faces", "single_face.jpg")))
    assert len(faces) == 1 and faces[0].landmarks is None


def test_haar_bad_cascade_path(tmp_path):
    with pytest.raises(HaarCascadeMissingError, match="absent.xml"):
        HaarFaceDetector(tmp_path / "absent.xml")
    text = tmp_path / "cascade.xml"
    text.write_text("hello")
    with pytest.raises(HaarCascadeMissingError, match="cascade.xml"):
        HaarFaceDetector(text)


# --- alignment

def _similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def test_similarity_recovers_a_known_transform():
    target = template_points(size=112, margin=0.1)
    forward = _similarity(30, 2.5, (40, -15))
    source = transform_points(target, forward)
    matrix = similarity_matrix(source, target)
    assert np.abs(transform_points(source, matrix) - target).max() < 0.01


def test_generated_eye_dots_land_on_the_template():
    # Five dots at a rotated, scaled copy of the template; after alignment each dot's centroid
    # must sit on its template point.
    size = 112
    target = template_points(size=size, margin=0.2)
    points = transform_points(target, _similarity(-20, 2.0, (60, 90)))
    image = np.zeros((400, 400), np.uint8)
    for x, y in points:
        cv2.circle(image, (int(round(x * 8)), int(round(y * 8))), 24, 255, -1, cv2.LINE_AA, 3)
    aligned = align_face(image, points, size=size, margin=0.2, template="5point")
    assert aligned.image.shape == (size, size)
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(
        (aligned.image > 60).astype(np.uint8))
    found = centroids[1:]
    assert len(found) == 5
    for point in target:
        assert np.linalg.norm(found - point, axis=1).min() < 1.0


def test_real_face_eyes_land_on_the_template(single_face):
    image, face = single_face
    size, margin = 112, 0.3
    aligned = align_face(image, face.landmarks, size=size, margin=margin)
    target = template_points(size=size, margin=margin)
    # Landmarks found again on the aligned crop, inside the mapped face box.
    corners = transform_points([[face.box.x0, face.box.y0], [face.box.x1, face.box.y1]],
                               aligned.matrix)
    box = FaceBox(*corners.min(axis=0), *corners.max(axis=0))
    again = five_points(LandmarkPredictor()(aligned.image, box))
    eye_error = np.linalg.norm(again[:2] - target[:2], axis=1)
    print(f"eye centre error on the aligned {size}px crop: {eye_error.round(2)} px")
    assert (eye_error < 2.0).all()


def test_rotated_face_aligns_to_the_same_crop(single_face, hog):
    image, face = single_face
    h, w = image.shape[:2]
    rotation = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    rotated = cv2.warpAffine(image, rotation, (w, h), borderMode=cv2.BORDER_REFLECT)
    faces = hog.detect_faces(rotated)
    assert len(faces) == 1
    straight = align_face(image, face.landmarks).image.astype(np.float32)
    turned = align_face(rotated, faces[0].landmarks).image.astype(np.float32)
    shifted = np.roll(straight, 8, axis=1)  # the same face a little off: a yardstick
    difference = np.abs(straight - turned).mean()
    print(f"mean |straight - rotated| of the aligned crops: {difference:.2f} grey levels "
          f"(8 px shift: {np.abs(straight - shifted).mean():.2f})")
    assert difference < 0.5 * np.abs(straight - shifted).mean()


def test_68point_template_gives_nearly_the_5point_crop(single_face):
    image, face = single_face
    five = align_face(image, face.landmarks, template="5point")
    all_points = align_face(image, face.landmarks, template="68point")
    eyes = five_points(face.landmarks)[:2]
    drift = np.linalg.norm(transform_points(eyes, five.matrix)
                           - transform_points(eyes, all_points.matrix), axis=1)
    assert all_points.image.shape == (112, 112, 3)
    assert drift.max() < 4.0


def test_alignment_rejects_bad_landmarks():
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(AlignmentError, match=r"\(68, 2\)"):
        align_face(image, np.zeros((10, 2)))
    with pytest.raises(AlignmentError, match="NaN"):
        align_face(image, np.full((68, 2), np.nan))
    with pytest.raises(ValueError, match="template"):
        align_face(image, np.zeros((5, 2)), template="3point")
    with pytest.raises(ValueError, match="size"):
        template_points(size=2)
