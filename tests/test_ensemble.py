"""``fer-edge ensemble``: trained models averaged into one, then quantised like any model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.runtime import EmotionModel, RuntimeOptions
from tests.fixtures import calibrate_cli, ensemble_cli, train_cli


@pytest.fixture(scope="module")
def second_model(tmp_path_factory: pytest.TempPathFactory, fer_csv: Path) -> Path:
    out = tmp_path_factory.mktemp("second") / "run"
    assert train_cli("seed-004-m1", fer_csv, out, "--epochs", "1", "--limit", "140", "--seed", "9") == 0
    return out / "model.keras"


def test_ensemble_averages_members_and_calibrates(
    trained_run: Path, second_model: Path, fer_csv: Path, tmp_path: Path
) -> None:
    import keras

    first = trained_run / "model.keras"
    out = tmp_path / "pair.keras"
    assert ensemble_cli(out, first, second_model) == 0
    faces = np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 1)).astype(np.float32)
    members = [
        keras.models.load_model(p, compile=False).predict(faces, verbose=0) for p in (first, second_model)
    ]
    averaged = keras.models.load_model(out, compile=False).predict(faces, verbose=0)
    np.testing.assert_allclose(averaged, (members[0] + members[1]) / 2, atol=1e-5)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["arch"] == "seed-004-m1+seed-004-m1" and len(meta["training"]["ensemble_of"]) == 2

    tflite = tmp_path / "pair-int8.tflite"
    assert calibrate_cli(out, fer_csv, "int8", tflite, "--calibration-size", "70") == 0
    model = EmotionModel(tflite, RuntimeOptions(num_threads=1))
    probs = model.predict(faces[:2] * np.float32(1.0))
    assert probs.shape == (2, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=0.05)
    assert json.loads(tflite.with_suffix(".json").read_text())["metrics"]["accuracy"] > 0.3


def test_ensemble_refuses_what_cannot_be_averaged(
    trained_run: Path, fer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = str(trained_run / "model.keras")
    six = tmp_path / "six"
    extra = ("--epochs", "1", "--limit", "60", "--drop-class", "disgust")
    assert train_cli("seed-004-m1", fer_csv, six, *extra) == 0
    out = tmp_path / "bad.keras"
    assert ensemble_cli(out, first, six / "model.keras") == 65
    assert "only models of the same task" in capsys.readouterr().err
    assert ensemble_cli(out, first) == 2
    assert ensemble_cli(out, first, tmp_path / "no.keras") == 66
    assert not out.exists()
