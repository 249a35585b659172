"""``fer-edge teach`` / ``distill``: backend-neutral augmentation, consistent distillation, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_edge.labels import LABELS
from tests.fixtures import accelerated_cli

keras = pytest.importorskip("keras")

HAPPY = LABELS.index("happy")


def _banded(faces: np.ndarray) -> int:
    """Faces with three or more rows dark across 45% of their width: the band, not erasing."""
    dark_rows = (faces[..., 0] <= 50).mean(axis=2) >= 0.45
    return int((dark_rows.sum(axis=1) >= 3).sum())


@pytest.mark.parametrize(("rate", "low", "high"), [(1.0, 64, 64), (0.0, 0, 0), (0.5, 1, 63)])
def test_eye_band_rate_sets_the_share_of_banded_faces(rate: float, low: int, high: int) -> None:
    from fer_edge.training.neutral_augment import StrongAugment

    faces = np.full((64, 48, 48, 1), 255.0, dtype=np.float32)
    out = np.asarray(StrongAugment(rate, seed=3)(faces, training=True))
    assert out.shape == faces.shape
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert low <= _banded(out) <= high


def test_augmentation_varies_faces_in_training_only() -> None:
    from fer_edge.training.neutral_augment import StrongAugment

    faces = np.random.default_rng(0).integers(0, 256, (8, 48, 48, 1)).astype(np.float32)
    augment = StrongAugment(0.3, seed=1)
    np.testing.assert_array_equal(np.asarray(augment(faces, training=False)), faces)
    first, second = (np.asarray(augment(faces, training=True)) for _ in range(2))
    assert np.abs(first - faces).mean() > 5.0
    assert np.abs(first - second).mean() > 5.0  # fresh draws at every step


def test_teach_then_distill_end_to_end(fer_csv: Path, tmp_path: Path) -> None:
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--epochs", "2", "--limit", "128", "--batch-size", "32"]
    assert accelerated_cli("teach", fer_csv, teacher, *common) == 0
    meta = json.loads((teacher / "model.json").read_text())
    assert meta["arch"] == "vgg-teacher" and meta["training"]["epochs"] == 2
    teacher_model = str(teacher / "model.keras")
    extra = ["--teacher", teacher_model, "--teacher", teacher_model, "--width", "16"]
    assert accelerated_cli("distill", fer_csv, student, *common, *extra) == 0
    meta = json.loads((student / "model.json").read_text())
    assert meta["arch"] == "edge" and meta["labels"] == list(LABELS)
    assert [t["model"] for t in meta["training"]["teachers"]] == ["teacher/model.keras"] * 2
    assert meta["training"]["trainer"] == f"accelerated ({keras.backend.backend()} backend)"
    assert meta["training"]["recipe"]["width"] == 16
    history = json.loads((student / "history.json").read_text())
    assert len(history["val_accuracy"]) == 2
    # epoch 1: 1/5 of warm-up; epoch 2: 2/5 of it, halfway down the cosine
    assert history["lr"] == pytest.approx([0.05 / 5, 0.05 * 2 / 5 * 0.5], rel=1e-4)
    report = json.loads((student / "report.json").read_text())
    assert report["n"] == 140 and (student / "curves.png").exists()
    model = keras.models.load_model(student / "model.keras")
    assert model.name == "edge" and model.output.shape[-1] == len(LABELS)  # no augmentation or teacher inside


def test_a_student_of_an_always_happy_teacher_calls_faces_happy(
    fer_csv: Path, happy_teacher: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    extra = ["--teacher", str(happy_teacher), "--teacher-weight", "1", "--width", "16"]
    assert accelerated_cli("distill", fer_csv, out, "--epochs", "3", "--limit", "256", *extra) == 0
    predicted = np.asarray(json.loads((out / "report.json").read_text())["confusion"]).sum(axis=0)
    assert predicted[HAPPY] >= 0.9 * predicted.sum()


def test_a_time_budget_ends_the_run(fer_csv: Path, tmp_path: Path, happy_teacher: Path) -> None:
    out = tmp_path / "student"
    extra = ["--teacher", str(happy_teacher), "--time-budget", "0.5", "--width", "16", "--limit", "64"]
    assert accelerated_cli("distill", fer_csv, out, *extra) == 0
    assert json.loads((out / "model.json").read_text())["training"]["epochs"] == 1


@pytest.fixture()
def six_class_teacher(tmp_path: Path, happy_teacher: Path) -> Path:
    model = keras.models.load_model(happy_teacher)
    path = tmp_path / "six.keras"
    model.save(path)
    meta = {"labels": list(LABELS[:6]), "input_shape": [48, 48, 1]}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--teacher", "{happy}"], 2),  # neither --epochs nor --time-budget
        (["--teacher", "{happy}", "--epochs", "1", "--time-budget", "9"], 2),
        (["--teacher", "{happy}", "--epochs", "1", "--teacher-weight", "0"], 2),
        (["--teacher", "{happy}", "--epochs", "1", "--eye-band-rate", "2"], 2),
        (["--teacher", "missing.keras", "--epochs", "1"], 66),
        (["--teacher", "model.tflite", "--epochs", "1"], 2),
        (["--teacher", "{six}", "--epochs", "1"], 65),
    ],
)
def test_bad_settings_write_nothing(
    fer_csv: Path,
    happy_teacher: Path,
    six_class_teacher: Path,
    tmp_path: Path,
    extra: list[str],
    code: int,
) -> None:
    args = [a.format(happy=happy_teacher, six=six_class_teacher) for a in extra]
    try:
        result = accelerated_cli("distill", fer_csv, tmp_path / "run", *args)
    except SystemExit as e:  # argparse's own refusals
        result = e.code
    assert result == code
    assert not (tmp_path / "run").exists()


def test_distill_runs_on_the_jax_backend(fer_csv: Path, happy_teacher: Path, tmp_path: Path) -> None:
    """What GPU boxes without TensorFlow run: the same command with KERAS_BACKEND=jax."""
    pytest.importorskip("jax")
    out = tmp_path / "student"
    args = ["-q", "distill", "--data", str(fer_csv), "--out", str(out), "--cache-dir", "none"]
    args += ["--teacher", str(happy_teacher), "--epochs", "1", "--limit", "64", "--width", "16"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "fer_edge.cli", *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["training"]["trainer"] == "accelerated (jax backend)"
    assert keras.models.load_model(out / "model.keras").name == "edge"  # and it loads on this backend
