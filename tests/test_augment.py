"""Training augmentation: the eye-band share a run asks for is the share it gets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import train_cli

tf = pytest.importorskip("tensorflow")


def _banded_faces(rate: float, n: int = 64) -> int:
    """How many of ``n`` white faces come out of ``strong`` augmentation with a dark band of rows."""
    from fer_edge.training.augment import make_augmenter

    augment = make_augmenter("strong", seed=3, eye_band_rate=rate)
    assert augment is not None
    faces = tf.fill([n, 48, 48, 1], 255.0)
    out, _ = augment(tf.constant(0), (faces, tf.zeros([n, 7])))
    # random erasing covers under half a row with noise (a fifth of it dark), so only the band
    # leaves three or more rows dark across at least 45% of their width
    dark_rows = (np.asarray(out)[..., 0] <= 50).mean(axis=2) >= 0.45
    return int((dark_rows.sum(axis=1) >= 3).sum())


def test_eye_band_rate_sets_the_share_of_banded_faces() -> None:
    assert _banded_faces(1.0) == 64
    assert _banded_faces(0.0) == 0
    assert 0 < _banded_faces(0.5) < 64


def test_eye_band_rate_outside_zero_to_one_is_a_usage_error(fer_csv: Path, tmp_path: Path) -> None:
    assert train_cli("edge", fer_csv, tmp_path / "run", "--eye-band-rate", "1.5") == 2
    assert not (tmp_path / "run").exists()


def test_eye_band_rate_reaches_the_recorded_recipe(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert train_cli("edge", fer_csv, out, "--eye-band-rate", "0.5", "--epochs", "1", "--limit", "64") == 0
    recipe = json.loads((out / "model.json").read_text())["training"]["recipe"]
    assert recipe["eye_band_rate"] == 0.5 and recipe["augment"] == "strong"
