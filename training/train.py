"""``fer-edge train``: the one training loop, Keras 3 on any backend.

Every training command runs here: ``train`` (an architecture on the labels), ``teach`` (the
``vgg-teacher`` preset) and ``distill`` (the ``edge`` preset that learns from teachers). TensorFlow
trains on this CPU; ``KERAS_BACKEND=jax`` (or ``torch``) runs the same command on a GPU box
without TensorFlow. Faces stay NumPy until a batch is fed (``feed``); augmentation and ``.keras``
teachers run inside the training graph (``graph``), so a teacher scores the face the student sees.

Outputs in ``--out``: ``model.keras`` (+ ``model.json``) the best epoch on the selection split,
``history.json``, ``curves.png``, ``confusion.png``, ``report.json``, ``tensorboard/`` (when
TensorFlow is installed); ``checkpoints/`` holds the last epoch, so ``--resume`` continues an
interrupted run exactly where it stopped: same order, augmentation, optimizer state and schedule.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.errors import DataError, UsageError
from fer_edge.labels import LABELS
from fer_edge.metadata import ModelMetadata, current_command, portable_path, save_metadata
from fer_edge.training.archs import Recipe, count_macs, get_arch
from fer_edge.training.augment import Augment
from fer_edge.training.checkpoint import RunState
from fer_edge.training.data import Dataset, Split, load_dataset, select_classes, select_classes_with_targets
from fer_edge.training.epochs import EpochLoop
from fer_edge.training.evaluate import evaluate_split, load_classifier
from fer_edge.training.feed import Feed
from fer_edge.training.ferplus import relabel
from fer_edge.training.graph import student_accuracy, training_graph
from fer_edge.training.plots import plot_confusion, plot_curves
from fer_edge.training.schedule import LearningRate
from fer_edge.training.teachers import Teachers
from fer_edge.training.train_config import DEFAULT_CACHE, TrainConfig

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CACHE", "TrainConfig", "train"]


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
        return "train", only.take(order[cut:]), "holdout", only.take(order[:cut])
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
    t_train: np.ndarray | None = None  # soft targets (--labels votes)
    selection: Split | None = None  # the selection split with all its labels, for the final report

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
    data: str,
    size: int,
    cache_dir: str | None,
    seed: int,
    classes: list[str],
    limit: int | None,
    labels: str = "fer2013",
    fer2013_votes: float = 0.0,
) -> TrainingFaces:
    """Training and selection faces of ``classes`` (labels indexing ``classes``), labelled as
    ``--labels`` says (selection counts against hard labels: the FER+ majority for ``majority``
    and ``votes``); ``limit`` keeps a seeded random subset of the training faces. The final
    report, like ``evaluate``, counts against the FER+ majority whenever the data has votes."""
    dataset = load_dataset(data, size, cache_dir)
    train_name, train_split, sel_name, sel_split = _splits(dataset, seed)
    x_train, y_train, t_train = select_classes_with_targets(
        relabel(train_split, labels, fer2013_votes), classes
    )
    x_sel, y_sel = select_classes(relabel(sel_split, labels), classes)
    if limit:
        pick = np.random.default_rng(seed).permutation(len(y_train))[:limit]
        x_train, y_train = x_train[pick], y_train[pick]
        t_train = None if t_train is None else t_train[pick]
    if len(y_train) == 0 or len(y_sel) == 0:
        raise DataError(f"{data}: no training or selection faces of the chosen classes")
    return TrainingFaces(
        list(classes), train_name, x_train, y_train, sel_name, x_sel, y_sel, t_train, sel_split
    )


def _make_optimizer(recipe: Recipe) -> Any:
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


def _load_initial_weights(model: Any, path: str) -> None:
    """Copy a trained model's weights into a freshly built one.

    A warm restart (a new learning-rate cycle from trained weights) is the cheapest way to add
    accuracy to an under-trained model on a CPU: it keeps what the first cycle learnt instead of
    paying for those epochs again.
    """
    source = keras.models.load_model(path, compile=False)
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in model.get_weights()]:
        raise DataError(f"{path}: its layers do not match this --arch (weights of another architecture?)")
    model.set_weights(source.get_weights())
    logger.info("starting from the weights of %s", path)


def _finished(cfg: TrainConfig, recipe: Recipe, epochs: int | None, state: Any) -> bool:
    """Whether a resumed run has nothing left to do (its epochs, patience or budget are spent)."""
    if epochs is not None and state.epoch >= epochs:
        return True
    if recipe.patience and state.epoch and state.epoch - state.best_epoch >= recipe.patience:
        return True
    return cfg.time_budget is not None and state.elapsed >= cfg.time_budget


def _student(cfg: TrainConfig, classes: list[str], state: Any) -> Any:
    """The model being trained: the checkpoint's when resuming, else a fresh build of ``--arch``
    (with ``--init-from``'s weights for a warm restart)."""
    if cfg.resume:
        state.load()
        return keras.models.load_model(state.student_path, compile=False)
    student = get_arch(cfg.arch).build(len(classes), cfg.size, **cfg.build_options())
    if cfg.init_from:
        _load_initial_weights(student, cfg.init_from)
    return student


def _run_metadata(
    cfg: TrainConfig, recipe: Recipe, faces: TrainingFaces, epochs: int | None, student: Any, teachers: Any
) -> ModelMetadata:
    """What ``model.json`` records of the run: settings, provenance (no machine paths), cost."""
    optional = {
        "time_budget_s": cfg.time_budget,
        "width": cfg.width,
        "init_from": portable_path(cfg.init_from) if cfg.init_from else None,
        "distillation": teachers.record() if teachers else None,
        "fer2013_votes": cfg.fer2013_votes or None,
        "class_weight_power": cfg.class_weight_power if recipe.class_weights else None,
    }
    return faces.metadata(
        cfg.data,
        cfg.arch,
        cfg.seed,
        trainer=f"fer-edge train ({keras.backend.backend()} backend)",
        labels=cfg.labels,
        epochs=epochs,
        recipe=asdict(recipe),
        **{k: v for k, v in optional.items() if v is not None},
        params=int(student.count_params()),
        macs=count_macs(student),
    )


def _fit(graph: Any, feed: Any, loop: Any, first_epoch: int, epochs: int | None, out: Path) -> None:
    callbacks: list[Any] = [loop]
    if importlib.util.find_spec("tensorflow") is not None:  # GPU boxes often lack it
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard"), profile_batch=0))
    graph.fit(
        feed.batches(first_epoch),
        steps_per_epoch=feed.steps_per_epoch,
        epochs=epochs or 1_000_000,  # a time budget stops the run itself
        initial_epoch=first_epoch,
        shuffle=False,  # the feed orders each epoch itself, from (seed, epoch)
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )


@dataclass
class BestKeeper:
    """What the epoch loop calls on a new best selection score: the student saved (atomically)
    with its metadata, which records the score and the epoch."""

    path: Path
    student: Any
    meta: ModelMetadata

    def __call__(self, score: float, epoch: int) -> None:
        with atomic_path(self.path) as tmp:
            self.student.save(tmp)
        self.meta.metrics = {"selection_accuracy": round(score, 4), "epoch": epoch}
        self.meta.training["epochs_run"] = epoch  # so far: a new best is always the latest epoch
        save_metadata(self.path, self.meta)


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run one training; returns the selection-split report of the best epoch. The settings are
    checked and the faces loaded before anything is built or written, so a refused run (a bad
    option, a missing file) answers first and leaves no output folder."""
    recipe = cfg.recipe()
    cfg.check(recipe)
    teaching = cfg.teaching()
    classes = _class_list(cfg.drop_classes)
    faces = load_training_faces(
        cfg.data, cfg.size, cfg.cache_dir, cfg.seed, classes, cfg.limit, cfg.labels, cfg.fer2013_votes
    )
    keras.utils.set_random_seed(cfg.seed)
    teachers = Teachers.load(teaching, classes, cfg.size) if teaching else None
    out = Path(cfg.out)
    state = RunState(out)
    epochs = None if cfg.time_budget is not None else (cfg.epochs or recipe.epochs)
    student = _student(cfg, classes, state)
    augment = None if recipe.augment == "none" else Augment(recipe.augment, recipe.eye_band_rate, cfg.seed)
    graph, feed = _graph_and_feed(cfg, recipe, faces, student, augment, teachers, len(classes))
    if cfg.resume:
        state.restore(graph)
        logger.info(
            "resuming %s at epoch %d (best selection accuracy %.4f)", cfg.arch, state.epoch, state.best
        )
    out.mkdir(parents=True, exist_ok=True)  # only now: a refused run writes nothing
    meta = _run_metadata(cfg, recipe, faces, epochs, student, teachers)
    rate = LearningRate(recipe.schedule, recipe.learning_rate, recipe.warmup, epochs, cfg.time_budget)
    rate.restore(state.schedule)
    keep_best = BestKeeper(out / "model.keras", student, meta)
    loop = EpochLoop(
        student, state, rate, (faces.x_sel, faces.y_sel), keep_best, recipe.patience, cfg.time_budget
    )
    _log_start(cfg, student, faces, teachers)
    if not _finished(cfg, recipe, epochs, state):
        _fit(graph, feed, loop, state.epoch, epochs, out)
    meta.training["epochs_run"] = state.epoch
    if (out / "model.keras").exists():
        save_metadata(out / "model.keras", meta)
    write_json(out / "history.json", state.history)
    assert faces.selection is not None
    return _finish(out, cfg.data, faces.sel_name, faces.selection, state.history)


def _graph_and_feed(
    cfg: TrainConfig,
    recipe: Recipe,
    faces: TrainingFaces,
    student: Any,
    augment: Augment | None,
    teachers: Teachers | None,
    num_classes: int,
) -> tuple[Any, Feed]:
    """The compiled training graph and the batches it eats. Augmentation and ``.keras`` teachers
    run in the graph (a teacher then scores the very face the student sees); a ``.tflite``
    teacher cannot, so it and the augmentation move to the feed."""
    in_graph = teachers is None or teachers.teaching.in_graph
    graph, loss = training_graph(
        student,
        augment if in_graph else None,
        teachers.graph_models() if teachers and in_graph else [],
        cfg.distill_weight,
        cfg.distill_temperature,
    )
    graph.compile(optimizer=_make_optimizer(recipe), loss=loss, metrics=[student_accuracy(num_classes)])
    feed = Feed(
        faces.x_train,
        faces.y_train,
        num_classes,
        recipe.batch_size,
        cfg.seed,
        label_smoothing=recipe.label_smoothing,
        class_weights=recipe.class_weights,
        class_weight_power=cfg.class_weight_power,
        soft_targets=faces.t_train,
        augment=None if in_graph else augment,
        teachers=None if in_graph else teachers,
    )
    return graph, feed


def _log_start(cfg: TrainConfig, student: Any, faces: TrainingFaces, teachers: Teachers | None) -> None:
    logger.info(
        "%s: %d parameters; %d training faces (%s), %d selection faces (%s); %d teacher(s); %s backend",
        cfg.arch,
        student.count_params(),
        len(faces.y_train),
        faces.train_name,
        len(faces.y_sel),
        faces.sel_name,
        len(teachers.teaching.paths) if teachers else 0,
        keras.backend.backend(),
    )
    if cfg.arch == "seed-001-vgg16" and not cfg.backbone_weights:
        logger.warning("no --backbone-weights given: the VGG16 backbone trains from scratch")


def _finish(
    out: Path, data: str, sel_name: str, selection: Split, history: dict[str, list[float]]
) -> dict[str, Any]:
    """Score the best model on the selection split; write report, curves, confusion."""
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
