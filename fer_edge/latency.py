"""Latency measurement shared by ``fer-edge calibrate``'s report and ``fer-edge bench``."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from fer_edge.preprocess import scale_pixels
from fer_edge.runtime import EmotionModel


def percentiles_ms(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(samples_ms, 50)), 4),
        "p95": round(float(np.percentile(samples_ms, 95)), 4),
    }


def time_calls_ms(fn: Callable[[], object], runs: int, warmup: int = 5) -> list[float]:
    """Wall time of ``runs`` calls of ``fn`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def per_face_latency_ms(model: EmotionModel, runs: int = 200) -> dict[str, float]:
    """p50/p95 of one-face invokes (the daemon's usual batch), on the model's own thread count."""
    spec = model.metadata.input_spec()
    face = scale_pixels(np.random.default_rng(0).integers(0, 256, (1, spec.size, spec.size), np.uint8), spec)
    return percentiles_ms(time_calls_ms(lambda: model.predict(face), runs, warmup=20))
