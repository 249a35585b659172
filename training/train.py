"""``fer-edge train``: fit an architecture on a dataset, keep the best epoch on the selection split.

Outputs in ``--out``: ``model.keras`` (+ ``model.json``), ``history.json``, ``curves.png``,
``confusion.png``, ``report.json``, ``tensorboard/``; ``checkpoints/`` holds the last epoch and the
run state so ``--resume`` continues an interrupted run where it stopped.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.labels import LABELS
from fer_edge.metadata import ModelMetadata, current_command, save_metadata
from fer_edge.training.archs import Recipe, count_macs, get_arch
from fer_edge.training.data import Dataset, Split, load_dataset, select_classes
from fer_edge.training.distill import Distillation, distilled_targets

logger = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-edge"


@dataclass
class TrainConfig:
    """One training run; ``None`` fields take the architecture's recipe."""

    arch: str
    data: str
    out: str
    epochs: int | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    learning_rate: float | None = None
    schedule: str | None = None
    patience: int | None = None
    label_smoothing: float | None = None
    augment: str | None = None
    class_weights: bool | None = None
    weight_decay: float | None = None
    eye_band_rate: float | None = None
    seed: int = 1234
    resume: bool = False
    cache_dir: str | None = str(DEFAULT_CACHE)
    drop_classes: list[str] = field(default_factory=list)
    limit: int | None = None
    backbone_weights: str | None = None
    init_from: str | None = None
    teacher: str | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    size: int = 48

    def distillation(self) -> Distillation | None:
        """The teacher's part in the targets, when this run learns from one."""
        if self.teacher is None:
            return None
        return Distillation(self.teacher, self.distill_weight, self.distill_temperature)

    def recipe(self) -> Recipe:
        """The architecture's recipe with this run's overrides applied."""
        base = asdict(get_arch(self.arch).recipe)
        for key in base:
            value = getattr(self, key, None)
            if value is not None:
                base[key] = value
        return Recipe(**base)


def _class_list(drop: list[str]) -> list[str]:
    unknown = [d for d in drop if d not in LABELS]
    if unknown:
        raise UsageError(f"--drop-class {unknown[0]}: unknown class; expected one of {', '.join(LABELS)}")
    return [c for c in LABELS if c not in drop]


def _splits(dataset: Dataset, seed: int) -> tuple[str, Split, str, Split]:
    """Training and selection splits; a split-less folder gives 10% (seeded) for selection."""
    train_key = next((k for k in dataset.splits if k.lower() in ("training", "train")), None)
    selection = dataset.selection()
    if train_key is not None and selection is not None:
        return train_key, dataset.splits[train_key], selection[0], selection[1]
    if len(dataset.splits) == 1:
        only = next(iter(dataset.splits.values()))
        order = np.random.default_rng(seed).permutation(len(only))
        cut = max(1, len(only) // 10)
        logger.warning(
            "%s has no selection split: holding out %d faces (10%%) for selection",
            dataset.source,
            cut,
        )
        pick = lambda idx: Split(only.images[idx], only.labels[idx])  # noqa: E731
        return "train", pick(order[cut:]), "holdout", pick(order[:cut])
    raise DataError(
        f"{dataset.source}: expected Training and PublicTest (or train/val) splits; "
        f"found {', '.join(dataset.splits)}"
    )


@dataclass
class TrainingFaces:
    """The faces a run trains on and selects with, their classes, and the names of their splits."""

    classes: list[str]
    train_name: str
    x_train: np.ndarray
    y_train: np.ndarray
    sel_name: str
    x_sel: np.ndarray
    y_sel: np.ndarray

    def metadata(self, data: str, arch: str, seed: int, **training: Any) -> ModelMetadata:
        """A run's metadata: what every trainer records, then its own ``training`` fields."""
        size = int(self.x_train.shape[1])
        return ModelMetadata(
            labels=list(self.classes),
            input_shape=[size, size, 1],
            arch=arch,
            training={
                "data": Path(data).name,
                "train_split": self.train_name,
                "selection_split": self.sel_name,
                "train_faces": len(self.y_train),
                "seed": seed,
                **training,
            },
            command=current_command(),
        )


def load_training_faces(
    data: str, size: int, cache_dir: str | None, seed: int, classes: list[str], limit: int | None
) -> TrainingFaces:
    """Training and selection faces of ``classes`` (labels indexing ``classes``); ``limit`` keeps a
    seeded random subset of the training faces for quick runs."""
    dataset = load_dataset(data, size, cache_dir)
    train_name, train_split, sel_name, sel_split = _splits(dataset, seed)
    x_train, y_train = select_classes(train_split, classes)
    x_sel, y_sel = select_classes(sel_split, classes)
    if limit:
        pick = np.random.default_rng(seed).permutation(len(y_train))[:limit]
        x_train, y_train = x_train[pick], y_train[pick]
    if len(y_train) == 0 or len(y_sel) == 0:
        raise DataError(f"{data}: no training or selection faces of the chosen classes")
    return TrainingFaces(list(classes), train_name, x_train, y_train, sel_name, x_sel, y_sel)


def balanced_class_weights(y: np.ndarray, num_classes: int) -> dict[int, float]:
    """n / (k * count): rare classes (disgust) weigh more."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    return {i: float(len(y) / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}


def _make_optimizer(recipe: Recipe) -> Any:
    import keras

    wd = recipe.weight_decay or None
    name = recipe.optimizer.lower()
    if name == "sgd":
        return keras.optimizers.SGD(recipe.learning_rate, momentum=0.9, nesterov=True, weight_decay=wd)
    if name == "adam":
        return keras.optimizers.Adam(recipe.learning_rate, weight_decay=wd)
    if name == "adamw":
        return keras.optimizers.AdamW(recipe.learning_rate, weight_decay=wd or 1e-4)
    if name == "adamax":
        return keras.optimizers.Adamax(recipe.learning_rate, weight_decay=wd)
    raise UsageError(f"--optimizer {recipe.optimizer}: expected sgd, adam, adamw or adamax")


def _dataset(x: np.ndarray, targets: np.ndarray) -> Any:
    """Selection batches: faces and their one-hot targets, in order."""
    import tensorflow as tf

    images = x.astype(np.float32)[..., np.newaxis]
    ds = tf.data.Dataset.from_tensor_slices((images, targets.astype(np.float32)))
    return ds.batch(256).prefetch(tf.data.AUTOTUNE)


def _training_dataset(
    x: np.ndarray, targets: np.ndarray, recipe: Recipe, seed: int, first_epoch: int, epochs: int
) -> tuple[Any, int]:
    """Training batches for epochs ``first_epoch`` .. ``epochs - 1`` and the batches per epoch.

    Epoch ``e``'s order is a permutation drawn from ``(seed, e)`` and each batch's augmentation is
    seeded by its global step, so the stream depends only on the seed and the epoch: a run resumed
    at epoch ``k`` sees exactly the batches an uninterrupted run saw from epoch ``k`` on.
    """
    import tensorflow as tf

    from fer_edge.training.augment import make_augmenter

    images = tf.constant(x.astype(np.float32)[..., np.newaxis])
    labels = tf.constant(targets.astype(np.float32))
    batch = recipe.batch_size
    per_epoch = math.ceil(len(x) / batch)
    orders = np.stack(
        [np.random.default_rng([seed, epoch]).permutation(len(x)) for epoch in range(first_epoch, epochs)]
    ).astype(np.int64)
    starts = tf.constant(np.arange(first_epoch, epochs, dtype=np.int64) * per_epoch)

    def epoch_batches(index: Any, order: Any) -> Any:
        start = starts[index]
        steps = tf.data.Dataset.range(per_epoch).map(lambda step: step + start)
        return tf.data.Dataset.zip((steps, tf.data.Dataset.from_tensor_slices(order).batch(batch)))

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(orders), dtype=tf.int64), orders))
    ds = ds.flat_map(epoch_batches).map(
        lambda step, idx: (step, (tf.gather(images, idx), tf.gather(labels, idx))),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    augment = make_augmenter(recipe.augment, seed, recipe.eye_band_rate)
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(lambda _step, pair: pair)
    return ds.prefetch(tf.data.AUTOTUNE), per_epoch


def _seed_generators(model: Any) -> list[Any]:
    """Every random-number stream of the model's layers (dropout's, in the seed archs), in a
    stable order. A ``.keras`` file does not keep where they stand, and a resumed run whose
    dropout masks started over would leave the uninterrupted run's path."""
    return [sg for layer in model._flatten_layers() for sg in getattr(layer, "_seed_generators", [])]


class _RunState:
    """Where a run stands (epoch, best selection accuracy, history, the layers' random streams),
    persisted for ``--resume``."""

    def __init__(self, out: Path) -> None:
        self.dir = out / "checkpoints"
        self.file = self.dir / "state.json"
        self.last_model = self.dir / "last.keras"
        self.epoch = 0
        self.best = -math.inf
        self.history: dict[str, list[float]] = {}
        self.seeds: list[list[int]] = []

    def load(self) -> None:
        if not (self.file.exists() and self.last_model.exists()):
            raise MissingInputError(f"{self.dir}: no checkpoint to resume from (run without --resume first)")
        state = json.loads(self.file.read_text())
        self.epoch, self.best, self.history = state["epoch"], state["best"], state["history"]
        self.seeds = state.get("seed_generators", [])

    def save(self, model: Any) -> None:
        import keras

        self.seeds = [keras.ops.convert_to_numpy(sg.state).tolist() for sg in _seed_generators(model)]
        write_json(
            self.file,
            {"epoch": self.epoch, "best": self.best, "history": self.history, "seed_generators": self.seeds},
        )

    def restore_seeds(self, model: Any) -> None:
        generators = _seed_generators(model)
        if len(generators) != len(self.seeds):
            logger.warning("checkpoint has no random-stream state for this model: dropout starts over")
            return
        for generator, state in zip(generators, self.seeds, strict=True):
            generator.state.assign(np.asarray(state, dtype=generator.state.dtype))


def _callbacks(
    cfg: TrainConfig, recipe: Recipe, out: Path, state: _RunState, meta: ModelMetadata
) -> list[Any]:
    import keras

    class PersistEpoch(keras.callbacks.Callback):
        """Best model to ``model.keras`` and last epoch to ``checkpoints/``, both atomically."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            for key, value in logs.items():
                state.history.setdefault(key, []).append(float(value))
            state.history.setdefault("lr", []).append(
                float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            )
            state.epoch = epoch + 1
            score = float(logs.get("val_accuracy", -math.inf))
            if score > state.best:
                state.best = score
                with atomic_path(out / "model.keras") as tmp:
                    self.model.save(tmp)
                meta.metrics = {"selection_accuracy": round(score, 4), "epoch": epoch + 1}
                save_metadata(out / "model.keras", meta)
            with atomic_path(state.last_model) as tmp:
                self.model.save(tmp)
            state.save(self.model)
            write_json(out / "history.json", state.history)

    callbacks: list[Any] = [
        PersistEpoch(),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), profile_batch=0),
    ]
    epochs = cfg.epochs or recipe.epochs
    if recipe.schedule == "cosine":
        base, warmup = recipe.learning_rate, min(3, max(0, epochs // 10))

        def cosine(epoch: int, _lr: float) -> float:
            if epoch < warmup:
                return base * (epoch + 1) / (warmup + 1)
            t = (epoch - warmup) / max(1, epochs - warmup)
            return 0.5 * base * (1 + math.cos(math.pi * t)) + 1e-5

        callbacks.append(keras.callbacks.LearningRateScheduler(cosine))
    elif recipe.schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_accuracy", mode="max", factor=0.5, patience=4, min_lr=1e-5
            )
        )
    elif recipe.schedule != "none":
        raise UsageError(f"--schedule {recipe.schedule}: expected none, plateau or cosine")
    if recipe.patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=recipe.patience)
        )
    return callbacks


def _load_initial_weights(model: Any, path: str) -> None:
    """Copy a trained model's weights into a freshly built one.

    A warm restart (a new learning-rate cycle from trained weights) is the cheapest way to add
    accuracy to an under-trained model on a CPU: it keeps what the first cycle learnt instead of
    paying for those epochs again.
    """
    import keras

    source = keras.models.load_model(path, compile=False)
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in model.get_weights()]:
        raise DataError(f"{path}: its layers do not match this --arch (weights of another architecture?)")
    model.set_weights(source.get_weights())
    logger.info("starting from the weights of %s", path)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training; returns the selection-split report of the best epoch."""
    recipe = cfg.recipe()
    if not 0.0 <= recipe.eye_band_rate <= 1.0:
        raise UsageError(f"--eye-band-rate {recipe.eye_band_rate}: expected a share between 0 and 1")
    distillation = cfg.distillation()
    if distillation is not None:
        distillation.check()
    classes = _class_list(cfg.drop_classes)
    if cfg.resume and not (Path(cfg.out) / "checkpoints" / "state.json").exists():
        raise MissingInputError(f"{cfg.out}/checkpoints: no checkpoint to resume from")
    if cfg.init_from and not cfg.resume and not Path(cfg.init_from).is_file():
        raise MissingInputError(f"{cfg.init_from}: no such model to start from")
    faces = load_training_faces(cfg.data, cfg.size, cfg.cache_dir, cfg.seed, classes, cfg.limit)
    x_train, y_train, x_sel, y_sel = faces.x_train, faces.y_train, faces.x_sel, faces.y_sel
    train_name, sel_name = faces.train_name, faces.sel_name

    import keras

    keras.utils.set_random_seed(cfg.seed)
    out = Path(cfg.out)
    state = _RunState(out)
    epochs = cfg.epochs or recipe.epochs
    meta = faces.metadata(
        cfg.data,
        cfg.arch,
        cfg.seed,
        epochs=epochs,
        recipe=asdict(recipe),
        **({"init_from": Path(cfg.init_from).name} if cfg.init_from else {}),
        **({"distillation": distillation.record()} if distillation else {}),
    )
    if cfg.resume:
        state.load()
        model = keras.models.load_model(state.last_model)
        state.restore_seeds(model)
        logger.info(
            "resuming %s at epoch %d (best selection accuracy %.4f)",
            cfg.arch,
            state.epoch,
            state.best,
        )
    else:
        model = get_arch(cfg.arch).build(
            len(classes),
            cfg.size,
            **({"backbone_weights": cfg.backbone_weights} if cfg.arch == "seed-001-vgg16" else {}),
        )
        if cfg.init_from:
            _load_initial_weights(model, cfg.init_from)
        model.compile(
            optimizer=_make_optimizer(recipe),
            loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
            metrics=["accuracy"],
        )
    onehot = np.eye(len(classes), dtype=np.float32)
    targets = distilled_targets(distillation, x_train, y_train, classes) if distillation else onehot[y_train]
    out.mkdir(parents=True, exist_ok=True)  # only once model and targets exist: a refused run writes nothing
    meta.training["params"] = int(model.count_params())
    meta.training["macs"] = count_macs(model)
    logger.info(
        "%s: %d parameters; %d training faces (%s), %d selection faces (%s)",
        cfg.arch,
        model.count_params(),
        len(y_train),
        train_name,
        len(y_sel),
        sel_name,
    )
    if cfg.arch == "seed-001-vgg16" and not cfg.backbone_weights:
        logger.warning("no --backbone-weights given: the VGG16 backbone trains from scratch")

    if state.epoch < epochs:
        batches, per_epoch = _training_dataset(x_train, targets, recipe, cfg.seed, state.epoch, epochs)
        model.fit(
            batches,
            steps_per_epoch=per_epoch,
            validation_data=_dataset(x_sel, onehot[y_sel]),
            epochs=epochs,
            initial_epoch=state.epoch,
            shuffle=False,
            class_weight=balanced_class_weights(y_train, len(classes)) if recipe.class_weights else None,
            callbacks=_callbacks(cfg, recipe, out, state, meta),
            verbose=1 if sys.stdout.isatty() else 2,
        )
    selection = Split(x_sel, np.asarray([LABELS.index(classes[i]) for i in y_sel]))
    return _finish(out, cfg.data, sel_name, selection, state.history)


def _finish(
    out: Path, data: str, sel_name: str, selection: Split, history: dict[str, list[float]]
) -> dict[str, Any]:
    """Score the best model on the selection split; write report, curves, confusion."""
    from fer_edge.training.evaluate import evaluate_split, load_classifier
    from fer_edge.training.plots import plot_confusion, plot_curves

    model = load_classifier(out / "model.keras")
    evaluation = evaluate_split(model, selection)
    report = {
        "model": str(out / "model.keras"),
        "data": data,
        "split": sel_name,
        **evaluation.report,
    }
    write_json(out / "report.json", report)
    plot_curves(history, out / "curves.png")
    plot_confusion(
        report["confusion"],
        evaluation.labels,
        out / "confusion.png",
        f"{sel_name}: accuracy {report['accuracy']:.3f}",
    )
    return report
