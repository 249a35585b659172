"""The MQTT contract's topics and JSON documents (the README's topic table), built in one place."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_edge import __version__
from fer_edge.daemon.pipeline import Analysis
from fer_edge.labels import LABELS

SCHEMA = 2  # 2: per-face yaw_deg, roll_deg, attention, turned_away; the tracks topic


def iso_ms(ts: float) -> str:
    """``2026-11-22T21:50:01.123Z``"""
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """``iso_ms``'s inverse: a contract timestamp (``...Z``) as seconds since the epoch."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


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

    def tracks(self, camera: str) -> str:
        """Visits: a ``start`` and an ``end`` document per tracked face (QoS 1, spooled)."""
        return f"{self.base}/{self.device}/{camera}/tracks"

    def discovery_topics(self, camera: str) -> list[str]:
        """Every Home Assistant discovery topic of one camera's entities."""
        return [self._discovery(component, f"{camera}_{entity}") for component, entity in CAMERA_ENTITIES]

    @property
    def box_discovery_topic(self) -> str:
        """The box's own entity (spool depth)."""
        return self._discovery("sensor", "spool")

    def _discovery(self, component: str, entity: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.device}_{entity}/config"


# (Home Assistant component, entity suffix) of each camera's entities, in discovery order
CAMERA_ENTITIES = (
    ("sensor", "emotion"),
    ("sensor", "faces"),
    ("binary_sensor", "stream"),
    ("event", "visits"),
    ("sensor", "people_today"),
)


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


def state_payload(analysis: Analysis, ts: float, people_today: int = 0) -> dict[str, Any]:
    """Latest summary: face count, the most common emotion (ties: the most confident), and the
    people seen today (visits since local midnight)."""
    dominant = None
    classified = [f for f in analysis.faces if f.emotion is not None]
    if classified:
        counts = Counter(f.emotion for f in classified)
        dominant = max(
            counts,
            key=lambda e: (counts[e], max(f.score or 0.0 for f in classified if f.emotion == e)),
        )
    return {
        "faces": len(analysis.faces),
        "dominant": dominant,
        "people_today": people_today,
        "ts": iso_ms(ts),
    }


def _device(topics: Topics) -> dict[str, Any]:
    """One Home Assistant device per box; its cameras' entities are named after the camera."""
    return {
        "identifiers": [f"fer_edge_{topics.device}"],
        "name": f"fer-edge {topics.device}",
        "manufacturer": "fer-edge",
        "model": "emotion recognition box",
        "sw_version": __version__,
    }


def _entity(topics: Topics, key: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "unique_id": f"fer_edge_{topics.device}_{key}",
        "object_id": f"{topics.device}_{key}",
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": _device(topics),
        "origin": {"name": "fer-edge", "sw_version": __version__},
    }


def discovery_payload(topics: Topics, camera: str) -> dict[str, Any]:
    """The camera's dominant-emotion sensor: an enum, so automations can pick from its options."""
    return {
        **_entity(topics, f"{camera}_emotion", f"{camera} emotion"),
        "state_topic": topics.state(camera),
        "value_template": "{{ value_json.dominant if value_json.dominant else 'none' }}",
        "json_attributes_topic": topics.state(camera),
        "device_class": "enum",
        "options": [*LABELS, "none"],
        "icon": "mdi:emoticon-outline",
    }


def discovery_payloads(topics: Topics, camera: str) -> dict[str, dict[str, Any]]:
    """Every discovery document of one camera, by topic: the emotion (enum), the face count (a
    measurement, so history graphs and statistics work) and the stream's connectivity."""
    emotion_topic, faces_topic, stream_topic, visits_topic, people_topic = topics.discovery_topics(camera)
    return {
        emotion_topic: discovery_payload(topics, camera),
        faces_topic: {
            **_entity(topics, f"{camera}_faces", f"{camera} faces"),
            "state_topic": topics.state(camera),
            "value_template": "{{ value_json.faces }}",
            "state_class": "measurement",
            "unit_of_measurement": "faces",
            "icon": "mdi:account-multiple",
        },
        stream_topic: {
            **_entity(topics, f"{camera}_stream", f"{camera} stream"),
            "state_topic": topics.status(camera),
            "value_template": "{{ 'ON' if value == 'streaming' else 'OFF' }}",
            "device_class": "connectivity",
            "entity_category": "diagnostic",
        },
        # visits: the tracks topic's documents as they are (their event_type is start or end;
        # every other key, dwell_s, dominant, emotions, ..., becomes an attribute of the event)
        visits_topic: {
            **_entity(topics, f"{camera}_visits", f"{camera} visits"),
            "state_topic": topics.tracks(camera),
            "event_types": ["start", "end"],
            "icon": "mdi:account-clock",
        },
        # a count that starts again at local midnight: total_increasing reads the drop as a new cycle
        people_topic: {
            **_entity(topics, f"{camera}_people_today", f"{camera} people today"),
            "state_topic": topics.state(camera),
            "value_template": "{{ value_json.people_today }}",
            "state_class": "total_increasing",
            "unit_of_measurement": "people",
            "icon": "mdi:account-group",
        },
    }


def box_discovery_payload(topics: Topics) -> dict[str, Any]:
    """The box's spool depth: results waiting for the broker (non-zero only in an outage)."""
    return {
        **_entity(topics, "spool", "spool depth"),
        "state_topic": topics.stats,
        "value_template": "{{ value_json.spool.depth }}",
        "state_class": "measurement",
        "unit_of_measurement": "results",
        "entity_category": "diagnostic",
        "icon": "mdi:tray-full",
    }
