"""The learning rate of each epoch: constant, halved on a plateau, or warm-up then cosine.

A cosine runs over the epochs of the run, or over its wall-clock ``--time-budget`` (a GPU lent
for a fixed time): the rate reaches its floor as the time runs out, however many epochs fit.
Everything a plateau schedule remembers is in :meth:`LearningRate.state`, which a checkpoint
keeps, so a resumed run continues the schedule rather than restarting it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from fer_edge.errors import UsageError

SCHEDULES = ("none", "plateau", "cosine")
PLATEAU_FACTOR = 0.5  # each plateau halves the rate ...
PLATEAU_PATIENCE = 4  # ... after this many epochs without a better selection accuracy ...
PLATEAU_FLOOR = 1e-5  # ... down to this


@dataclass
class LearningRate:
    """One run's schedule and, for ``plateau``, where it stands."""

    policy: str
    peak: float
    warmup: int
    epochs: int | None
    time_budget: float | None = None
    current: float | None = None  # plateau: the rate now
    wait: int = 0  # plateau: epochs since the selection accuracy last improved
    best: float = -math.inf  # plateau: the best selection accuracy so far

    def __post_init__(self) -> None:
        if self.policy not in SCHEDULES:
            raise UsageError(f"--schedule {self.policy}: expected one of {', '.join(SCHEDULES)}")

    def progress(self, epoch: int, elapsed: float) -> float:
        """How far through the run epoch ``epoch`` starts, 0..1, by the clock when budgeted."""
        if self.time_budget is not None:
            return min(1.0, elapsed / self.time_budget)
        return min(1.0, epoch / max(1, self.epochs or 1))

    def at_epoch_start(self, epoch: int, elapsed: float) -> float:
        """The rate for epoch ``epoch`` (0-based), ``elapsed`` training seconds into the run."""
        if self.policy == "none":
            return self.peak
        if self.policy == "plateau":
            return self.peak if self.current is None else self.current
        warm = min(1.0, (epoch + 1) / max(1, self.warmup))
        return self.peak * warm * 0.5 * (1.0 + math.cos(math.pi * self.progress(epoch, elapsed)))

    def after_epoch(self, score: float) -> None:
        """Let the plateau schedule see the epoch's selection accuracy."""
        if self.policy != "plateau":
            return
        if score > self.best:
            self.best, self.wait = score, 0
            return
        self.wait += 1
        if self.wait >= PLATEAU_PATIENCE:
            now = self.peak if self.current is None else self.current
            self.current, self.wait = max(PLATEAU_FLOOR, now * PLATEAU_FACTOR), 0

    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the schedule (its settings come from the command again)."""
        return {k: v for k, v in asdict(self).items() if k in ("current", "wait", "best")}

    def restore(self, state: dict[str, Any]) -> None:
        self.current = state.get("current")
        self.wait = int(state.get("wait", 0))
        self.best = float(state.get("best", -math.inf))
