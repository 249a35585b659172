"""``fer-edge recover``: the trainable members of an int8 ensemble, back as ``.keras`` models that
compute what the shipped model computes (so ``train --init-from`` continues it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.runtime import EmotionModel
from fer_edge.training.data import load_dataset
from tests.fixtures import calibrate_cli, ensemble_cli, train_cli


@pytest.fixture(scope="module")
def int8_ensemble(tmp_path_factory: pytest.TempPathFactory, fer_csv: Path) -> Path:
    """Two narrow ``edge`` members, trained briefly, averaged and quantised as the bundled one is."""
    root = tmp_path_factory.mktemp("ensemble")
    members = []
    for seed in (1, 2):
        out = root / f"m{seed}"
        assert train_cli("edge", fer_csv, out, "--epochs", "2", "--width", "8", "--seed", str(seed)) == 0
        members.append(out / "model.keras")
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
    # in training mode (batch statistics) the batch norms compute nearly the same function
    training_mode = np.asarray(recovered[0](faces[:128], training=True))
    inference = np.asarray(recovered[0].predict(faces[:128], verbose=0))
    assert (training_mode.argmax(axis=1) == inference.argmax(axis=1)).mean() >= 0.9


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
