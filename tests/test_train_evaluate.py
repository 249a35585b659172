"""``fer-edge train`` and ``fer-edge evaluate`` end to end through the CLI, and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from tests.fixtures import train_cli


def test_train_writes_every_artifact(trained_run: Path) -> None:
    for name in (
        "model.keras",
        "model.json",
        "history.json",
        "curves.png",
        "confusion.png",
        "report.json",
        "checkpoints/state.json",
        "checkpoints/epoch-0003.keras",
        "checkpoints/epoch-0003.optimizer.npz",
    ):
        assert (trained_run / name).is_file(), name
    assert any((trained_run / "tensorboard").rglob("events.out.tfevents.*"))
    assert len(list((trained_run / "checkpoints").glob("epoch-*.keras"))) == 1  # earlier epochs dropped
    history = json.loads((trained_run / "history.json").read_text())
    assert len(history["loss"]) == 3 and len(history["val_accuracy"]) == 3
    report = json.loads((trained_run / "report.json").read_text())
    assert report["split"] == "PublicTest" and report["n"] == 140
    # the kept model is the best epoch on the selection split, not the last one
    assert report["accuracy"] == pytest.approx(max(history["val_accuracy"]), abs=1e-3)
    meta = json.loads((trained_run / "model.json").read_text())
    assert meta["arch"] == "seed-004-m1" and meta["training"]["selection_split"] == "PublicTest"
    assert "fer-edge" in meta["command"]
    assert report["accuracy"] > 0.5  # synthetic classes are easy: it did learn


def test_evaluate_report_matches_the_contract(
    trained_run: Path, fer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval.json"
    assert (
        main(
            [
                "-q",
                "evaluate",
                "--model",
                str(trained_run / "model.keras"),
                "--data",
                str(fer_csv),
                "--json",
                str(out),
                "--tta",
                "flip",
                "--robustness",
                "--cache-dir",
                "none",
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert {"model", "data", "split", "n", "accuracy", "macro_f1", "per_class", "confusion"} <= set(report)
    assert report["split"] == "PublicTest" and report["n"] == 140
    assert set(report["per_class"]) == {
        "angry",
        "disgust",
        "fear",
        "happy",
        "sad",
        "surprise",
        "neutral",
    }
    assert sum(map(sum, report["confusion"])) == 140
    assert set(report["robustness"]) == {"low_light", "occlusion_band", "rotate_+20", "rotate_-20", "framing"}
    assert (tmp_path / "eval.png").stat().st_size > 1000
    assert "accuracy=" in capsys.readouterr().out


def test_evaluate_json_to_stdout(
    trained_run: Path, fer_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "-q",
                "evaluate",
                "--model",
                str(trained_run / "model.keras"),
                "--data",
                str(fer_csv),
                "--split",
                "Training",
                "--json",
                "-",
                "--cache-dir",
                "none",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "Training" and report["n"] == 840


def _last_weights(out: Path) -> list[np.ndarray]:
    """The weights of a run's last checkpoint, the one ``state.json`` names."""
    import keras

    state = json.loads((out / "checkpoints" / "state.json").read_text())
    model = keras.models.load_model(out / "checkpoints" / state["student"], compile=False)
    return [np.asarray(w) for w in model.get_weights()]


def _largest_difference(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b, strict=True))


def test_resume_gives_the_weights_of_an_uninterrupted_run(fer_csv: Path, tmp_path: Path) -> None:
    """Stopped after epoch 1 and resumed to 2, a run ends with the weights of a run that went to 2
    at once with the same seed: same order, augmentation, dropout, optimizer state and schedule.
    (A resume that restarted from fresh weights, or replayed epoch 0's batches, would not.)"""
    args = ("--limit", "140", "--augment", "strong", "--schedule", "plateau")
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert train_cli("seed-004-m2", fer_csv, straight, *args, "--epochs", "2") == 0
    assert train_cli("seed-004-m2", fer_csv, stopped, *args, "--epochs", "1") == 0
    assert json.loads((stopped / "checkpoints" / "state.json").read_text())["epoch"] == 1
    after_one = _last_weights(stopped)
    assert train_cli("seed-004-m2", fer_csv, stopped, *args, "--epochs", "2", "--resume") == 0
    history = json.loads((stopped / "history.json").read_text())
    assert len(history["loss"]) == 2
    assert json.loads((stopped / "checkpoints" / "state.json").read_text())["epoch"] == 2
    assert _largest_difference(_last_weights(stopped), _last_weights(straight)) < 1e-5
    assert _largest_difference(_last_weights(stopped), after_one) > 1e-3
    # provenance without the training machine's paths: names (and content hashes) only
    metadata = (straight / "model.json").read_text()
    assert str(tmp_path) not in metadata and str(Path.home()) + "/" not in metadata
    assert f"{fer_csv.name}@sha256:" in json.loads(metadata)["command"]


def _train_process(backend: str, data: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """``fer-edge train --arch edge`` in its own process on ``backend``, as a user would run it."""
    args = ["-q", "train", "--arch", "edge", "--width", "8", "--data", str(data), "--out", str(out)]
    args += ["--cache-dir", "none", "--limit", "448", "--batch-size", "32", "--epochs", "3", "--seed", "9"]
    env = {**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [sys.executable, "-m", "fer_edge.cli", *args, *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish_ok(process: subprocess.Popen[str]) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_run_killed_mid_epoch_resumes_to_the_uninterrupted_weights(
    backend: str, fer_csv: Path, tmp_path: Path
) -> None:
    """The same command on TensorFlow (this CPU) and JAX (GPU boxes): killed with SIGKILL during
    epoch 2 and resumed, it ends where a run that was never interrupted ends."""
    if backend == "jax":
        pytest.importorskip("jax")
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    reference = _train_process(backend, fer_csv, straight)
    victim = _train_process(backend, fer_csv, killed)
    state = killed / "checkpoints" / "state.json"
    deadline = time.monotonic() + 300
    while not state.exists() and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    victim.kill()  # as soon as epoch 1 is checkpointed: epoch 2 is under way
    victim.communicate(timeout=60)
    epoch = json.loads(state.read_text())["epoch"]
    assert epoch < 3, "the run ended before it could be killed"
    _finish_ok(_train_process(backend, fer_csv, killed, "--resume"))
    _finish_ok(reference)
    assert json.loads(state.read_text())["epoch"] == 3
    assert len(json.loads((killed / "history.json").read_text())["loss"]) == 3
    assert _largest_difference(_last_weights(killed), _last_weights(straight)) < 1e-5
    meta = json.loads((killed / "model.json").read_text())
    assert meta["training"]["trainer"] == f"fer-edge train ({backend} backend)"


def test_resume_without_checkpoint_is_missing_input(fer_csv: Path, tmp_path: Path) -> None:
    assert train_cli("seed-002", fer_csv, tmp_path / "new", "--resume") == 66


def test_drop_class_trains_six_classes(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "six"
    extra = ("--epochs", "1", "--drop-class", "disgust", "--class-weights", "--limit", "120")
    assert train_cli("seed-004-m1", fer_csv, out, *extra) == 0
    meta = json.loads((out / "model.json").read_text())
    assert "disgust" not in meta["labels"] and len(meta["labels"]) == 6
    report = json.loads((out / "report.json").read_text())
    assert report["n"] == 120  # the 20 disgust faces of PublicTest are left out


def test_init_from_starts_from_the_trained_weights(trained_run: Path, fer_csv: Path, tmp_path: Path) -> None:
    base = json.loads((trained_run / "report.json").read_text())["accuracy"]
    out = tmp_path / "warm"
    extra = ("--epochs", "1", "--lr", "1e-7", "--init-from", str(trained_run / "model.keras"))
    assert train_cli("seed-004-m1", fer_csv, out, *extra) == 0
    # one epoch at a negligible learning rate: a fresh net would be near chance (1/7)
    assert json.loads((out / "report.json").read_text())["accuracy"] >= base - 0.05
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["init_from"].startswith("model.keras@sha256:")  # no machine paths


def test_init_from_another_architecture_or_nothing_is_refused(
    trained_run: Path, fer_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = str(trained_run / "model.keras")
    assert train_cli("seed-002", fer_csv, tmp_path / "a", "--epochs", "1", "--init-from", model) == 65
    assert "do not match" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # a refused run writes nothing
    missing = str(tmp_path / "none.keras")
    assert train_cli("seed-004-m1", fer_csv, tmp_path / "b", "--init-from", missing) == 66
    assert not (tmp_path / "b").exists()
