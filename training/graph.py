"""The graph a run trains: faces in, augmented on the accelerator, student (and teachers) out.

The student is built and saved on its own (``model.keras`` holds no augmenter and no teacher);
training wraps it. With ``.keras`` teachers the graph puts the student's probabilities and the
teachers' mean, for the SAME augmented face, side by side, and :class:`DistillationLoss` mixes the
teachers' share into the target.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from fer_edge.training.augment import Augment
from fer_edge.training.teachers import soften


class DistillationLoss(keras.losses.Loss):
    """Cross-entropy of the student (first ``classes`` columns of ``y_pred``) against
    ``(1 - w) * y_true + w * teacher`` (the remaining columns)."""

    def __init__(self, weight: float, classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight, self.classes = weight, classes

    def call(self, y_true: Any, y_pred: Any) -> Any:
        student, teacher = y_pred[:, : self.classes], y_pred[:, self.classes :]
        target = (1.0 - self.weight) * y_true + self.weight * teacher
        return keras.losses.categorical_crossentropy(target, student)


def student_accuracy(classes: int) -> keras.metrics.Metric:
    """Training accuracy of the student's columns against the target's top class."""

    def accuracy(y_true: Any, y_pred: Any) -> Any:
        hit = ops.argmax(y_true, axis=-1) == ops.argmax(y_pred[:, :classes], axis=-1)
        return ops.cast(hit, "float32")

    return keras.metrics.MeanMetricWrapper(accuracy, name="accuracy")


def training_graph(
    student: keras.Model,
    augment: Augment | None,
    teachers: list[keras.Model],
    weight: float,
    temperature: float,
) -> tuple[keras.Model, keras.losses.Loss]:
    """The graph ``fit`` trains and its loss. ``augment`` is None when the feed augments."""
    classes = int(student.output.shape[-1])
    inputs = keras.Input(tuple(student.input.shape[1:]), dtype="uint8", name="face")  # as the feed gives them
    pixels = ops.cast(inputs, "float32")
    seen = augment(pixels) if augment is not None else pixels
    if not teachers:
        return keras.Model(inputs, student(seen), name="training"), keras.losses.CategoricalCrossentropy()
    taught = [t(seen, training=False) for t in teachers]
    mean = taught[0] if len(taught) == 1 else layers.Average(name="mean_teacher")(taught)
    mean = ops.stop_gradient(soften(ops.cast(mean, "float32"), temperature))
    both = layers.Concatenate(name="student_teacher")([student(seen), mean])
    return keras.Model(inputs, both, name="distillation"), DistillationLoss(weight, classes)
