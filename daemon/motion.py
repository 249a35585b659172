"""The motion map: which parts of a frame changed since the last tick.

Motion is judged on a 1/8-size luma thumbnail: each of its pixels averages 64 source pixels, so
sensor noise averages away, and the map of a 1080p frame costs well under a millisecond. The scan
planner (``fer_edge.daemon.scan``) searches for faces only where this map says something moved.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_edge.preprocess import Box

THUMB_DIVISOR = 8  # thumbnail side = frame side / 8: noise averages over 64 pixels
MOTION_LEVEL = 12  # luma levels a thumbnail pixel must change by to count as motion
MOTION_MIN_PIXELS = 2  # changed thumbnail pixels (each 8x8 source pixels) that make a motion region


def thumbnail(gray: np.ndarray) -> np.ndarray:
    """The 1/``THUMB_DIVISOR`` luma thumbnail motion is judged on: a 2x bilinear step (an exact
    2x2 mean) then an area step, the same 64-pixel average as one INTER_AREA pass at under half
    its cost (~0.3 ms for 1080p)."""
    height, width = gray.shape[:2]
    thumb_size = (max(1, width // THUMB_DIVISOR), max(1, height // THUMB_DIVISOR))
    half = cv2.resize(gray, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(half, thumb_size, interpolation=cv2.INTER_AREA)


def changed_pixels(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Thumbnail pixels (uint8 0/1) whose luma moved by at least ``MOTION_LEVEL``."""
    return (cv2.absdiff(current, previous) >= MOTION_LEVEL).astype(np.uint8)


def _thumb_slice(box: Box) -> tuple[slice, slice]:
    x, y, w, h = box
    return (
        slice(y // THUMB_DIVISOR, (y + h) // THUMB_DIVISOR + 1),
        slice(x // THUMB_DIVISOR, (x + w) // THUMB_DIVISOR + 1),
    )


def _inner_slice(box: Box) -> tuple[slice, slice]:
    """The thumbnail pixels that lie wholly inside ``box``."""
    x, y, w, h = box
    d = THUMB_DIVISOR
    return slice(-(-y // d), (y + h) // d), slice(-(-x // d), (x + w) // d)


def region_moved(changed: np.ndarray, region: Box) -> bool:
    """Whether anything changed inside ``region`` (source pixels)."""
    return int(np.count_nonzero(changed[_thumb_slice(region)])) >= MOTION_MIN_PIXELS


def motion_boxes(changed: np.ndarray, known: list[Box], grow_px: int) -> list[Box]:
    """Boxes (in source pixels) around changed thumbnail pixels outside the ``known`` regions."""
    changed = changed.copy()
    for region in known:
        changed[_thumb_slice(region)] = 0
    if int(np.count_nonzero(changed)) < MOTION_MIN_PIXELS:
        return []
    changed = cv2.dilate(changed, np.ones((3, 3), np.uint8))
    count, _labels, stats, _centroids = cv2.connectedComponentsWithStats(changed, connectivity=8)
    height, width = changed.shape[0] * THUMB_DIVISOR, changed.shape[1] * THUMB_DIVISOR
    boxes = []
    for x, y, w, h, area in stats[1:count]:
        if area >= MOTION_MIN_PIXELS:
            bx, by = int(x) * THUMB_DIVISOR, int(y) * THUMB_DIVISOR
            bw, bh = int(w) * THUMB_DIVISOR, int(h) * THUMB_DIVISOR
            x0, y0 = max(0, bx - grow_px), max(0, by - grow_px)
            x1, y1 = min(width, bx + bw + grow_px), min(height, by + bh + grow_px)
            boxes.append((x0, y0, x1 - x0, y1 - y0))
    return boxes


class Backdrop:
    """What each thumbnail pixel looked like when the detector last searched it and found no
    face there: the scene's backdrop as far as faces go.

    Motion that only reveals the backdrop (a person walked on, and what was behind them shows
    again) cannot be a new face: a face there would make the pixels differ from the backdrop.
    So what moved, and what changed since the last whole-frame look, is searched only where the
    picture now differs from the backdrop, or where no search has seen the backdrop yet. A
    searched area learns the backdrop except where people found this tick are (their faces and
    bodies are not backdrop; the pixels there keep what an earlier search saw, if any)."""

    def __init__(self) -> None:
        self._values: np.ndarray | None = None
        self._known: np.ndarray | None = None

    def reset(self, thumb: np.ndarray, people: list[Box], fresh: bool) -> None:
        """The whole frame was searched. ``fresh``: a new scene (the first frame, a cut, the
        lights), so what earlier searches saw inside ``people`` no longer holds either."""
        if fresh or self._values is None or self._values.shape != thumb.shape:
            self._values = thumb.copy()
            self._known = np.zeros(thumb.shape, bool)
        self.learn(thumb, [(0, 0, thumb.shape[1] * THUMB_DIVISOR, thumb.shape[0] * THUMB_DIVISOR)], people)

    def learn(self, thumb: np.ndarray, searched: list[Box], people: list[Box]) -> None:
        """``searched`` areas were searched in full this tick; ``people`` are where the faces found
        are, with their bodies."""
        if self._values is None or self._known is None or self._values.shape != thumb.shape or not searched:
            return
        mask = np.zeros(thumb.shape, bool)
        for box in searched:
            mask[_inner_slice(box)] = True
        for box in people:
            mask[_thumb_slice(box)] = False
        self._values[mask] = thumb[mask]
        self._known |= mask

    def revealed(self, thumb: np.ndarray) -> np.ndarray:
        """Thumbnail pixels (bool) that show the backdrop as searched."""
        if self._values is None or self._known is None or self._values.shape != thumb.shape:
            return np.zeros(thumb.shape, bool)
        return self._known & (cv2.absdiff(thumb, self._values) < MOTION_LEVEL)
