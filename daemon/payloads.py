"""The MQTT contract's topics and JSON documents (DESIGN.md, "MQTT contract"), built in one place."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_edge import __version__
from fer_edge.daemon.pipeline import Analysis

SCHEMA = 1


def iso_ms(ts: float) -> str:
    """``2026-11-22T21:50:01.123Z``"""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Topics:
    base: str
    device: str
    discovery_prefix: str = "homeassistant"

    @property
    def availability(self) -> str:
        return f"{self.base}/{self.device}/availability"

    @property
    def stats(self) -> str:
        return f"{self.base}/{self.device}/stats"

    def emotions(self, camera: str) -> str:
        return f"{self.base}/{self.device}/{camera}/emotions"

    def state(self, camera: str) -> str:
        return f"{self.base}/{self.device}/{camera}/state"

    def status(self, camera: str) -> str:
        return f"{self.base}/{self.device}/{camera}/status"

    def discovery(self, camera: str) -> str:
        return f"{self.discovery_prefix}/sensor/{self.device}_{camera}_emotion/config"


def emotions_payload(
    device: str, camera: str, seq: int, ts: float, frame_ts: float, analysis: Analysis
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "device": device,
        "camera": camera,
        "seq": seq,
        "ts": iso_ms(ts),
        "frame_ts": iso_ms(frame_ts),
        "faces": [f.to_json() for f in analysis.faces],
        "timing_ms": analysis.timing_ms,
    }


def prediction_document(source: str, model_path: str | Path, analysis: Analysis) -> dict[str, Any]:
    """One image's faces, as ``fer-edge predict --json`` and ``POST /api/analyze`` answer."""
    return {"path": source, "model": Path(model_path).name, "faces": [f.to_json() for f in analysis.faces]}


def state_payload(analysis: Analysis, ts: float) -> dict[str, Any]:
    """Latest summary: face count and the most common emotion (ties: the most confident)."""
    dominant = None
    classified = [f for f in analysis.faces if f.emotion is not None]
    if classified:
        counts = Counter(f.emotion for f in classified)
        dominant = max(
            counts,
            key=lambda e: (counts[e], max(f.score or 0.0 for f in classified if f.emotion == e)),
        )
    return {"faces": len(analysis.faces), "dominant": dominant, "ts": iso_ms(ts)}


def discovery_payload(topics: Topics, camera: str) -> dict[str, Any]:
    """Home Assistant MQTT discovery for one camera's dominant-emotion sensor."""
    return {
        "name": f"{camera} emotion",
        "unique_id": f"fer_edge_{topics.device}_{camera}_emotion",
        "object_id": f"{topics.device}_{camera}_emotion",
        "state_topic": topics.state(camera),
        "value_template": "{{ value_json.dominant if value_json.dominant else 'none' }}",
        "json_attributes_topic": topics.state(camera),
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "icon": "mdi:emoticon-outline",
        "device": {
            "identifiers": [f"fer_edge_{topics.device}"],
            "name": f"fer-edge {topics.device}",
            "manufacturer": "fer-edge",
            "sw_version": __version__,
        },
    }
