"""What happens around each epoch: set its learning rate, score it on the selection split, keep
the best student, checkpoint the run, and decide whether to go on.

A run stops at its last epoch, when early stopping's patience runs out, or when the next epoch
would overrun its time budget (judged by the longest epoch so far, compiling excluded).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from fer_edge.training.checkpoint import RunState
from fer_edge.training.schedule import LearningRate

logger = logging.getLogger(__name__)


class EpochLoop(keras.callbacks.Callback):
    """The run's epochs, as one callback on the training graph's ``fit``."""

    def __init__(
        self,
        student: keras.Model,
        state: RunState,
        rate: LearningRate,
        selection: tuple[np.ndarray, np.ndarray],
        on_best: Callable[[float, int], None],
        patience: int = 0,
        time_budget: float | None = None,
    ) -> None:
        super().__init__()
        self.student, self.state, self.rate, self.on_best = student, state, rate, on_best
        self.x_sel = selection[0].astype(np.float32)[..., np.newaxis]
        self.y_sel = selection[1]
        self.patience, self.time_budget = patience, time_budget
        self.started = self.epoch_start = time.monotonic()
        self.longest_epoch = 0.0
        self.epochs_here = 0

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        # the budget counts training, not data loading, and goes on from where a resumed run stood
        self.started = time.monotonic() - self.state.elapsed

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch_start = time.monotonic()
        self.model.optimizer.learning_rate = self.rate.at_epoch_start(epoch, self.epoch_start - self.started)

    def _score(self) -> tuple[float, float]:
        """Selection accuracy and loss of the student alone, as it would ship."""
        p = np.asarray(self.student.predict(self.x_sel, batch_size=512, verbose=0), dtype=np.float64)
        accuracy = float(np.mean(np.argmax(p, axis=1) == self.y_sel))
        loss = float(-np.mean(np.log(np.clip(p[np.arange(len(p)), self.y_sel], 1e-7, 1.0))))
        return accuracy, loss

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        now = time.monotonic()
        self.epochs_here += 1
        if self.epochs_here > 1:  # a process's first epoch includes compiling
            self.longest_epoch = max(self.longest_epoch, now - self.epoch_start)
        accuracy, loss = self._score()
        logs = logs or {}
        row = {
            "loss": float(logs.get("loss", math.nan)),
            "accuracy": float(logs.get("accuracy", math.nan)),
            "val_loss": loss,
            "val_accuracy": accuracy,
            "lr": float(ops.convert_to_numpy(self.model.optimizer.learning_rate)),
            "seconds": round(now - self.epoch_start, 2),
        }
        state = self.state
        for key, value in row.items():
            state.history.setdefault(key, []).append(value)
        logger.info("epoch %d: %s", epoch + 1, json.dumps({k: round(v, 4) for k, v in row.items()}))
        state.epoch, state.elapsed = epoch + 1, now - self.started
        if accuracy > state.best:
            state.best, state.best_epoch = accuracy, epoch + 1
            self.on_best(accuracy, epoch + 1)
        self.rate.after_epoch(accuracy)
        state.schedule = self.rate.state()
        state.save(self.student, self.model)
        if self.patience and state.epoch - state.best_epoch >= self.patience:
            logger.info("no better selection accuracy for %d epochs: stopping", self.patience)
            self.model.stop_training = True
        if self.time_budget is not None and state.elapsed + self.longest_epoch > self.time_budget:
            logger.info("the next epoch would overrun the %.0f s time budget: stopping", self.time_budget)
            self.model.stop_training = True
