"""``fer-edge teach`` / ``distill``: the training loop's presets for teachers and their students."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_edge.labels import LABELS
from tests.fixtures import training_cli

keras = pytest.importorskip("keras")

HAPPY = LABELS.index("happy")


def test_teach_then_distill_end_to_end(fer_csv: Path, tmp_path: Path) -> None:
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--epochs", "2", "--limit", "128", "--batch-size", "32"]
    assert training_cli("teach", fer_csv, teacher, *common) == 0
    meta = json.loads((teacher / "model.json").read_text())
    assert meta["arch"] == "vgg-teacher" and meta["training"]["epochs"] == 2
    teacher_model = str(teacher / "model.keras")
    extra = ["--teacher", teacher_model, "--teacher", teacher_model, "--width", "16"]
    assert training_cli("distill", fer_csv, student, *common, *extra) == 0
    meta = json.loads((student / "model.json").read_text())
    assert meta["arch"] == "edge" and meta["labels"] == list(LABELS)
    teachers = meta["training"]["distillation"]["teachers"]
    assert [t["model"] for t in teachers] == ["teacher/model.keras"] * 2
    assert meta["training"]["trainer"] == f"fer-edge train ({keras.backend.backend()} backend)"
    assert meta["training"]["width"] == 16 and meta["training"]["recipe"]["eye_band_rate"] == 0.3
    assert meta["training"]["distillation"]["temperature"] == 1.0  # distill's preset
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
    assert training_cli("distill", fer_csv, out, "--epochs", "3", "--limit", "256", *extra) == 0
    predicted = np.asarray(json.loads((out / "report.json").read_text())["confusion"]).sum(axis=0)
    assert predicted[HAPPY] >= 0.9 * predicted.sum()


def test_a_time_budget_ends_the_run(fer_csv: Path, tmp_path: Path, happy_teacher: Path) -> None:
    out = tmp_path / "student"
    extra = ["--teacher", str(happy_teacher), "--time-budget", "0.5", "--width", "16", "--limit", "64"]
    assert training_cli("distill", fer_csv, out, *extra) == 0
    assert json.loads((out / "model.json").read_text())["training"]["epochs_run"] == 1


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
        (["--teacher", "{happy}", "--epochs", "1", "--time-budget", "9"], 2),
        (["--teacher", "{happy}", "--epochs", "1", "--teacher-weight", "0"], 2),
        (["--teacher", "{happy}", "--epochs", "1", "--eye-band-rate", "2"], 2),
        (["--teacher", "missing.keras", "--epochs", "1"], 66),
        (["--teacher", "model.onnx", "--epochs", "1"], 2),
        (["--epochs", "1"], 2),  # distill without a teacher
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
        result = training_cli("distill", fer_csv, tmp_path / "run", *args)
    except SystemExit as e:  # argparse's own refusals
        result = e.code
    assert result == code
    assert not (tmp_path / "run").exists()


# What a GPU box without TensorFlow has: imports of it fail, and nothing may need it.
WITHOUT_TENSORFLOW = """
import importlib.abc, importlib.util, sys
class NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras"):
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, NoTensorFlow())
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.startswith("tensorflow") else find_spec(name, *a)
from fer_edge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_training_on_jax_needs_no_tensorflow(fer_csv: Path, happy_teacher: Path, tmp_path: Path) -> None:
    """What GPU boxes without TensorFlow run: the same command with KERAS_BACKEND=jax."""
    pytest.importorskip("jax")
    out = tmp_path / "student"
    args = ["-q", "distill", "--data", str(fer_csv), "--out", str(out), "--cache-dir", "none"]
    args += ["--teacher", str(happy_teacher), "--epochs", "1", "--limit", "64", "--width", "8"]
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, *args], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        json.loads((out / "model.json").read_text())["training"]["trainer"] == "fer-edge train (jax backend)"
    )
    assert (out / "report.json").is_file() and (out / "checkpoints" / "state.json").is_file()
    assert not (out / "tensorboard").exists()  # TensorBoard's writer needs TensorFlow: left out
    assert json.loads((out / "model.json").read_text())["training"]["distillation"]["scored"] == "in graph"
    assert keras.models.load_model(out / "model.keras").name == "edge"  # and it loads on this backend
