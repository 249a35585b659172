"""Face detector backends: Haar on a real face, BlazeFace decoding through a real interpreter."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.daemon import blazeface
from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.detect import (
    SURE_LOOK,
    BlazeFaceDetector,
    FaceDetector,
    HaarDetector,
    _BlazeFaceModel,
    create_detector,
    load_framing,
    pooled_score,
    tile_grid,
)
from fer_edge.daemon.track import iou
from fer_edge.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def astronaut_gray() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)


def test_registry_has_both_backends() -> None:
    assert FaceDetector.registry == {"haar": HaarDetector, "blazeface": BlazeFaceDetector}


@pytest.mark.parametrize("detect_width", [256, 640])
def test_haar_finds_the_astronaut_in_source_pixels(astronaut_gray: np.ndarray, detect_width: int) -> None:
    big = cv2.resize(astronaut_gray, (1024, 1024))  # boxes must come back in source pixels
    found = create_detector(DetectorConfig(kind="haar", detect_width=detect_width)).detect(big)
    assert len(found) == 1
    assert iou(found[0].box, (354, 132, 190, 190)) > 0.6


@pytest.mark.parametrize("size", [512, 1024])
def test_blazeface_finds_the_astronaut_once_in_source_pixels(astronaut_gray: np.ndarray, size: int) -> None:
    frame = cv2.resize(astronaut_gray, (size, size))
    found = create_detector(DetectorConfig()).detect(frame)
    assert len(found) == 1, found  # her face, and nothing on her suit or the flag
    k = size / 512
    assert iou(found[0].box, (round(177 * k), round(74 * k), round(97 * k), round(97 * k))) > 0.6


def test_blazeface_finds_a_small_face_haar_misses(astronaut_gray: np.ndarray) -> None:
    """A 48-pixel face in a 1280x720 frame: under Haar's window at the default 640-wide scan."""
    face = cv2.resize(astronaut_gray[60:190, 160:290], (56, 56), interpolation=cv2.INTER_AREA)
    frame = np.full((720, 1280), 120, np.uint8)
    frame[400:456, 900:956] = face
    found = create_detector(DetectorConfig()).detect(frame)
    assert len(found) == 1 and iou(found[0].box, (900, 400, 56, 56)) > 0.4
    assert create_detector(DetectorConfig(kind="haar")).detect(frame) == []


@pytest.mark.parametrize("kind", ["haar", "blazeface"])
def test_min_face_px_filters_small_faces(astronaut_gray: np.ndarray, kind: str) -> None:
    assert create_detector(DetectorConfig(kind=kind, min_face_px=150)).detect(astronaut_gray) == []


@pytest.mark.parametrize("kind", ["haar", "blazeface"])
def test_each_detector_ships_a_fitted_framing(kind: str) -> None:
    framing = create_detector(DetectorConfig(kind=kind)).framing
    assert framing == load_framing(kind)
    # a crop about the size of the box, near its centre: a fitted transform, not a margin
    assert 0.9 < framing.scale < 1.5 and abs(framing.dx) < 0.1 and abs(framing.dy) < 0.2


def test_a_broken_framing_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "framing.json"
    bad.write_text('{"framing": {"dx": 0}}')
    with pytest.raises(DataError, match="framing"):
        create_detector(DetectorConfig(kind="haar", framing_path=bad))


def test_published_variants_are_recognised_and_their_anchors_laid_out() -> None:
    assert blazeface.find_variant(128, 896).name == "short-range"
    assert blazeface.find_variant(256, 896).name == "back-camera"
    assert blazeface.find_variant(192, 2304).name == "full-range"
    assert blazeface.find_variant(192, 896) is None
    full = blazeface.anchor_centres(blazeface.find_variant(192, 2304))
    assert full.shape == (2304, 2)
    assert np.allclose(full[0], (0.5 / 48, 0.5 / 48)) and np.allclose(full[49], (1.5 / 48, 1.5 / 48))


def test_tiles_cover_the_region_with_the_overlap_asked_for() -> None:
    tiles = tile_grid((10, 20, 1000, 300), 400, 133)
    assert all(t[2] == t[3] == 400 for t in tiles)
    xs = sorted({t[0] for t in tiles})
    assert xs[0] == 10 and xs[-1] + 400 == 1010
    assert all(b - a <= 400 - 133 for a, b in itertools.pairwise(xs))
    assert {t[1] for t in tiles} == {20}  # a region shorter than a tile: one row


def test_a_followed_face_looked_at_surely_skips_its_mirror_look(astronaut_gray: np.ndarray) -> None:
    """A face seen last tick whose first close look is sure costs one short-range invoke; a new
    face (a proposal) always takes both, and so does a followed face the first look doubts."""
    frame = cv2.resize(astronaut_gray, (1024, 1024))
    detector = create_detector(DetectorConfig())
    assert isinstance(detector, BlazeFaceDetector)
    scores: list[float] = []
    boxes = detector._refine.boxes

    def counting_boxes(gray: np.ndarray, threshold: float) -> Iterator[tuple]:
        found = list(boxes(gray, threshold))
        scores.append(found[0][1] if found else 0.0)
        return iter(found)

    detector._refine.boxes = counting_boxes  # type: ignore[method-assign]
    (new,) = detector.detect(frame)
    looks_per_new_face = len(scores)
    scores.clear()
    (followed,) = detector.confirm(frame, new.box, strict=True)
    assert looks_per_new_face >= 2 and len(scores) == 1 and scores[0] >= SURE_LOOK, scores
    assert iou(followed.box, new.box) > 0.8 and followed.score >= 0.65
    assert len(followed.keypoints or ()) == 6
    scores.clear()  # a first look short of ``sure`` asks the mirror, as a new face's does
    doubted = detector._look_closer(frame, new.box, 0.5, 0.65, reach=0.75, sure=1.01)
    assert len(scores) == 2 and doubted is not None
    assert iou(doubted.box, followed.box) > 0.8


def test_pooled_score_needs_every_look_to_agree() -> None:
    assert pooled_score(0.9, 0.9, 0.9) == pytest.approx(0.9)
    assert pooled_score(0.99, 0.99, 0.02) < pooled_score(0.9, 0.9, 0.9)
    assert pooled_score(0.8, 0.1, 0.8) < 0.65  # the mirror image does not look like a face


@pytest.fixture(scope="module")
def blazeface_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TFLite model with BlazeFace's input and outputs whose answer is fixed: one face at the
    anchor of 8x8-grid cell (3, 4), a quarter of the input wide."""
    import keras
    import tensorflow as tf

    anchor = 512 + (4 * 8 + 3) * 6
    box_bias = np.zeros((896, 16), np.float32)
    box_bias[anchor, 2:4] = 32.0  # w, h = 32/128 of the input
    logits = np.full((896,), -10.0, np.float32)
    logits[anchor] = 5.0
    inputs = keras.Input((128, 128, 3), batch_size=1)
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    boxes = keras.layers.Dense(
        896 * 16, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(box_bias.ravel())
    )(pooled)
    scores = keras.layers.Dense(
        896, kernel_initializer="zeros", bias_initializer=keras.initializers.Constant(logits)
    )(pooled)
    model = keras.Model(
        inputs, [keras.layers.Reshape((896, 16))(boxes), keras.layers.Reshape((896, 1))(scores)]
    )
    saved = tmp_path_factory.mktemp("bf") / "saved"
    model.export(str(saved), format="tf_saved_model", verbose=False)
    path = saved.parent / "blazeface.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    return path


def test_blazeface_decodes_anchor_boxes(blazeface_like: Path) -> None:
    model = _BlazeFaceModel(blazeface_like, threads=1)
    found = model(np.zeros((480, 640), np.uint8), 0.5)
    assert len(found) == 1 and found[0][1] > 0.99
    # centre (3.5/8, 4.5/8) and side 1/4 of the 640-pixel letterboxed square
    assert iou(found[0][0], (200, 280, 160, 160)) > 0.95


def test_blazeface_rejects_other_models(int8_model: Path) -> None:
    with pytest.raises(DataError, match="BlazeFace"):
        create_detector(DetectorConfig(kind="blazeface", model_path=int8_model))


def test_detector_files_must_exist_and_kinds_be_known(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="model_path"):
        DetectorConfig(kind="blazeface", model_path=tmp_path / "missing.tflite")
    with pytest.raises(ConfigError, match="expected one of"):
        create_detector(DetectorConfig.model_construct(kind="yolo"))


def test_vendored_detector_models_are_the_published_files() -> None:
    """The shipped BlazeFace files are byte for byte the ones the provenance note names."""
    import hashlib
    import re

    from fer_edge.daemon.detect import bundled_detector_file

    note = bundled_detector_file("README.md").read_text()
    listed = dict((name, digest) for digest, name in re.findall(r"([0-9a-f]{64})\s+(\S+\.tflite)", note))
    assert set(listed) == {"face_detection_back.tflite", "face_detection_short_range.tflite"}
    for name, digest in listed.items():
        assert hashlib.sha256(bundled_detector_file(name).read_bytes()).hexdigest() == digest
    assert "Apache License" in bundled_detector_file("LICENSE-APACHE-2.0.txt").read_text()
