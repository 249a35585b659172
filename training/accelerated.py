"""``fer-edge teach`` and ``fer-edge distill``: long runs on any Keras backend, made for GPU boxes.

``fer-edge train`` feeds TensorFlow's ``tf.data``; GPU boxes often carry JAX or PyTorch and no
TensorFlow. These commands keep the faces in NumPy and augment inside the model
(``neutral_augment``), so ``KERAS_BACKEND=jax fer-edge distill ...`` runs wherever Keras does.

* ``teach`` trains the ``vgg-teacher`` on the labels: far too slow for a camera box, it exists to
  teach.
* ``distill`` trains an ``edge`` student against ``(1-w)*label + w*teacher``, where the teacher
  (the mean of all ``--teacher`` models) scores, at every step, the SAME augmented face the
  student sees ("consistent" teaching), for a long schedule ("patient" teaching): Beyer et al.,
  "Knowledge distillation: a good teacher is patient and consistent", CVPR 2022. Against
  ``fer-edge train --teacher``, whose teacher scores each clean face once, this lifted one
  ``edge`` model from 64.7% to 67.5% on PublicTest.

The learning rate warms up linearly, then decays along a cosine over ``--epochs`` or over a
wall-clock ``--time-budget`` (a GPU lent for a fixed time). Every epoch is scored on the selection
split and the best weights are written (atomically) as they appear, so an interrupted run leaves
its best model behind.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from fer_edge.atomic import atomic_path, write_json
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.labels import LABELS
from fer_edge.metadata import load_metadata, save_metadata
from fer_edge.training.archs import TEACHER_ARCH, build_edge, build_model, count_macs
from fer_edge.training.data import Split
from fer_edge.training.neutral_augment import StrongAugment
from fer_edge.training.train import DEFAULT_CACHE, _finish, load_training_faces

logger = logging.getLogger(__name__)


@dataclass
class AcceleratedConfig:
    """One ``teach`` run (no ``teachers``) or ``distill`` run; the defaults are the shipped model's."""

    data: str
    out: str
    teachers: list[str] = field(default_factory=list)
    width: int = 32
    epochs: int | None = None
    time_budget: float | None = None
    learning_rate: float = 0.05
    batch_size: int = 128
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    eye_band_rate: float = 0.3
    warmup: int = 5
    teacher_weight: float = 0.5
    seed: int = 1
    limit: int | None = None
    cache_dir: str | None = str(DEFAULT_CACHE)
    size: int = 48

    @property
    def arch(self) -> str:
        return "edge" if self.teachers else TEACHER_ARCH

    def check(self) -> None:
        """Refuse inconsistent settings before any data is read or anything is written."""
        if (self.epochs is None) == (self.time_budget is None):
            raise UsageError("give --epochs or --time-budget (exactly one)")
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"--epochs {self.epochs}: expected 1 or more")
        if self.time_budget is not None and self.time_budget <= 0:
            raise UsageError(f"--time-budget {self.time_budget}: expected seconds above 0")
        if not 0.0 < self.teacher_weight <= 1.0:
            raise UsageError(f"--teacher-weight {self.teacher_weight}: expected a share in (0, 1]")
        if not 0.0 <= self.eye_band_rate <= 1.0:
            raise UsageError(f"--eye-band-rate {self.eye_band_rate}: expected a share between 0 and 1")
        if self.width < 8 or self.width % 2:
            raise UsageError(f"--width {self.width}: expected an even number of 8 or more")
        for teacher in self.teachers:
            if Path(teacher).suffix != ".keras":
                raise UsageError(f"--teacher {teacher}: expected a .keras model (it runs inside training)")
            if not Path(teacher).is_file():
                raise MissingInputError(f"--teacher {teacher}: no such model")


class _Schedule(keras.callbacks.Callback):
    """Warm-up then cosine over epochs or wall-clock; scores each epoch; keeps the best weights."""

    def __init__(
        self,
        cfg: AcceleratedConfig,
        scored: keras.Model,
        selection: tuple[np.ndarray, np.ndarray],
        on_best: Callable[[float, int], None],
    ) -> None:
        super().__init__()
        self.cfg, self.scored, self.on_best = cfg, scored, on_best
        self.x_sel, self.y_sel = selection
        self.start = self.epoch_start = time.monotonic()
        self.longest_epoch = 0.0
        self.best = (-math.inf, 0)
        self.history: dict[str, list[float]] = {}

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.start = time.monotonic()  # the budget starts with training, not with data loading

    def _progress(self, epoch: int, now: float) -> float:
        if self.cfg.time_budget is not None:
            return min(1.0, (now - self.start) / self.cfg.time_budget)
        return epoch / max(1, self.cfg.epochs or 1)

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch_start = time.monotonic()
        warm = min(1.0, (epoch + 1) / max(1, self.cfg.warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * self._progress(epoch, self.epoch_start)))
        self.model.optimizer.learning_rate = self.cfg.learning_rate * warm * cosine

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        if epoch > 0:  # the first epoch includes compiling
            self.longest_epoch = max(self.longest_epoch, now - self.epoch_start)
        p = self.scored.predict(self.x_sel, batch_size=512, verbose=0)
        score = float(np.mean(np.argmax(p, axis=1) == self.y_sel))
        row = {
            "loss": float((logs or {}).get("loss", math.nan)),
            "val_accuracy": score,
            "lr": float(ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": round(now - self.epoch_start, 2),
        }
        for key, value in row.items():
            self.history.setdefault(key, []).append(value)
        logger.info("epoch %d: %s", epoch + 1, json.dumps(row))
        if score > self.best[0]:
            self.best = (score, epoch + 1)
            self.on_best(score, epoch + 1)
        budget = self.cfg.time_budget
        if budget is not None and now - self.start + self.longest_epoch > budget:
            self.model.stop_training = True


class _Distill(keras.losses.Loss):
    """Cross-entropy of the student (first half of ``y_pred``) against (1-w)*label + w*teacher."""

    def __init__(self, weight: float, classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight, self.classes = weight, classes

    def call(self, y_true: Any, y_pred: Any) -> Any:
        student, teacher = y_pred[:, : self.classes], y_pred[:, self.classes :]
        target = (1.0 - self.weight) * y_true + self.weight * teacher
        return keras.losses.categorical_crossentropy(target, student)


def _load_teachers(paths: list[str], size: int) -> tuple[list[keras.Model], list[dict[str, Any]]]:
    teachers, records = [], []
    for index, path in enumerate(paths):
        meta = load_metadata(path, required=False)
        if list(meta.labels) != list(LABELS):
            raise DataError(f"--teacher {path}: its labels {meta.labels} are not the 7 FER labels")
        teacher = keras.models.load_model(path, compile=False)
        try:
            shape = tuple(teacher(np.zeros((1, size, size, 1), np.float32), training=False).shape)
        except ValueError as e:
            raise DataError(f"--teacher {path}: does not take {size}x{size} gray faces ({e})") from None
        if shape != (1, len(LABELS)):
            raise DataError(f"--teacher {path}: outputs {shape[1:]}, not {len(LABELS)} class probabilities")
        teacher.trainable = False
        teacher.name = f"teacher_{index}"  # one graph holds them all
        teachers.append(teacher)
        records.append(
            {
                "model": f"{Path(path).parent.name}/{Path(path).name}",
                "selection_accuracy": meta.metrics.get("selection_accuracy"),
            }
        )
    return teachers, records


def _training_graph(cfg: AcceleratedConfig, model: keras.Model, teachers: list[keras.Model]) -> keras.Model:
    """Faces in, augmented on the device; with teachers, student and mean-teacher outputs side by side."""
    inputs = keras.Input((cfg.size, cfg.size, 1), name="face")
    seen = StrongAugment(cfg.eye_band_rate, cfg.seed, name="augment")(inputs)
    if not teachers:
        return keras.Model(inputs, model(seen), name="taught")
    taught = [t(seen, training=False) for t in teachers]
    mean = taught[0] if len(taught) == 1 else layers.Average(name="mean_teacher")(taught)
    mean = ops.stop_gradient(ops.cast(mean, "float32"))
    return keras.Model(
        inputs, layers.Concatenate(name="student_teacher")([model(seen), mean]), name="distilled"
    )


def run_accelerated(cfg: AcceleratedConfig) -> dict[str, Any]:
    """Train a teacher (no ``cfg.teachers``) or a distilled ``edge`` student; return its report."""
    cfg.check()
    faces = load_training_faces(cfg.data, cfg.size, cfg.cache_dir, cfg.seed, list(LABELS), cfg.limit)
    x_train, y_train, x_sel, y_sel = faces.x_train, faces.y_train, faces.x_sel, faces.y_sel
    teachers, teacher_records = _load_teachers(cfg.teachers, cfg.size)

    keras.utils.set_random_seed(cfg.seed)
    if teachers:
        model = build_edge(len(LABELS), cfg.size, width=cfg.width)
    else:
        model = build_model(TEACHER_ARCH, len(LABELS), cfg.size)
    graph = _training_graph(cfg, model, teachers)
    graph.compile(
        optimizer=keras.optimizers.SGD(
            cfg.learning_rate, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay or None
        ),
        loss=(
            _Distill(cfg.teacher_weight, len(LABELS))
            if teachers
            else keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        ),
    )
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)  # only once data and teachers have loaded
    recipe = {
        k: v for k, v in asdict(cfg).items() if k not in ("data", "out", "teachers", "cache_dir", "limit")
    }
    meta = faces.metadata(
        cfg.data,
        cfg.arch,
        cfg.seed,
        trainer=f"accelerated ({keras.backend.backend()} backend)",
        recipe=recipe,
        **({"teachers": teacher_records} if teachers else {}),
        params=int(model.count_params()),
        macs=count_macs(model),
    )

    def keep_best(score: float, epoch: int) -> None:
        with atomic_path(out / "model.keras") as tmp:
            model.save(tmp)
        meta.metrics = {"selection_accuracy": round(score, 4), "epoch": epoch}
        meta.training["epochs"] = epoch  # so far: a new best is always the latest epoch
        save_metadata(out / "model.keras", meta)

    schedule = _Schedule(cfg, model, (x_sel[..., None].astype(np.float32), y_sel), keep_best)
    logger.info(
        "%s: %d parameters, %d training faces (%s), %d selection faces (%s), %d teacher(s), %s backend",
        cfg.arch,
        model.count_params(),
        len(y_train),
        faces.train_name,
        len(y_sel),
        faces.sel_name,
        len(teachers),
        keras.backend.backend(),
    )
    onehot = np.eye(len(LABELS), dtype=np.float32)[y_train]
    graph.fit(
        x_train[..., None].astype(np.float32),
        onehot,
        batch_size=cfg.batch_size,
        epochs=cfg.epochs or 1_000_000,  # a time budget stops the run itself
        shuffle=True,
        callbacks=[schedule],
        verbose=0,
    )
    meta.training["epochs"] = len(schedule.history["loss"])
    save_metadata(out / "model.keras", meta)
    write_json(out / "history.json", schedule.history)
    selection = Split(x_sel, y_sel)  # all seven classes: labels index LABELS already
    return _finish(out, cfg.data, faces.sel_name, selection, schedule.history)
