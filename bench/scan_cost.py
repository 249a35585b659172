"""What face detection costs per tick in camera-like scenes, with and without treating motion
around and below a tracked face as that person.

Each scenario is 1080p frames one second apart (a 1 Hz tick) of a textured backdrop under grain:
a person standing still, one person walking (head, shoulders, arms, legs), three, a crowd of
eight, a light switched on mid-clip, and rain (streaks all over every frame). The daemon's own
``ScanPlanner`` with BlazeFace runs over them twice in the same process: as shipped, and with
``people=False`` (the baseline: only the face's own surroundings count as its motion), and a
third time as shipped but without the search budget (``search_budget_ms: 0``), to show what the
budget caps. Prints the detection milliseconds per tick (median and mean) and the faces found,
as JSON.

    python bench/scan_cost.py --ticks 30 --json docs/bench/scan-cost.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fer_edge.atomic import write_json
from fer_edge.bench.walkers import Walker, one_walker, three_walkers, walker_frames
from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.scan import ScanPlanner

WIDTH, HEIGHT, FPS = 1920, 1080, 1  # one frame per tick


def _gray(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.ascontiguousarray(f.mean(axis=2).astype(np.uint8)) for f in frames]


def _crowd() -> list[Walker]:
    return [
        Walker(scale=0.55 + 0.06 * i, y=120 + 22 * i, speed=1.0 + 0.07 * i, phase=i / 8,
               shirt=(40 + 25 * i, 90, 200 - 20 * i))
        for i in range(8)
    ]  # fmt: skip


def _standing(ticks: int) -> list[np.ndarray]:
    return list(walker_frames([Walker(speed=0.0)], ticks, WIDTH, HEIGHT, FPS))


def _light_on(ticks: int) -> list[np.ndarray]:
    frames = list(walker_frames(one_walker(), ticks, WIDTH, HEIGHT, FPS))
    brighter = [np.clip(f.astype(np.int16) + 45, 0, 255).astype(np.uint8) for f in frames]
    return frames[: ticks // 2] + brighter[ticks // 2 :]


def _rain(ticks: int) -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    frames = list(walker_frames(one_walker(), ticks, WIDTH, HEIGHT, FPS))
    for frame in frames:
        for _ in range(400):  # streaks: bright, thin, short, everywhere, new every frame
            x, y = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT - 40))
            frame[y : y + int(rng.integers(15, 40)), x : x + 2] = 230
    return frames


SCENARIOS: dict[str, Callable[[int], list[np.ndarray]]] = {
    "still person": _standing,
    "one walking person": lambda n: list(walker_frames(one_walker(), n, WIDTH, HEIGHT, FPS)),
    "three walking people": lambda n: list(walker_frames(three_walkers(), n, WIDTH, HEIGHT, FPS)),
    "crowd of eight": lambda n: list(walker_frames(_crowd(), n, WIDTH, HEIGHT, FPS)),
    "light switched on": _light_on,
    "rain": _rain,
}


def run(frames: list[np.ndarray], people: bool, budget: bool = True) -> dict[str, float]:
    config = DetectorConfig() if budget else DetectorConfig(search_budget_ms=0)
    planner = ScanPlanner(create_detector(config), full_scan_every=30, people=people)
    times, faces = [], []
    for gray in frames:
        began = time.perf_counter()
        found = planner.find(gray)
        times.append((time.perf_counter() - began) * 1000)
        faces.append(len(found))
    steady = times[1:]  # the first tick scans the whole frame either way
    return {
        "detect_ms_median": round(statistics.median(steady), 1),
        "detect_ms_mean": round(statistics.fmean(steady), 1),
        "faces_mean": round(statistics.fmean(faces[1:]), 2),
        "full_scans": planner.stats.full,
        "searches_deferred": planner.stats.deferred,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    scenarios: dict[str, object] = {}
    report = {"frame": f"{WIDTH}x{HEIGHT}", "ticks": args.ticks, "scenarios": scenarios}
    for name, make in SCENARIOS.items():
        frames = _gray(make(args.ticks))
        shipped, baseline = run(frames, people=True), run(frames, people=False)
        unbudgeted = run(frames, people=True, budget=False)
        ratio = baseline["detect_ms_mean"] / max(shipped["detect_ms_mean"], 1e-3)
        scenarios[name] = {
            "shipped": shipped,
            "baseline": baseline,
            "shipped_without_budget": unbudgeted,
            "baseline_over_shipped": round(ratio, 2),
        }
        print(
            f"{name:22s} shipped {shipped['detect_ms_mean']:7.1f} ms  baseline "
            f"{baseline['detect_ms_mean']:7.1f} ms  no budget {unbudgeted['detect_ms_mean']:7.1f} ms  "
            f"faces {shipped['faces_mean']:.2f} / {baseline['faces_mean']:.2f} / "
            f"{unbudgeted['faces_mean']:.2f}",
            flush=True,
        )
    print(json.dumps(report, indent=2))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
