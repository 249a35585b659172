"""Head pose from BlazeFace's keypoints: the geometry, the mirror symmetry on a real face found
by the real detector, and faces turned too far reported with no emotion."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.daemon.pose import NOSE_DEPTH, head_pose, mirror_keypoints


def projected(yaw_deg: float, roll_deg: float = 0.0, eye_gap: float = 40.0) -> tuple:
    """The six keypoints of a model head (eyes 'eye_gap' apart, nose NOSE_DEPTH eye gaps in
    front of them) turned by ``yaw`` and tilted by ``roll``, seen from the front."""
    yaw, roll = math.radians(yaw_deg), math.radians(roll_deg)
    e, depth = eye_gap / 2, NOSE_DEPTH * eye_gap
    head = [(-e, 0, 0), (e, 0, 0), (0, 18, depth), (0, 34, depth / 2), (-1.6 * e, 8, -e), (1.6 * e, 8, -e)]
    points = []
    for x, y, z in head:
        x = x * math.cos(yaw) + z * math.sin(yaw)  # turn about the vertical axis, then project
        x, y = x * math.cos(roll) - y * math.sin(roll), x * math.sin(roll) + y * math.cos(roll)
        points.append((200 + x, 150 + y))
    return tuple(points)


@pytest.mark.parametrize("yaw", [-60.0, -30.0, -10.0, 0.0, 12.5, 45.0, 70.0])
@pytest.mark.parametrize("roll", [-20.0, 0.0, 15.0])
def test_yaw_and_roll_of_a_model_head(yaw: float, roll: float) -> None:
    pose = head_pose(projected(yaw, roll))
    assert pose is not None
    assert pose.yaw_deg == pytest.approx(yaw, abs=0.2) and pose.roll_deg == pytest.approx(roll, abs=0.2)
    mirrored = head_pose(mirror_keypoints(projected(yaw, roll), 640))
    assert mirrored is not None
    assert mirrored.yaw_deg == pytest.approx(-yaw, abs=0.2) and mirrored.roll_deg == pytest.approx(
        -roll, abs=0.2
    )


def test_no_pose_without_keypoints_or_with_eyes_on_one_point() -> None:
    assert head_pose(None) is None
    assert head_pose(((5.0, 5.0), (5.0, 5.0), (6.0, 9.0))) is None


@pytest.fixture(scope="module")
def frames() -> tuple[np.ndarray, np.ndarray]:
    from fer_edge.daemon.democlip import face_image

    canvas = np.full((480, 640), 110, np.uint8)
    canvas[100:310, 200:410] = cv2.cvtColor(face_image(), cv2.COLOR_BGR2GRAY)
    return canvas, np.ascontiguousarray(canvas[:, ::-1])


def test_a_real_frontal_face_and_its_mirror_image(frames: tuple[np.ndarray, np.ndarray]) -> None:
    from fer_edge.daemon.config import DetectorConfig
    from fer_edge.daemon.detect import create_detector

    detector = create_detector(DetectorConfig(kind="blazeface"))
    poses = []
    for frame in frames:
        found = detector.detect(frame)
        assert len(found) == 1 and found[0].keypoints is not None and len(found[0].keypoints) == 6
        (rx, _), (lx, _) = found[0].keypoints[:2]
        assert rx < lx  # the subject's right eye is on the image's left, mirrored or not
        poses.append(head_pose(found[0].keypoints))
    assert all(p is not None and abs(p.yaw_deg) <= 10 for p in poses), poses
    assert np.sign(poses[0].yaw_deg) == -np.sign(poses[1].yaw_deg)
    assert abs(poses[0].yaw_deg + poses[1].yaw_deg) <= 3.0


def test_faces_turned_past_max_yaw_carry_no_emotion(
    frames: tuple[np.ndarray, np.ndarray], int8_model: Path
) -> None:
    from fer_edge.daemon.config import DetectorConfig
    from fer_edge.daemon.detect import create_detector
    from fer_edge.daemon.pipeline import FacePipeline
    from fer_edge.models import BUNDLED_MODEL
    from fer_edge.runtime import EmotionModel

    model = EmotionModel(BUNDLED_MODEL if BUNDLED_MODEL.exists() else int8_model)
    results = {}
    for limit in (45.0, 2.0):  # the astronaut looks about 5 degrees aside
        pipeline = FacePipeline(create_detector(DetectorConfig(kind="blazeface", max_yaw_deg=limit)), model)
        (face,) = pipeline.analyse(frames[0]).faces
        results[limit] = face.to_json()
    assert results[45.0]["emotion"] is not None and "turned_away" not in results[45.0]
    assert results[45.0]["attention"] is True and abs(results[45.0]["yaw_deg"]) <= 10
    away = results[2.0]
    assert away["emotion"] is None and away["score"] is None and away["scores"] == {}
    assert (
        away["turned_away"] is True
        and "too_small" not in away
        and away["yaw_deg"] == results[45.0]["yaw_deg"]
    )
