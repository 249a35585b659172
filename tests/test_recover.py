"""``fer-edge recover``: the trainable members of an int8 ensemble, back as ``.keras`` models that
compute what the shipped model computes (so ``train --init-from`` continues it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.runtime import EmotionModel
from fer_edge.training.data import load_dataset
from tests.fixtures import calibrate_cli, ensemble_cli


def _edge_member(path: Path, seed: int) -> Path:
    """A narrow ``edge`` with random weights and random batch-norm statistics: folding them into
    the convolutions is what ``recover`` must undo, trained or not."""
    import keras

    from fer_edge.training.archs import build_edge

    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    model = build_edge(7, 48, width=8)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            gamma, beta = rng.uniform(0.5, 1.5, c), rng.normal(0, 0.3, c)
            layer.set_weights([gamma, beta, rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])
    model.save(path)
    return path


@pytest.fixture(scope="module")
def int8_ensemble(tmp_path_factory: pytest.TempPathFactory, fer_csv: Path) -> Path:
    """Two narrow ``edge`` members averaged and quantised as the bundled model is."""
    root = tmp_path_factory.mktemp("ensemble")
    members = [_edge_member(root / f"m{seed}.keras", seed) for seed in (1, 2)]
    assert ensemble_cli(root / "ensemble.keras", *members) == 0
    tflite = root / "ensemble-int8.tflite"
    assert calibrate_cli(root / "ensemble.keras", fer_csv, "int8", tflite, "--calibration-size", "140") == 0
    return tflite


@pytest.mark.slow
def test_recovered_members_compute_the_shipped_model(
    int8_ensemble: Path, fer_csv: Path, tmp_path: Path
) -> None:
    import keras

    recovered = []
    for member in (0, 1):
        out = tmp_path / f"member{member}.keras"
        args = ["-q", "recover", "--model", str(int8_ensemble), "--member", str(member)]
        assert main([*args, "--data", str(fer_csv), "--out", str(out), "--cache-dir", "none"]) == 0
        recovered.append(keras.models.load_model(out))
    faces = load_dataset(fer_csv).splits["PublicTest"].images[..., None].astype(np.float32)
    shipped = EmotionModel(int8_ensemble).predict(faces)
    mean = sum(np.asarray(m.predict(faces, verbose=0)) for m in recovered) / 2
    assert np.abs(mean - shipped).max() < 0.08  # int8 rounding, nothing more
    assert (mean.argmax(axis=1) == shipped.argmax(axis=1)).mean() >= 0.95
    # each batch norm's moving statistics are those of its inputs on faces, so a training batch
    # normalises about as inference does and fine-tuning continues the shipped function
    model = recovered[0]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    inputs = keras.Model(model.inputs, [bn.input for bn in norms]).predict(faces, verbose=0)
    for bn, y in zip(norms, inputs, strict=True):
        _, _, moving_mean, moving_var = bn.get_weights()
        axes = tuple(range(y.ndim - 1))
        assert np.abs(y.mean(axis=axes) - moving_mean).max() <= 0.35 * np.sqrt(moving_var.max()) + 1e-3, (
            bn.name
        )
        assert np.allclose(y.var(axis=axes), moving_var, rtol=0.6, atol=1e-3), bn.name


def test_recover_refuses_what_it_cannot_use(
    int8_model: Path, fer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["-q", "recover", "--data", str(fer_csv), "--cache-dir", "none"]
    assert main([*base, "--model", str(int8_model), "--out", str(tmp_path / "x.h5")]) == 2
    assert main([*base, "--model", str(tmp_path / "none.tflite"), "--out", str(tmp_path / "x.keras")]) == 66
    # the tiny seed-004 model is no edge ensemble
    assert main([*base, "--model", str(int8_model), "--out", str(tmp_path / "x.keras")]) == 65
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("fer-edge recover: error:") for line in lines)
    assert not (tmp_path / "x.keras").exists()
