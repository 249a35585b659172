"""Where a run stands, kept after every epoch so ``--resume`` continues it exactly.

A checkpoint is the student (``.keras``), the optimizer's variables (momentum, step count), every
random stream of the training graph (the augmenter's and dropout's: a ``.keras`` file does not
keep where they stand, and a resumed run whose streams started over would leave the
uninterrupted run's path), the schedule's state, the history and the best selection accuracy.
Each epoch's files are written under new names and ``state.json``, which names them, is replaced
last: a run killed while writing a checkpoint resumes from the one before.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.errors import DataError, MissingInputError

logger = logging.getLogger(__name__)


def seed_generators(model: Any) -> list[Any]:
    """Every random-number stream of the model's layers, nested models included, in a stable order."""
    return [sg for layer in model._flatten_layers() for sg in getattr(layer, "_seed_generators", [])]


class RunState:
    """One run's progress, persisted in ``<out>/checkpoints``."""

    def __init__(self, out: Path) -> None:
        self.dir = out / "checkpoints"
        self.file = self.dir / "state.json"
        self.epoch = 0
        self.best = -math.inf
        self.best_epoch = 0
        self.elapsed = 0.0  # training seconds so far, for a time budget
        self.history: dict[str, list[float]] = {}
        self.schedule: dict[str, Any] = {}
        self._saved: dict[str, Any] = {}

    @property
    def student_path(self) -> Path:
        return self.dir / self._saved["student"]

    def exists(self) -> bool:
        return self.file.is_file()

    def load(self) -> None:
        """Read ``state.json``; the model and optimizer follow with :meth:`restore`."""
        if not self.exists():
            raise MissingInputError(f"{self.dir}: no checkpoint to resume from (run without --resume first)")
        state = json.loads(self.file.read_text())
        self._saved = state
        self.epoch, self.best, self.best_epoch = state["epoch"], state["best"], state["best_epoch"]
        self.elapsed, self.history, self.schedule = state["elapsed"], state["history"], state["schedule"]
        if not self.student_path.is_file():
            raise MissingInputError(f"{self.student_path}: the checkpoint's model is missing")

    def save(self, student: Any, graph: Any) -> None:
        """Write this epoch's checkpoint, then point ``state.json`` at it, then drop the last one."""
        from keras import ops

        self.dir.mkdir(parents=True, exist_ok=True)
        stem = f"epoch-{self.epoch:04d}"
        with atomic_path(self.dir / f"{stem}.keras") as tmp:
            student.save(tmp)
        optimizer = [ops.convert_to_numpy(v) for v in graph.optimizer.variables]
        with atomic_path(self.dir / f"{stem}.optimizer.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, *optimizer)
        previous = self._saved
        self._saved = {
            "epoch": self.epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "elapsed": round(self.elapsed, 3),
            "history": self.history,
            "schedule": self.schedule,
            "student": f"{stem}.keras",
            "optimizer": f"{stem}.optimizer.npz",
            "seed_generators": [ops.convert_to_numpy(sg.state).tolist() for sg in seed_generators(graph)],
        }
        write_json(self.file, self._saved)
        for key in ("student", "optimizer"):
            old = previous.get(key)
            if old and old != self._saved[key]:
                (self.dir / old).unlink(missing_ok=True)

    def restore(self, graph: Any) -> None:
        """Put the optimizer's variables and the random streams back where the checkpoint left them
        (the student's weights come with the ``.keras`` file it is built from)."""
        optimizer = graph.optimizer
        if not optimizer.built:
            optimizer.build(graph.trainable_variables)
        with np.load(self.dir / self._saved["optimizer"]) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(optimizer.variables):
            raise DataError(
                f"{self.dir}: the checkpoint's optimizer does not match this run's (another --arch?)"
            )
        for variable, value in zip(optimizer.variables, values, strict=True):
            variable.assign(value)
        generators, states = seed_generators(graph), self._saved.get("seed_generators", [])
        if len(generators) != len(states):
            logger.warning("the checkpoint's random streams do not match this model's: they start over")
            return
        for generator, state in zip(generators, states, strict=True):
            generator.state.assign(np.asarray(state, dtype=generator.state.dtype))
