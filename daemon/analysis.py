"""Analysis on every core: a worker thread per core, each with its own detector and model, each
serving a fixed share of the cameras.

LiteRT's ``invoke`` and OpenCV's image work release the GIL, so threads run the models side by
side; interpreters are not shared between threads, so each worker loads its own (a few MB). A
camera always goes to the same worker, so its ticks are analysed one after another, in frame
order, and its ``seq`` stays contiguous. A worker takes its cameras' newest tick frames in turn,
one tick per camera per round: when the box cannot keep up, every camera gets the same share of
rounds (the readers keep only the newest frame, so nothing queues) and none starves.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fer_edge.daemon.ingest import Frame

logger = logging.getLogger(__name__)


def worker_count(setting: int | None, cameras: int) -> int:
    """``analysis_workers``: as set, or one per core (never more than cameras)."""
    wanted = setting if setting is not None else len(os.sched_getaffinity(0))
    return max(1, min(wanted, cameras))


def shard(items: Sequence[str], workers: int) -> list[list[str]]:
    """Deal cameras to workers in turn: each worker gets every ``workers``-th camera."""
    return [list(items[i::workers]) for i in range(workers)]


@dataclass
class _Served:
    name: str
    take: Callable[[], Frame | None]


class AnalysisWorker(threading.Thread):
    """Runs ``tick(camera, frame)`` for its cameras' tick frames until ``stop`` is set; between
    rounds, ``idle(camera)`` lets the daemon do per-camera work on this thread (ending visits of
    a camera that went quiet), so a camera's state is only ever touched by its worker."""

    def __init__(
        self,
        index: int,
        cameras: list[_Served],
        tick: Callable[[str, Frame], None],
        idle: Callable[[str], None],
        stop: threading.Event,
        ready: threading.Event,
    ) -> None:
        super().__init__(name=f"analysis-{index}", daemon=True)
        self.cameras, self._tick, self._idle, self._halt = cameras, tick, idle, stop
        self.ready = ready  # a reader of one of these cameras has a tick frame
        self.alive = time.monotonic()  # the last round: the watchdog and /healthz read it
        self.failed: BaseException | None = None

    @staticmethod
    def serving(name: str, take: Callable[[], Frame | None]) -> _Served:
        return _Served(name, take)

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                self.ready.wait(0.5)
                self.ready.clear()
                for camera in self.cameras:
                    if self._halt.is_set():
                        break  # SIGTERM: at most one tick's wait, whatever the load
                    frame = camera.take()
                    if frame is not None:
                        self._tick(camera.name, frame)
                for camera in self.cameras:
                    self._idle(camera.name)
                self.alive = time.monotonic()
        except BaseException as e:  # the daemon sees it, stops, and exits with the error
            self.failed = e
            self._halt.set()
            raise


class OverloadWatch:
    """Whether the box analyses every camera every interval: over each stats window, tick
    frames replaced before analysis took them mean it does not. One log line when that starts
    and one when it ends; stats carry the state and the rate achieved."""

    def __init__(self) -> None:
        self.overloaded = False
        self._last: dict[str, tuple[int, int]] = {}  # camera -> (ticks, overtaken) at the last look
        self._since = time.monotonic()
        self.rates: dict[str, float] = {}

    def update(self, counts: dict[str, tuple[int, int]], targets: dict[str, float]) -> None:
        """``counts``: per camera (ticks analysed, tick frames overtaken) so far; ``targets``:
        results per second each camera is configured for."""
        now = time.monotonic()
        window = max(now - self._since, 1e-6)
        behind = False
        rates = {}
        for name, (ticks, overtaken) in counts.items():
            before_ticks, before_overtaken = self._last.get(name, (ticks, overtaken))
            rates[name] = (ticks - before_ticks) / window
            behind = behind or overtaken > before_overtaken
        first_look = not self._last
        self._last, self._since = dict(counts), now
        if first_look:
            return
        self.rates = rates
        if behind != self.overloaded:
            self.overloaded = behind
            achieved = min(rates.values()) if rates else 0.0
            wanted = max(targets.values()) if targets else 0.0
            if behind:
                logger.warning(
                    "overloaded: the box cannot analyse every camera every interval; each camera "
                    "gets an even share (slowest %.2f results/s of %.2f wanted)",
                    achieved,
                    wanted,
                )
            else:
                logger.info("no longer overloaded: every camera analysed every interval")

    def summary(self) -> dict[str, object]:
        rates = list(self.rates.values())
        return {
            "overloaded": self.overloaded,
            "results_per_s": {
                "min": round(min(rates), 3) if rates else None,
                "mean": round(sum(rates) / len(rates), 3) if rates else None,
            },
        }
