"""Teachers: trained models whose probabilities a student learns from alongside the labels.

FER2013's labels are noisy (about one face in ten is arguably mislabelled) and its classes
overlap (fear vs sad, angry vs disgust). A trained model's probabilities say how much of each
emotion a face shows; a student trained on ``(1 - w) * label + w * teacher`` spends its small
capacity on what the faces share instead of memorising the noise. Several teachers teach by
their mean.

Teachers always score the augmented face the student sees, at every step ("consistent"
teaching, Beyer et al., "Knowledge distillation: a good teacher is patient and consistent",
CVPR 2022): scoring each clean face once and pairing that with an augmented face teaches the
student that a face with a band over its eyes looks as the teacher saw it without one. It took
one ``edge`` model from 64.7% to 67.5% on PublicTest. ``.keras`` teachers run inside the
training graph, on the accelerator; a ``.tflite`` teacher (the bundled int8 model, say) runs on
its interpreter in the batch feed, on the same augmented faces.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.metadata import content_hash

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Teaching:
    """Who teaches, how much of each target is theirs, and how far their probabilities soften."""

    paths: tuple[str, ...]
    weight: float  # defaults live in ``TrainConfig``, the one place a run's settings default
    temperature: float

    def check(self) -> None:
        """Refuse settings that cannot mean anything before any data is read."""
        if not 0.0 < self.weight <= 1.0:
            raise UsageError(f"--distill-weight {self.weight}: expected a share above 0, at most 1")
        if not self.temperature > 0.0:
            raise UsageError(f"--distill-temperature {self.temperature}: expected a positive number")
        for path in map(Path, self.paths):
            if path.suffix not in (".keras", ".tflite"):
                raise UsageError(f"--teacher {path}: expected a .keras or .tflite model")
            if not path.is_file():
                raise MissingInputError(f"--teacher {path}: no such model")

    @property
    def in_graph(self) -> bool:
        """Whether every teacher can run inside the training graph (``.keras`` ones can)."""
        return all(Path(p).suffix == ".keras" for p in self.paths)


def soften(probabilities: Any, temperature: float) -> Any:
    """``softmax(log p / T)``: a teacher's softmax at temperature T, from its probabilities.

    Backend ops, so the same function softens inside a training graph and in the feed."""
    from keras import ops

    if temperature == 1.0:
        return probabilities
    logits = ops.log(ops.clip(probabilities, 1e-12, 1.0)) / temperature
    return ops.softmax(logits, axis=-1)


@dataclass
class Teachers:
    """Loaded teachers, checked against the run's classes and face size."""

    teaching: Teaching
    classifiers: list[Any] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, teaching: Teaching, classes: list[str], size: int) -> Teachers:
        """Open every teacher; a teacher of other classes or another face size is a data error."""
        from fer_edge.training.evaluate import load_classifier

        loaded = cls(teaching)
        for path in map(Path, teaching.paths):
            teacher = load_classifier(path)
            labels, spec = list(teacher.metadata.labels), teacher.metadata.input_spec()
            if labels != list(classes) or spec.size != size:
                raise DataError(
                    f"--teacher {path}: knows {', '.join(labels)} at {spec.size}x{spec.size}; "
                    f"this run trains {', '.join(classes)} at {size}x{size}"
                )
            try:
                probs = np.asarray(teacher.predict(np.zeros((1, size, size, 1), np.float32)))
            except ValueError as e:
                raise DataError(f"--teacher {path}: does not take {size}x{size} gray faces ({e})") from None
            if probs.shape != (1, len(classes)):
                raise DataError(
                    f"--teacher {path}: outputs {probs.shape[1:]}, not {len(classes)} probabilities"
                )
            loaded.classifiers.append(teacher)
            loaded.records.append(
                {
                    "model": f"{path.parent.name}/{path.name}",
                    "sha256": content_hash(path),
                    "selection_accuracy": teacher.metadata.metrics.get("selection_accuracy"),
                }
            )
        return loaded

    def graph_models(self) -> list[Any]:
        """The ``.keras`` teachers as frozen layers for one training graph."""
        models = []
        for index, classifier in enumerate(self.classifiers):
            model = classifier.model
            model.trainable = False
            model.name = f"teacher_{index}"  # one graph holds them all
            models.append(model)
        return models

    def score(self, faces: np.ndarray) -> np.ndarray:
        """Mean softened probabilities for uint8 faces (N x S x S x 1), outside a graph."""
        from keras import ops

        from fer_edge.training.evaluate import predict_proba

        crops = np.ascontiguousarray(faces[..., 0])
        mean = np.mean([predict_proba(c, crops) for c in self.classifiers], axis=0).astype(np.float32)
        return np.asarray(
            ops.convert_to_numpy(soften(ops.convert_to_tensor(mean), self.teaching.temperature))
        )

    def record(self) -> dict[str, Any]:
        """What the model's metadata keeps: enough to say where its targets came from."""
        return {
            "teachers": self.records,
            "weight": self.teaching.weight,
            "temperature": self.teaching.temperature,
            "scored": "in graph" if self.teaching.in_graph else "in feed",
        }
