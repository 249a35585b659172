"""The stats topic's per-camera block: what each camera's reader, planner and analysis did."""

from __future__ import annotations

from typing import Any

from fer_edge.daemon.ingest import CameraReader
from fer_edge.daemon.metrics import CameraStats
from fer_edge.daemon.scan import ScanStats


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def camera_stats(
    reader: CameraReader, scans: ScanStats, stats: CameraStats, uptime_s: float
) -> dict[str, Any]:
    plan = reader.plan
    return {
        "status": reader.status or "connecting",
        "decode_fps": round(reader.frames_decoded / max(uptime_s, 1e-6), 2),
        "ticks": stats.ticks,
        "skipped_ticks": reader.missed_ticks,
        "decode": {
            "mode": plan.mode,
            "doing": plan.doing,
            "why": plan.why,
            "gop_s": _rounded(plan.gop_s, 3),
            "decoded_fraction": round(plan.decoded_fraction, 3),
        },
        "faces": stats.faces,
        "full_scans": scans.full,
        "scene_changes": scans.scene_changes,
        "searches_deferred": scans.deferred,
        "weather_ticks": scans.weather,
        "reconnects": reader.reconnects,
        "latency_ms": stats.summary(),
    }
