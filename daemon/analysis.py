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


class RunShedding:
    """Decoding runs (the frames after a long GOP's key frames, up to the tick a second later) can
    be most of what an overloaded box spends: 16 cameras of a 2 s GOP at 1080p25 need about 15
    frames a second each and got 0.2 results/s each. Their key frames alone cost a twentieth
    and give a result a GOP (0.5/s). So while the box is overloaded and key frames alone would
    give those cameras more results than they get, each of them decodes key frames alone (an
    overload from analysis, where the runs cost little, keeps its runs: its achieved rate is
    above a GOP's). After ``hold_s`` without overload the runs come back; an overload that
    returns soon after doubles the hold (up to ``MAX_HOLD_S``), so a box that cannot afford the
    runs settles on key frames instead of swinging. One log line when shedding starts and one
    when the runs come back."""

    HOLD_S = 60.0
    MAX_HOLD_S = 960.0

    def __init__(self, hold_s: float = HOLD_S) -> None:
        self.active = False
        self.hold_s = self._first_hold_s = hold_s
        self._until = 0.0
        self._resumed: float | None = None

    def update(self, overloaded: bool, worth: bool, now: float) -> bool:
        """``worth``: some camera decodes runs and would get more results from its key frames
        alone than it gets now. Whether to shed the runs now."""
        if not self.active:
            if self._resumed is not None and now - self._resumed > 2 * self.hold_s:
                self.hold_s, self._resumed = self._first_hold_s, None  # the runs were affordable
            if overloaded and worth:
                if self._resumed is not None:
                    self.hold_s = min(2 * self.hold_s, max(self.MAX_HOLD_S, self._first_hold_s))
                self.active, self._until = True, now + self.hold_s
                logger.warning(
                    "overloaded by decoding long GOPs: those cameras decode key frames alone (a "
                    "result a GOP, more than they got) for at least %.0f s",
                    self.hold_s,
                )
        elif overloaded:
            self._until = max(self._until, now + self.hold_s)  # still too much, key frames alone
        elif now >= self._until:
            self.active, self._resumed = False, now
            logger.info("decoding runs again on long-GOP cameras (no overload for %.0f s)", self.hold_s)
        return self.active

    def summary(self) -> dict[str, object]:
        return {"shedding_runs": self.active, "shed_hold_s": self.hold_s}


def shedding_worth(gops: dict[str, float], rates: dict[str, float]) -> bool:
    """Whether key frames alone would give some camera that decodes runs (``gops``: its GOP in
    seconds) more results than it got (``rates``: results/s over the last window)."""
    return any(name in rates and rates[name] < 1.0 / gop for name, gop in gops.items() if gop > 0)
