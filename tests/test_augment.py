"""The one augmenter: its draws (shares, ranges), identity at inference, reproducible reseeding,
and the eye-band share a run asks for reaching its recipe."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures import train_cli

keras = pytest.importorskip("keras")


def _augment(strength: str = "strong", eye_band_rate: float = 0.15, seed: int = 3):  # type: ignore[no-untyped-def]
    from fer_edge.training.augment import Augment

    return Augment(strength, eye_band_rate, seed)


def _run(layer, faces: np.ndarray, training: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(keras.ops.convert_to_numpy(layer(faces, training=training)))


def _banded(faces: np.ndarray) -> int:
    """Faces with three or more rows dark across 45% of their width: the band, not erasing (which
    covers under half a row with noise, a fifth of it dark)."""
    dark_rows = (faces[..., 0] <= 50).mean(axis=2) >= 0.45
    return int((dark_rows.sum(axis=1) >= 3).sum())


@pytest.mark.parametrize(("rate", "low", "high"), [(1.0, 64, 64), (0.0, 0, 0), (0.5, 20, 44)])
def test_eye_band_rate_sets_the_share_of_banded_faces(rate: float, low: int, high: int) -> None:
    faces = np.full((64, 48, 48, 1), 255.0, dtype=np.float32)
    out = _run(_augment(eye_band_rate=rate), faces)
    assert out.shape == faces.shape
    assert low <= _banded(out) <= high


def test_low_light_and_erasing_reach_a_quarter_of_the_faces() -> None:
    from fer_edge.training.augment import PHOTOMETRIC

    n = 1200
    white = _run(_augment(eye_band_rate=0.0), np.full((n, 48, 48, 1), 255.0, np.float32))
    # brightness leaves a white face at 235..255; low light darkens it to at most 0.9 * 255
    dimmed = float((np.median(white, axis=(1, 2, 3)) < 232).mean())
    gray = _run(_augment(eye_band_rate=0.0, seed=4), np.full((n, 48, 48, 1), 128.0, np.float32))
    # on a flat face only erasing's noise varies along a row
    erased = float((gray[..., 0].std(axis=2).max(axis=1) > 10).mean())
    assert dimmed == pytest.approx(PHOTOMETRIC.dim_share, abs=0.05)
    assert erased == pytest.approx(PHOTOMETRIC.erase_share, abs=0.05)


@pytest.mark.parametrize("strength", ["basic", "strong"])
def test_geometry_draws_stay_in_their_ranges(strength: str) -> None:
    from fer_edge.training.augment import GEOMETRY

    g, n = GEOMETRY[strength], 4000
    draws = {
        k: np.asarray(keras.ops.convert_to_numpy(v)) for k, v in _augment(strength).geometry(n, 48.0).items()
    }
    assert np.abs(draws["theta"]).max() <= math.radians(g.degrees) + 1e-6
    assert np.abs(draws["theta"]).max() > 0.9 * math.radians(g.degrees)  # the range is used, not just bounded
    zoom = 1.0 / draws["inv_zoom"]
    assert zoom.min() >= 1 - g.zoom - 1e-6 and zoom.max() <= 1 + g.zoom + 1e-6
    assert np.abs(draws["shear"]).max() <= g.shear + 1e-6
    assert np.abs(np.concatenate([draws["tx"], draws["ty"]])).max() <= g.shift * 48 + 1e-4
    assert set(np.unique(draws["flip"])) == {-1.0, 1.0}
    assert (draws["flip"] < 0).mean() == pytest.approx(0.5, abs=0.03)


def test_the_warp_mirrors_exactly_and_is_the_identity_at_rest() -> None:
    from fer_edge.training.augment import affine_transforms

    ops = keras.ops
    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 1)).astype(np.float32)
    zero, one = np.zeros(2, np.float32), np.ones(2, np.float32)
    for flip, expected in ((one, faces), (-one, faces[:, :, ::-1])):
        transforms = affine_transforms(zero, one, zero, flip, zero, zero, 48.0)
        warped = ops.image.affine_transform(faces, transforms, interpolation="bilinear", fill_mode="reflect")
        np.testing.assert_allclose(ops.convert_to_numpy(warped), expected, atol=1e-3)


@pytest.mark.parametrize("strength", ["none", "basic", "strong"])
def test_identity_at_inference_and_fresh_draws_in_training(strength: str) -> None:
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48, 1)).astype(np.float32)
    layer = _augment(strength)
    np.testing.assert_array_equal(_run(layer, faces, training=False), faces)
    first, second = _run(layer, faces), _run(layer, faces)
    assert first.min() >= 0.0 and first.max() <= 255.0
    if strength == "none":
        np.testing.assert_array_equal(first, faces)
        return
    assert np.abs(first - faces).mean() > 5.0
    assert np.abs(first - second).mean() > 5.0  # every call draws anew


def test_basic_moves_pixels_but_keeps_their_values() -> None:
    """``basic`` is geometry only: a flat face stays flat and keeps its gray."""
    flat = np.full((32, 48, 48, 1), 100.0, np.float32)
    np.testing.assert_allclose(_run(_augment("basic"), flat), flat, atol=1e-3)
    assert np.abs(_run(_augment("strong"), flat) - flat).max() > 10  # strong changes light too


def test_reseeding_makes_a_step_draw_the_same_faces() -> None:
    """The feed augments ahead of training: a step's faces depend on (seed, step) alone."""
    faces = np.random.default_rng(1).integers(0, 256, (8, 48, 48, 1)).astype(np.float32)
    a, b = _augment(seed=7), _augment(seed=7)
    a.reseed(5)
    first = _run(a, faces)
    _run(b, faces)  # b's stream has moved on ...
    b.reseed(5)  # ... and is put back
    np.testing.assert_array_equal(_run(b, faces), first)
    b.reseed(6)
    assert np.abs(_run(b, faces) - first).mean() > 5.0


def test_eye_band_rate_outside_zero_to_one_is_a_usage_error(fer_csv: Path, tmp_path: Path) -> None:
    assert train_cli("edge", fer_csv, tmp_path / "run", "--eye-band-rate", "1.5") == 2
    assert not (tmp_path / "run").exists()


def test_eye_band_rate_reaches_the_recorded_recipe(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    extra = ("--eye-band-rate", "0.5", "--epochs", "1", "--limit", "64", "--width", "8")
    assert train_cli("edge", fer_csv, out, *extra) == 0
    recipe = json.loads((out / "model.json").read_text())["training"]["recipe"]
    assert recipe["eye_band_rate"] == 0.5 and recipe["augment"] == "strong"
