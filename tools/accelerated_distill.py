"""Patient, consistent distillation on an accelerator: a VGG-style teacher, then ``edge`` students.

The CPU trainer (``fer-edge train``) feeds TensorFlow's ``tf.data`` and cannot run where there is
no TensorFlow; this script is plain Keras 3 (``keras.ops``, ``keras.random``), so it runs on the
JAX backend of a GPU box. Augmentation happens on the accelerator inside the model, with the same
ranges as ``fer_edge.training.augment``: one affine warp per face, contrast, low light, a band over
the eyes and random erasing.

Two phases:

* ``teacher``: a VGG-style net (about 0.6 GMACs) trained with a cosine schedule that fits a
  wall-clock budget. It is far too slow for a camera box; it exists to teach.
* ``student``: an ``edge`` model trained to match the (averaged) teachers on the SAME augmented,
  optionally mixed-up face the student sees ("consistent teaching"), for as long as the budget
  allows ("patient teaching"): Beyer et al., "Knowledge distillation: a good teacher is patient
  and consistent", CVPR 2022.

Data is a directory holding ``images.xz`` (uint8 faces, Training then PublicTest, 48x48, no
header) and ``labels.npz`` (``train``, ``test``). Selection uses PublicTest only.
"""

from __future__ import annotations

import argparse
import json
import lzma
import math
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from training.archs import build_edge
from training.robustness import BAND_VALUE, EYE_BAND, TILT_DEGREES

NUM_CLASSES = 7
SIZE = 48


def load_faces(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    labels = np.load(data / "labels.npz")
    y_train, y_test = labels["train"].astype(np.int64), labels["test"].astype(np.int64)
    images = np.frombuffer(lzma.decompress((data / "images.xz").read_bytes()), np.uint8)
    images = images.reshape(-1, SIZE, SIZE, 1).astype(np.float32)
    if len(images) != len(y_train) + len(y_test):
        raise SystemExit(f"{data}: {len(images)} faces for {len(y_train) + len(y_test)} labels")
    return images[: len(y_train)], y_train, images[len(y_train) :], y_test


class Augment(layers.Layer):
    """The ``strong`` augmentation of ``fer_edge.training.augment``, in backend-neutral ops.

    With ``mixup`` each face is blended with its neighbour in the batch (weight ~ Beta(0.4, 0.4)):
    only for pure distillation, where the teacher labels the blend and no hard label is needed.
    """

    def __init__(self, eye_band_rate: float, mixup: bool, seed: int, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)  # pixel arithmetic stays float32 under mixed precision
        self.eye_band_rate = eye_band_rate
        self.mixup = mixup
        self.generator = keras.random.SeedGenerator(seed)

    def _u(self, n: int, low: float, high: float, shape: tuple[int, ...] = (1, 1, 1)) -> Any:
        return keras.random.uniform((n, *shape), low, high, seed=self.generator)

    def _affine(self, x: Any) -> Any:
        n = ops.shape(x)[0]
        size = float(SIZE)
        degrees, zoom, shift, shear_range = TILT_DEGREES + 5.0, 0.15, 0.1, 0.1
        theta = self._u(n, -1.0, 1.0, ()) * (degrees * math.pi / 180.0)
        inv_zoom = 1.0 / self._u(n, 1.0 - zoom, 1.0 + zoom, ())
        shear = self._u(n, -shear_range, shear_range, ())
        flip = ops.where(self._u(n, 0.0, 1.0, ()) < 0.5, -1.0, 1.0)
        tx = self._u(n, -shift, shift, ()) * size
        ty = self._u(n, -shift, shift, ()) * size
        cos, sin = ops.cos(theta), ops.sin(theta)
        a0, a1 = cos * flip * inv_zoom, (cos * shear - sin) * inv_zoom
        b0, b1 = sin * flip * inv_zoom, (sin * shear + cos) * inv_zoom
        c = (size - 1.0) / 2.0
        zeros = ops.zeros_like(theta)
        transforms = ops.stack(
            [a0, a1, c + tx - a0 * c - a1 * c, b0, b1, c + ty - b0 * c - b1 * c, zeros, zeros], axis=1
        )
        return ops.image.affine_transform(x, transforms, interpolation="bilinear", fill_mode="reflect")

    def _photometric(self, x: Any) -> Any:
        n = ops.shape(x)[0]
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        contrast = self._u(n, 0.7, 1.3)
        x = ops.clip((x - mean) * contrast + mean + self._u(n, -20.0, 20.0), 0.0, 255.0)
        gain, gamma = self._u(n, 0.3, 0.9), self._u(n, 1.0, 2.2)
        dim = 255.0 * gain * ops.power(x / 255.0 + 1e-6, gamma)
        x = ops.where(self._u(n, 0.0, 1.0) < 0.25, dim, x)
        rows = ops.reshape(ops.arange(SIZE, dtype="float32") / SIZE, (1, SIZE, 1, 1))
        top = self._u(n, EYE_BAND[0] - 0.05, EYE_BAND[0] + 0.05)
        bottom = top + self._u(n, 0.10, 0.18)
        band = (rows >= top) & (rows < bottom) & (self._u(n, 0.0, 1.0) < self.eye_band_rate)
        x = ops.where(band, self._u(n, 0.0, 2.0 * BAND_VALUE), x)
        cols = ops.reshape(rows, (1, 1, SIZE, 1))
        area, aspect = self._u(n, 0.02, 0.12), self._u(n, 0.5, 2.0)
        eh, ew = ops.sqrt(area * aspect), ops.sqrt(area / aspect)
        ey = self._u(n, 0.0, 1.0) * (1 - eh)
        ex = self._u(n, 0.0, 1.0) * (1 - ew)
        erase = (rows >= ey) & (rows < ey + eh) & (cols >= ex) & (cols < ex + ew)
        erase = erase & (self._u(n, 0.0, 1.0) < 0.25)
        noise = keras.random.uniform(ops.shape(x), 0.0, 255.0, seed=self.generator)
        return ops.where(erase, noise, x)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training:
            return x
        x = self._photometric(self._affine(x))
        if self.mixup:
            n = ops.shape(x)[0]
            lam = keras.random.beta((n, 1, 1, 1), 0.4, 0.4, seed=self.generator)
            x = lam * x + (1.0 - lam) * ops.roll(x, 1, axis=0)
        return x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape


def build_teacher(seed: int) -> keras.Model:
    """VGG-style: conv blocks 64x2, 128x2, 256x3, 512x3 with BN, max-pool, dropout; GAP, dense 512."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 1), name="face")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    for stage, (filters, convs) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3))):
        for i in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"s{stage}c{i}")(x)
            x = layers.BatchNormalization(name=f"s{stage}bn{i}")(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
        x = layers.Dropout(0.1 * (stage + 1))(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(512, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="teacher")


class TimedCosine(keras.callbacks.Callback):
    """Linear warm-up, then cosine decay over a wall-clock budget; stops when the next epoch won't fit.

    Selection: every ``eval_every`` epochs the scored model is evaluated on PublicTest, and the
    best weights are kept (PublicTest is the selection split).
    """

    def __init__(
        self,
        base_lr: float,
        budget_s: float,
        warmup: int,
        scored: keras.Model,
        x_sel: np.ndarray,
        y_sel: np.ndarray,
        eval_every: int,
        log: Path,
    ) -> None:
        super().__init__()
        self.base_lr, self.budget_s, self.warmup = base_lr, budget_s, warmup
        self.scored, self.x_sel, self.y_sel, self.eval_every, self.log = scored, x_sel, y_sel, eval_every, log
        self.start = time.monotonic()
        self.epoch_start = self.start
        self.longest_epoch = 0.0
        self.best: tuple[float, int, list[np.ndarray]] | None = None
        self.history: list[dict[str, float]] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch_start = time.monotonic()
        fraction = min(1.0, (self.epoch_start - self.start) / self.budget_s)
        warm = min(1.0, (epoch + 1) / self.warmup)
        self.model.optimizer.learning_rate = self.base_lr * warm * 0.5 * (1 + math.cos(math.pi * fraction))

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        if epoch > 0:  # the first epoch includes compiling
            self.longest_epoch = max(self.longest_epoch, now - self.epoch_start)
        last = now - self.start + self.longest_epoch > self.budget_s
        row = {"epoch": epoch + 1, "s": round(now - self.epoch_start, 2), "loss": float((logs or {})["loss"])}
        row["lr"] = float(ops.convert_to_numpy(self.model.optimizer.learning_rate))
        if (epoch + 1) % self.eval_every == 0 or last:
            acc = accuracy(self.scored, self.x_sel, self.y_sel)
            row["sel_acc"] = acc
            if self.best is None or acc > self.best[0]:
                self.best = (acc, epoch + 1, self.scored.get_weights())
        self.history.append(row)
        with self.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
        if last:
            self.model.stop_training = True


def probabilities(model: keras.Model, x: np.ndarray, flip: bool = False) -> np.ndarray:
    p = model.predict(x, batch_size=512, verbose=0)
    if flip:
        p = (p + model.predict(x[:, :, ::-1], batch_size=512, verbose=0)) / 2
    return np.asarray(p, np.float64)


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray, flip: bool = False) -> float:
    return float(np.mean(probabilities(model, x, flip).argmax(1) == y))


def _optimizer(lr: float, weight_decay: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def _fit(
    model: keras.Model, x: np.ndarray, y: np.ndarray, args: argparse.Namespace, timer: TimedCosine
) -> None:
    model.fit(x, y, batch_size=args.batch_size, epochs=100000, shuffle=True, verbose=0, callbacks=[timer])


def run_teacher(args: argparse.Namespace) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = load_faces(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    teacher = build_teacher(args.seed)
    inputs = keras.Input((SIZE, SIZE, 1))
    trained = keras.Model(inputs, teacher(Augment(args.eye_band_rate, False, args.seed)(inputs)))
    trained.compile(
        optimizer=_optimizer(args.lr, args.weight_decay),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=args.label_smoothing),
    )
    timer = TimedCosine(
        args.lr, args.budget, args.warmup, teacher, x_test, y_test, args.eval_every, args.out / "log.jsonl"
    )
    _fit(trained, x_train, keras.utils.to_categorical(y_train, NUM_CLASSES), args, timer)
    assert timer.best is not None
    teacher.set_weights(timer.best[2])
    teacher.save(args.out / "teacher.keras")
    p_test = probabilities(teacher, x_test, flip=True)
    np.savez(args.out / "teacher_test.npz", p=p_test.astype(np.float32))
    return {
        "best_epoch": timer.best[1],
        "epochs": len(timer.history),
        "sel_acc": timer.best[0],
        "sel_acc_flip": float(np.mean(p_test.argmax(1) == y_test)),
    }


class Distill(keras.losses.Loss):
    """Cross-entropy of the student (first half of y_pred) against (1-w)*label + w*teacher."""

    def __init__(self, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, y_true: Any, y_pred: Any) -> Any:
        student, teacher = y_pred[:, :NUM_CLASSES], y_pred[:, NUM_CLASSES:]
        target = (1.0 - self.weight) * y_true + self.weight * teacher
        return keras.losses.categorical_crossentropy(target, student)


def run_student(args: argparse.Namespace) -> dict[str, Any]:
    x_train, y_train, x_test, y_test = load_faces(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    teachers = [keras.saving.load_model(p, compile=False) for p in args.teachers]
    for i, t in enumerate(teachers):
        t.trainable = False
        t.name = f"teacher_{i}"  # one graph holds them all
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(args.seed)
    student = build_edge(NUM_CLASSES, SIZE, width=args.width)
    inputs = keras.Input((SIZE, SIZE, 1))
    seen = Augment(args.eye_band_rate, args.mixup, args.seed)(inputs)
    taught = [t(seen, training=False) for t in teachers]
    teacher_p = taught[0] if len(taught) == 1 else layers.Average()(taught)
    teacher_p = ops.stop_gradient(ops.cast(teacher_p, "float32"))
    combined = keras.Model(inputs, layers.Concatenate()([student(seen), teacher_p]))
    combined.compile(optimizer=_optimizer(args.lr, args.weight_decay), loss=Distill(args.teacher_weight))
    timer = TimedCosine(
        args.lr, args.budget, args.warmup, student, x_test, y_test, args.eval_every, args.out / "log.jsonl"
    )
    _fit(combined, x_train, keras.utils.to_categorical(y_train, NUM_CLASSES), args, timer)
    assert timer.best is not None
    student.set_weights(timer.best[2])
    student.save(args.out / "model.keras")
    return {
        "best_epoch": timer.best[1],
        "epochs": len(timer.history),
        "sel_acc": timer.best[0],
        "sel_acc_flip": accuracy(student, x_test, y_test, flip=True),
        "last_sel_acc": timer.history[-1].get("sel_acc"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", choices=("teacher", "student"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--budget", type=float, required=True, help="training seconds, wall clock")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--eye-band-rate", type=float, default=0.3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="train on the first N faces (smoke runs)")
    parser.add_argument("--teachers", type=Path, nargs="*", default=[])
    parser.add_argument("--teacher-weight", type=float, default=1.0)
    parser.add_argument("--mixup", action="store_true")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--mixed-precision", action="store_true", help="teacher in bfloat16")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = run_teacher(args) if args.phase == "teacher" else run_student(args)
    result.update(phase=args.phase, seconds=round(time.monotonic() - started, 1), args=vars(args))
    (args.out / "result.json").write_text(json.dumps(result, indent=1, default=str))
    print("RESULT", json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
