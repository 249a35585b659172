"""``fer-edge train --teacher``: the student learns the teacher's answers, and bad settings are refused."""

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
    from fer_edge.training.distill import soften

    p = np.array([[0.7, 0.2, 0.1], [0.05, 0.05, 0.9]], dtype=np.float32)
    np.testing.assert_allclose(soften(p, 1.0), p, atol=1e-6)
    warm = soften(p, 3.0)
    np.testing.assert_allclose(warm.sum(axis=1), 1.0, atol=1e-6)
    assert (warm.argmax(axis=1) == p.argmax(axis=1)).all()
    assert (warm.max(axis=1) < p.max(axis=1)).all()


def test_targets_mix_the_label_and_the_teacher(happy_teacher: Path) -> None:
    from fer_edge.training.distill import Distillation, distilled_targets

    faces = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    labels = np.array([0, 2, HAPPY, 6])
    targets = distilled_targets(Distillation(str(happy_teacher), 0.25, 1.0), faces, labels, list(LABELS))
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(targets[np.arange(4), labels], [0.75, 0.75, 1.0, 0.75], atol=1e-3)
    np.testing.assert_allclose(targets[[0, 1, 3], HAPPY], 0.25, atol=1e-3)


def test_a_tflite_teacher_scores_a_face_and_its_mirror_alike() -> None:
    """The bundled int8 model can teach; flip averaging makes its targets blind to mirroring."""
    from fer_edge.cli import BUNDLED_MODEL
    from fer_edge.training.distill import teacher_probabilities

    faces = np.random.default_rng(1).integers(0, 256, (6, 48, 48)).astype(np.uint8)
    plain = teacher_probabilities(str(BUNDLED_MODEL), faces, list(LABELS))
    mirrored = teacher_probabilities(str(BUNDLED_MODEL), faces[:, :, ::-1].copy(), list(LABELS))
    assert plain.shape == (6, len(LABELS))
    np.testing.assert_allclose(plain.sum(axis=1), 1.0, atol=0.02)  # int8 softmax steps of 1/256
    np.testing.assert_allclose(plain, mirrored, atol=1e-6)


def test_a_student_of_an_always_happy_teacher_calls_faces_happy(
    fer_csv: Path, happy_teacher: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    code = train_cli(
        "seed-004-m1",
        fer_csv,
        out,
        "--epochs",
        "3",
        "--teacher",
        str(happy_teacher),
        "--distill-weight",
        "1",
        "--distill-temperature",
        "1",
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    predicted = np.asarray(report["confusion"]).sum(axis=0)
    assert predicted[HAPPY] >= 0.9 * predicted.sum()
    recorded = json.loads((out / "model.json").read_text())["training"]["distillation"]
    teacher = f"{happy_teacher.parent.name}/happy.keras"
    assert recorded == {"teacher": teacher, "weight": 1.0, "temperature": 1.0}


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
