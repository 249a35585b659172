"""Soft targets from a trained teacher, for ``fer-edge train --teacher``.

FER2013's labels are noisy (about one face in ten is arguably mislabelled) and its classes
overlap (fear vs sad, angry vs disgust). A trained model's probabilities say how much of each
emotion a face shows; training a student on a mix of the hard label and those probabilities
spends its small capacity on what the faces share instead of memorising the noise. The teacher
can be an ensemble of models the size of the student ("born-again" distillation): the student
learns the ensemble's answers at one model's cost.

The teacher scores each training face once, clean and mirrored, before training starts. The
student then sees the augmented face with the clean face's target, so the band, tilt and dim
light it learns to ignore are scored as the teacher saw the face without them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fer_edge.errors import DataError, MissingInputError, UsageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Distillation:
    """How much of the target comes from the teacher, and how far its probabilities are softened."""

    teacher: str
    weight: float  # defaults live in ``TrainConfig``, the one place a run's settings default
    temperature: float

    def check(self) -> None:
        """Refuse settings that cannot mean anything before any data is read."""
        if not 0.0 < self.weight <= 1.0:
            raise UsageError(f"--distill-weight {self.weight}: expected a share above 0, at most 1")
        if not self.temperature > 0.0:
            raise UsageError(f"--distill-temperature {self.temperature}: expected a positive number")
        teacher = Path(self.teacher)
        if teacher.suffix not in (".keras", ".tflite"):
            raise UsageError(f"--teacher {teacher}: expected a .keras or .tflite model")
        if not teacher.is_file():
            raise MissingInputError(f"{teacher}: no such teacher model")

    def record(self) -> dict[str, object]:
        """What the model's metadata keeps of it: enough to say where its targets came from."""
        teacher = Path(self.teacher)
        return {
            "teacher": f"{teacher.parent.name}/{teacher.name}",
            "weight": self.weight,
            "temperature": self.temperature,
        }


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)``: the teacher's softmax at temperature T, from its probabilities."""
    logits = np.log(np.clip(probabilities.astype(np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def teacher_probabilities(path: str, images: np.ndarray, classes: list[str]) -> np.ndarray:
    """The teacher's mean softmax over each face and its mirror image (N x classes).

    Any model ``fer-edge evaluate`` reads can teach (``.keras``, or a ``.tflite`` such as the
    bundled int8 model), scored by the same code and flip averaging as ``--tta flip``.
    """
    from fer_edge.training.evaluate import load_classifier, predict_proba

    teacher = load_classifier(path)
    size = teacher.metadata.input_spec().size
    if list(teacher.metadata.labels) != list(classes) or size != images.shape[1]:
        raise DataError(
            f"{path}: the teacher knows {', '.join(teacher.metadata.labels)} at {size}x{size}; "
            f"this run trains {', '.join(classes)} at {images.shape[1]}x{images.shape[2]}"
        )
    return predict_proba(teacher, images, tta="flip").astype(np.float32)


def distilled_targets(
    distillation: Distillation, images: np.ndarray, labels: np.ndarray, classes: list[str]
) -> np.ndarray:
    """``(1 - w) * one_hot(label) + w * softened teacher``: each row still sums to one."""
    probabilities = teacher_probabilities(distillation.teacher, images, classes)
    agreement = float((probabilities.argmax(axis=1) == labels).mean())
    logger.info(
        "teacher %s agrees with %.1f%% of the training labels",
        Path(distillation.teacher).name,
        100 * agreement,
    )
    onehot = np.eye(len(classes), dtype=np.float32)[labels]
    soft = soften(probabilities, distillation.temperature)
    return (1.0 - distillation.weight) * onehot + distillation.weight * soft
