"""Prometheus metrics (optional ``metrics_port``) and the figures behind the ``stats`` topic."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

import numpy as np

logger = logging.getLogger(__name__)

try:
    from prometheus_client import Counter, Gauge, Histogram, start_http_server
except ImportError:  # metrics are optional on a box
    Counter = Gauge = Histogram = start_http_server = None  # type: ignore[assignment,misc]


@dataclass
class CameraStats:
    """Rolling per-camera figures for the retained ``stats`` topic."""

    ticks: int = 0
    faces: int = 0
    latencies: dict[str, deque[float]] = field(default_factory=dict)

    def record(self, timing_ms: dict[str, float]) -> None:
        for stage, value in timing_ms.items():
            self.latencies.setdefault(stage, deque(maxlen=200)).append(value)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            stage: {
                "p50": round(float(np.percentile(v, 50)), 2),
                "p95": round(float(np.percentile(v, 95)), 2),
            }
            for stage, v in self.latencies.items()
            if v
        }


class PrometheusMetrics:
    """The daemon's Prometheus series; a no-op when prometheus-client is absent or no port set."""

    def __init__(self, port: int | None, host: str = "127.0.0.1", served_elsewhere: bool = False) -> None:
        """``port``: serve /metrics there; ``served_elsewhere``: keep the series for the web
        server's /metrics even without a port of their own."""
        wanted = port is not None or served_elsewhere
        self.enabled = wanted and Counter is not None
        if port is not None and Counter is None:
            logger.warning("metrics_port is set but prometheus-client is not installed")
        if not self.enabled:
            return
        self.ticks = Counter("fer_edge_ticks_total", "analysis ticks", ["camera"])
        self.faces = Counter("fer_edge_faces_total", "faces classified", ["camera"])
        self.frames = Gauge("fer_edge_frames_decoded", "frames decoded since start", ["camera"])
        self.stage = Histogram(
            "fer_edge_stage_seconds",
            "time per pipeline stage",
            ["camera", "stage"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1),
        )
        self.spool_depth = Gauge("fer_edge_spool_depth", "results waiting for the broker")
        self.spool_dropped = Gauge("fer_edge_spool_dropped", "results dropped at the spool bound")
        self.up = Gauge("fer_edge_camera_streaming", "1 while the camera streams", ["camera"])
        if port is not None:
            start_http_server(port, addr=host)
            logger.info("Prometheus metrics on http://%s:%d/metrics", host, port)

    def exposition(self) -> tuple[bytes, str]:
        """The /metrics body and its content type (the web server's /metrics)."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

    def tick(self, camera: str, faces: int, timing_ms: dict[str, float], frames: int) -> None:
        if not self.enabled:
            return
        self.ticks.labels(camera).inc()
        self.faces.labels(camera).inc(faces)
        self.frames.labels(camera).set(frames)
        for stage, ms in timing_ms.items():
            self.stage.labels(camera, stage).observe(ms / 1000.0)

    def status(self, camera: str, status: str) -> None:
        if self.enabled:
            self.up.labels(camera).set(1 if status == "streaming" else 0)

    def spool(self, depth: int, dropped: int) -> None:
        if self.enabled:
            self.spool_depth.set(depth)
            self.spool_dropped.set(dropped)
