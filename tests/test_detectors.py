"""Face detector backends: Haar on a real face, BlazeFace decoding through a real interpreter."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.detect import BlazeFaceDetector, FaceDetector, HaarDetector, create_detector
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
    found = create_detector(DetectorConfig(detect_width=detect_width)).detect(big)
    assert len(found) == 1
    assert iou(found[0].box, (354, 132, 190, 190)) > 0.6


def test_min_face_px_filters_small_faces(astronaut_gray: np.ndarray) -> None:
    assert create_detector(DetectorConfig(min_face_px=150)).detect(astronaut_gray) == []


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
    detector = create_detector(DetectorConfig(kind="blazeface", model_path=blazeface_like))
    found = detector.detect(np.zeros((480, 640), np.uint8))
    assert len(found) == 1 and found[0].score > 0.99
    # centre (3.5/8, 4.5/8) and side 1/4 of the 640-pixel letterboxed square
    assert iou(found[0].box, (200, 280, 160, 160)) > 0.95


def test_blazeface_rejects_other_models(int8_model: Path) -> None:
    with pytest.raises(DataError, match="BlazeFace"):
        create_detector(DetectorConfig(kind="blazeface", model_path=int8_model))


def test_blazeface_needs_a_model_path() -> None:
    with pytest.raises(ValueError, match="model_path"):
        DetectorConfig(kind="blazeface")
    with pytest.raises(ConfigError, match="expected one of"):
        create_detector(DetectorConfig.model_construct(kind="yolo"))
