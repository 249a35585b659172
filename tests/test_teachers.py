"""Teachers: the student learns their answers on the faces it sees; bad settings are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_edge.labels import LABELS
from tests.fixtures import train_cli

keras = pytest.importorskip("keras")

HAPPY = LABELS.index("happy")


def test_soften_keeps_the_ranking_and_spreads_the_mass() -> None:
    from fer_edge.training.teachers import soften

    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(soften(p, 1.0)), p, atol=1e-6)
    warm = np.asarray(keras.ops.convert_to_numpy(soften(p, 3.0)))
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, atol=1e-6)
    assert (warm.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (warm.max(axis=1) < p.max(axis=1)).all()


def test_a_tflite_teacher_scores_the_augmented_faces_the_feed_yields() -> None:
    """A ``.tflite`` teacher cannot run in the graph: the feed augments the batch and mixes the
    teacher's scores of THOSE faces into the targets."""
    from fer_edge.models import BUNDLED_MODEL
    from fer_edge.training.augment import Augment
    from fer_edge.training.feed import Feed
    from fer_edge.training.teachers import Teachers, Teaching

    teachers = Teachers.load(Teaching((str(BUNDLED_MODEL),), 0.25, 1.0), list(LABELS), 48)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (32, 48, 48)).astype(np.uint8), rng.integers(0, 7, 32)
    feed = Feed(x, y, len(LABELS), 16, seed=3, augment=Augment("strong", 0.3, 3), teachers=teachers)
    faces, targets = next(feed.batches(0))  # no class weights: no third array
    order = np.random.default_rng([3, 0]).permutation(32)[:16]
    assert faces.dtype == np.uint8 and np.abs(faces[..., 0] - x[order].astype(float)).mean() > 5.0
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=0.01)
    onehot = np.eye(len(LABELS))[y[order]]
    np.testing.assert_allclose(targets, 0.75 * onehot + 0.25 * teachers.score(faces), atol=1e-5)


def _student(fer_csv: Path, out: Path, teacher: Path, *extra: str) -> dict[str, object]:
    args = ("--epochs", "3", "--teacher", str(teacher), "--distill-weight", "1", "--distill-temperature", "1")
    assert train_cli("seed-004-m1", fer_csv, out, *args, *extra) == 0
    return json.loads((out / "report.json").read_text())


def test_a_student_of_an_always_happy_teacher_calls_faces_happy(
    fer_csv: Path, happy_teacher: Path, tmp_path: Path
) -> None:
    report = _student(fer_csv, tmp_path / "student", happy_teacher, "--augment", "strong")
    predicted = np.asarray(report["confusion"]).sum(axis=0)
    assert predicted[HAPPY] >= 0.9 * predicted.sum()
    recorded = json.loads((tmp_path / "student" / "model.json").read_text())["training"]["distillation"]
    assert recorded["teachers"][0]["model"] == f"{happy_teacher.parent.name}/happy.keras"
    assert len(recorded["teachers"][0]["sha256"]) == 12
    assert (recorded["weight"], recorded["temperature"], recorded["scored"]) == (1.0, 1.0, "in graph")


def test_a_tflite_teacher_teaches_through_the_cli(fer_csv: Path, int8_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "student"
    extra = ("--epochs", "1", "--teacher", str(int8_model), "--augment", "basic", "--limit", "128")
    assert train_cli("seed-004-m1", fer_csv, out, *extra) == 0
    recorded = json.loads((out / "model.json").read_text())["training"]["distillation"]
    assert recorded["scored"] == "in feed" and recorded["teachers"][0]["model"].endswith(int8_model.name)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--distill-weight", "0.5"], 2),  # no teacher to take it from
        (["--teacher", "{teacher}", "--distill-weight", "0"], 2),
        (["--teacher", "{teacher}", "--distill-temperature", "-1"], 2),
        (["--teacher", "missing.keras"], 66),
        (["--teacher", "teacher.onnx"], 2),
        (["--teacher", "{teacher}", "--drop-class", "disgust"], 65),  # 7-class teacher, 6-class run
    ],
)
def test_bad_distillation_settings_write_nothing(
    fer_csv: Path, happy_teacher: Path, tmp_path: Path, extra: list[str], code: int
) -> None:
    args = [a.format(teacher=happy_teacher) for a in extra]
    assert train_cli("seed-004-m1", fer_csv, tmp_path / "run", "--epochs", "1", *args) == code
    assert not (tmp_path / "run").exists()
