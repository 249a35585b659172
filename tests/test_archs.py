"""Every --arch builds for 7 and 6 classes and runs a forward pass on raw pixels."""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.errors import UsageError
from fer_edge.training.archs import ARCHS, build_model, get_arch


@pytest.mark.parametrize("name", list(ARCHS))
def test_forward_pass(name: str) -> None:
    model = build_model(name, num_classes=7)
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    probs = np.asarray(model(faces, training=False))
    assert probs.shape == (2, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_drop_class_builds_six_outputs() -> None:
    assert build_model("seed-004-m2", num_classes=6).output_shape == (None, 6)


def test_edge_fits_the_camera_box_budget() -> None:
    model = build_model("edge", num_classes=7)
    assert model.count_params() < 1_000_000  # <= 1 MB as int8 with room for metadata
    allowed = {
        "InputLayer",
        "Rescaling",
        "Conv2D",
        "SeparableConv2D",
        "BatchNormalization",
        "ReLU",
        "MaxPooling2D",
        "Add",
        "GlobalAveragePooling2D",
        "Dropout",
        "Dense",
    }
    assert {type(layer).__name__ for layer in model.layers} <= allowed


def test_unknown_arch_lists_the_known_ones() -> None:
    with pytest.raises(UsageError, match="seed-002"):
        get_arch("nope")
