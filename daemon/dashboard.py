"""What the web page shows of each camera live: the last analysed frame, drawn.

Kept in memory, and only while someone looks at it: a camera box with no browser open keeps no
pixels, and a JPEG is drawn at most once per tick, when asked for, and never written anywhere.
(The page's charts read the per-minute history on disk: :mod:`fer_edge.daemon.history`.)
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

WATCHED_S = 10.0  # a snapshot asked for within this long: keep the frames coming
SNAPSHOT_WIDTH = 640  # snapshots are drawn at most this wide (a card, not a recording): ~1.7 ms

# one colour per emotion (BGR for OpenCV), the page's legend uses the same (as CSS in app.js)
COLOURS_BGR = {
    "angry": (60, 60, 220),
    "disgust": (60, 150, 60),
    "fear": (160, 60, 160),
    "happy": (40, 200, 240),
    "sad": (200, 120, 40),
    "surprise": (40, 140, 250),
    "neutral": (180, 180, 180),
}


@dataclass
class _Shown:
    gray: np.ndarray
    faces: list[dict[str, Any]]
    tick: int
    jpeg: bytes | None = None


class Snapshots:
    """The last analysed frame of each camera, kept only while a browser asks for it."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._frames: dict[str, _Shown] = {}
        self._asked: dict[str, float] = {}

    def wanted(self, camera: str) -> bool:
        """Whether the analysis loop should hand this camera's frames over (cheap to call)."""
        return time.monotonic() - self._asked.get(camera, -1e9) < WATCHED_S

    def offer(self, camera: str, gray: np.ndarray, faces: list[dict[str, Any]], tick: int) -> None:
        """A tick's frame and faces (called only when :meth:`wanted`). The frame is kept as is,
        not copied: analysis is done with it, and the next tick brings a new array."""
        with self._lock:
            self._frames[camera] = _Shown(gray, faces, tick)
            self._lock.notify_all()

    def jpeg(self, camera: str, wait_s: float = 0.0) -> bytes | None:
        """The camera's last analysed frame with its faces drawn, as JPEG. The first ask after a
        while has no frame kept: it waits up to ``wait_s`` for the next tick (None after)."""
        self._asked[camera] = time.monotonic()
        with self._lock:
            self._lock.wait_for(lambda: camera in self._frames, timeout=wait_s)
            shown = self._frames.get(camera)
            if shown is None:
                return None
            if shown.jpeg is None:  # drawn once per tick, however many pages ask
                shown.jpeg = render(shown.gray, shown.faces)
            return shown.jpeg

    def drop_unwatched(self) -> None:
        """Let go of the frames nobody has asked for lately."""
        with self._lock:
            for camera in [c for c in self._frames if not self.wanted(c)]:
                del self._frames[camera]


def render(gray: np.ndarray, faces: list[dict[str, Any]]) -> bytes:
    """The frame (luma, as analysed) with each face's box, track id and emotion drawn."""
    height, width = gray.shape[:2]
    scale = min(1.0, SNAPSHOT_WIDTH / width)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    for face in faces:
        x, y, w, h = (round(v * scale) for v in face["box"])
        emotion = face.get("emotion")
        colour = COLOURS_BGR.get(emotion or "", (255, 255, 255))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, 2)
        why_not = "turned away" if face.get("turned_away") else "too small"
        label = f"#{face['id']} {emotion} {face['score']:.2f}" if emotion else f"#{face['id']} {why_not}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        top = max(0, y - th - 8)
        cv2.rectangle(image, (x, top), (x + tw + 6, top + th + 8), colour, -1)
        cv2.putText(
            image, label, (x + 3, top + th + 3), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
        )
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return encoded.tobytes()
