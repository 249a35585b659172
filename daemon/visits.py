"""Visits: a tracked face's life from the tick it appears to the moment it is gone.

The emotions topic says what is in front of a camera this second; dashboards and automations ask
what happened ("someone stood at the door for 10 s looking angry"). A visit starts on the first
tick a face id is seen and ends once that id has not been seen for ``track_end_s`` of stream
time, with a summary built from the very per-tick results the emotions topic carried: dwell,
ticks seen, the share of ticks of each emotion, the dominant one, the strongest moment, and the
share of ticks the face looked at the camera. Frigate publishes the same new/end lifecycle for
its tracked objects; Home Assistant automations are built on such events.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from fer_edge.daemon.payloads import SCHEMA, iso_ms
from fer_edge.daemon.pipeline import FaceResult

TRACKS_SCHEMA = SCHEMA


@dataclass
class Visit:
    """One face id's visit so far."""

    id: int
    first_seen: float
    box: tuple[int, int, int, int]
    last_seen: float = 0.0
    ticks: int = 0
    emotions: Counter[str] = field(default_factory=Counter)
    looked: int = 0  # ticks with attention
    judged: int = 0  # ticks where attention could be told
    strongest: tuple[float, str, float] | None = None  # (score, emotion, frame time)

    def see(self, face: FaceResult, frame_ts: float) -> None:
        self.last_seen, self.box = frame_ts, face.box
        self.ticks += 1
        if face.emotion is not None and face.score is not None:
            self.emotions[face.emotion] += 1
            # the strongest moment: the most confident call of an emotion other than neutral
            # (a neutral visit's strongest moment is its most confident neutral)
            rank = (face.emotion != "neutral", face.score)
            if self.strongest is None or rank > (self.strongest[1] != "neutral", self.strongest[0]):
                self.strongest = (face.score, face.emotion, frame_ts)
        if face.attention is not None:
            self.judged += 1
            self.looked += int(face.attention)


class VisitTracker:
    """Turns one camera's per-tick faces into visit ``start`` and ``end`` documents
    (``event_type``), each published on the camera's ``tracks`` topic."""

    def __init__(self, device: str, camera: str, interval_s: float, track_end_s: float = 3.0) -> None:
        self.device, self.camera = device, camera
        self.interval_s, self.track_end_s = interval_s, track_end_s
        self.open: dict[int, Visit] = {}

    def observe(self, faces: list[FaceResult], frame_ts: float) -> list[dict[str, Any]]:
        """This tick's faces (at stream time ``frame_ts``): the documents of visits that start,
        then of visits that ended (not seen for ``track_end_s``)."""
        out = []
        for face in faces:
            visit = self.open.get(face.id)
            if visit is None:
                visit = self.open[face.id] = Visit(face.id, frame_ts, face.box)
                visit.see(face, frame_ts)
                out.append(self._start(visit))
            else:
                visit.see(face, frame_ts)
        return out + self.expire(frame_ts)

    def expire(self, now: float) -> list[dict[str, Any]]:
        """End the visits last seen more than ``track_end_s`` before ``now``."""
        gone = [v for v in self.open.values() if now - v.last_seen > self.track_end_s]
        return [self._end(v, "left") for v in gone]

    def close_all(self, reason: str = "shutdown") -> list[dict[str, Any]]:
        """End every open visit (the daemon stops, or the scene was cut): none is left unsaid."""
        return [self._end(v, reason) for v in list(self.open.values())]

    def _header(self, event: str, visit: Visit) -> dict[str, Any]:
        return {
            "schema": TRACKS_SCHEMA,
            "device": self.device,
            "camera": self.camera,
            "event_type": event,  # the key Home Assistant's MQTT event entity reads
            "id": visit.id,
            "first_seen": iso_ms(visit.first_seen),
        }

    def _start(self, visit: Visit) -> dict[str, Any]:
        return {**self._header("start", visit), "box": list(visit.box)}

    def _end(self, visit: Visit, reason: str) -> dict[str, Any]:
        del self.open[visit.id]
        called = sum(visit.emotions.values())
        shares = {e: round(n / called, 4) for e, n in visit.emotions.most_common()} if called else {}
        # the most frequent emotion; a tie goes to the strongest moment's
        strongest_emotion = visit.strongest[1] if visit.strongest else None
        dominant = (
            max(visit.emotions, key=lambda e: (visit.emotions[e], e == strongest_emotion)) if called else None
        )
        strongest = (
            {
                "emotion": visit.strongest[1],
                "score": round(visit.strongest[0], 4),
                "ts": iso_ms(visit.strongest[2]),
            }
            if visit.strongest
            else None
        )
        return {
            **self._header("end", visit),
            "last_seen": iso_ms(visit.last_seen),
            # each tick stands for one interval of time: a face seen on one tick was there about
            # one interval, so dwell is the span of its ticks plus one interval
            "dwell_s": round(visit.last_seen - visit.first_seen + self.interval_s, 2),
            "ticks": visit.ticks,
            "emotions": shares,
            "dominant": dominant,
            "strongest": strongest,
            "attention": round(visit.looked / visit.judged, 4) if visit.judged else None,
            "box": list(visit.box),
            "reason": reason,
        }
