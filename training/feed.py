"""The batches a run trains on: faces, targets and per-face weights, as NumPy, for any backend.

Epoch ``e``'s order is a permutation drawn from ``(seed, e)``, so the stream depends only on the
seed and the epoch: a run resumed at epoch ``k`` sees exactly the batches an uninterrupted run saw
from epoch ``k`` on. The feed is a plain generator of NumPy arrays, which Keras takes on every
backend (TensorFlow wraps it in ``tf.data`` with prefetching; JAX and PyTorch iterate it).

When a teacher cannot run inside the training graph (a ``.tflite`` model), the feed augments the
batch itself, with the same :class:`~fer_edge.training.augment.Augment` layer reseeded from the
global step, and mixes that teacher's scores of those augmented faces into the targets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fer_edge.training.augment import Augment
from fer_edge.training.teachers import Teachers


def balanced_class_weights(y: np.ndarray, num_classes: int, power: float = 1.0) -> np.ndarray:
    """(n / (k * count)) ** power per class: rare classes (disgust) weigh more; a power under 1
    softens the weights (0.5: their square roots)."""
    return soft_class_weights(np.eye(num_classes)[y], power)


def soft_class_weights(targets: np.ndarray, power: float = 1.0) -> np.ndarray:
    """:func:`balanced_class_weights` where each face's label is a distribution: a class's count
    is its share of the target mass."""
    counts = targets.sum(axis=0).astype(np.float64)
    n, k = len(targets), targets.shape[1]
    return np.where(counts > 0, (n / (k * np.maximum(counts, 1e-9))) ** power, 0.0).astype(np.float32)


@dataclass
class Feed:
    """Training faces (uint8, N x S x S), their labels, and how each batch is made."""

    x: np.ndarray
    y: np.ndarray
    num_classes: int
    batch_size: int
    seed: int
    label_smoothing: float = 0.0
    class_weights: bool = False
    class_weight_power: float = 1.0
    soft_targets: np.ndarray | None = None  # N x classes shares (--labels votes), else one-hot of y
    augment: Augment | None = None  # set only when augmenting here, outside the graph
    teachers: Teachers | None = None  # set only when they score here, outside the graph

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def targets(self, labels: np.ndarray) -> np.ndarray:
        """One-hot labels, smoothed towards the uniform distribution by ``label_smoothing``."""
        onehot = np.eye(self.num_classes, dtype=np.float32)[labels]
        return onehot * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes

    def batches(self, first_epoch: int) -> Iterator[tuple[np.ndarray, ...]]:
        """``(faces, targets)``, or ``(faces, targets, weights)`` with class weights, for every step
        from epoch ``first_epoch`` on, without end (``fit``'s ``epochs`` or a time budget ends
        the run). Faces are uint8 (N x S x S x 1): a quarter of the bytes of float32, and the
        graph's first op casts them."""
        face_weights = self._face_weights() if self.class_weights else None
        target_of = self.targets(np.arange(self.num_classes))  # one row per class, made once
        epoch = first_epoch
        while True:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
            for step in range(self.steps_per_epoch):
                pick = order[step * self.batch_size : (step + 1) * self.batch_size]
                faces = self.x[pick][..., np.newaxis]
                targets = target_of[self.y[pick]] if self.soft_targets is None else self._soft(pick)
                if self.augment is not None:
                    faces = self._augmented(faces, epoch * self.steps_per_epoch + step)
                if self.teachers is not None:
                    w = self.teachers.teaching.weight
                    targets = (1.0 - w) * targets + w * self.teachers.score(faces)
                if face_weights is None:
                    yield faces, targets
                else:
                    yield faces, targets, face_weights[pick]
            epoch += 1

    def _soft(self, pick: np.ndarray) -> np.ndarray:
        assert self.soft_targets is not None
        shares = self.soft_targets[pick]
        return shares * (1.0 - self.label_smoothing) + self.label_smoothing / self.num_classes

    def _face_weights(self) -> np.ndarray:
        """Each face's class weight: its class's, or the weights of its target's classes mixed."""
        if self.soft_targets is None:
            return balanced_class_weights(self.y, self.num_classes, self.class_weight_power)[self.y]
        per_class = soft_class_weights(self.soft_targets, self.class_weight_power)
        return (self.soft_targets @ per_class).astype(np.float32)

    def _augmented(self, faces: np.ndarray, global_step: int) -> np.ndarray:
        """The batch augmented as the graph would, rounded to the uint8 faces a ``.tflite``
        teacher reads: student and teacher see the very same pixels."""
        from keras import ops

        assert self.augment is not None
        self.augment.reseed(global_step)
        augmented = ops.convert_to_numpy(self.augment(faces.astype(np.float32), training=True))
        return np.clip(np.rint(augmented), 0, 255).astype(np.uint8)
