"""Stable face ids across analysis ticks (greedy IoU matching) and optional score smoothing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_edge.preprocess import Box


def match_score(a: Box, b: Box) -> float:
    """How likely ``b`` is ``a`` one tick later: IoU, or for boxes that moved apart, a score
    below any real overlap that falls with centre distance (in box sides) and size change.

    At one analysis a second a walking face can move a whole box width between ticks, where
    IoU alone is zero and would give it a new id every tick.
    """
    overlap = iou(a, b)
    if overlap > 0:
        return 0.1 + 0.9 * overlap
    side = max(1.0, (a[2] + b[2]) / 2.0)
    dx = (a[0] + a[2] / 2.0) - (b[0] + b[2] / 2.0)
    dy = (a[1] + a[3] / 2.0) - (b[1] + b[3] / 2.0)
    distance = (dx * dx + dy * dy) ** 0.5 / side
    ratio = max(a[2], b[2]) / max(1.0, min(a[2], b[2]))
    if distance > 1.5 or ratio > 1.5:
        return 0.0
    return 0.1 * (1.0 - distance / 1.5)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``x, y, w, h`` boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    id: int
    box: Box
    scores: np.ndarray
    missed: int = 0


class FaceTracker:
    """Keeps ids while a face stays near its last box; smooths scores with an EMA if asked.

    Greedy matching on :func:`match_score`; a track survives ``max_missed`` ticks without a
    match, so one missed detection does not renumber a face.
    """

    def __init__(self, min_score: float = 0.01, max_missed: int = 2, smoothing: float = 0.0) -> None:
        self.min_score = min_score
        self.max_missed = max_missed
        self.smoothing = smoothing
        self._tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget every track (a scene change): the next faces get new ids and fresh scores."""
        self._tracks = []

    def update(self, boxes: list[Box], scores: np.ndarray) -> list[Track]:
        """Match this tick's faces to tracks; returns one track per input box, in input order.
        A row of NaN scores (a face not classified this tick) leaves its track's scores as they were."""
        pairs = sorted(
            (
                (match_score(t.box, b), ti, bi)
                for ti, t in enumerate(self._tracks)
                for bi, b in enumerate(boxes)
            ),
            reverse=True,
        )
        track_of: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, ti, bi in pairs:
            if overlap < self.min_score:
                break
            if ti in used or bi in track_of:
                continue
            used.add(ti)
            track = self._tracks[ti]
            track.box, track.missed = boxes[bi], 0
            if np.isnan(scores[bi]).any():  # not classified this tick (too small): keep its scores
                pass
            elif np.isnan(track.scores).any():
                track.scores = scores[bi].astype(np.float32)
            else:
                track.scores = self.smoothing * track.scores + (1 - self.smoothing) * scores[bi]
            track_of[bi] = track
        for ti, track in enumerate(self._tracks):
            if ti not in used:
                track.missed += 1
        for bi, box in enumerate(boxes):
            if bi not in track_of:
                track_of[bi] = Track(self._next_id, box, scores[bi].astype(np.float32))
                self._next_id += 1
                self._tracks.append(track_of[bi])
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        return [track_of[bi] for bi in range(len(boxes))]
