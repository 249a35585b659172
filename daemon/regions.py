"""Where a face and its person can be: the geometry the scan planner reasons with.

A person is a head over a body: motion around and below a known face is that person moving, and
a face lost this tick can have gone at most a few of its widths. These are the boxes and tests
for that, in source pixels, kept apart from the planner's state so each reads alone.
"""

from __future__ import annotations

from fer_edge.daemon.detect import tile_grid
from fer_edge.preprocess import Box

# a known face's person: 1.5 face sides either side (shoulders, swinging arms) from the face's top
# down (body, legs; its hair is in the face's own region): motion there is that person, not a new
# face. Not above: another person's head, farther away, is higher in the picture.
PERSON_SIDES, PERSON_ABOVE = 1.5, 0.0
FOLLOW_REACH = 8.0  # face widths a face may move in a tick and still be the same face (a runner)
SAME_SIZE = (0.75, 1.33)  # a face found where one was predicted is that face only at about its size


def person_region(face: Box, width: int, height: int) -> Box:
    """Where the person a face belongs to can move: around the head and everything below it."""
    x, y, w, h = face
    x0, y0 = max(0, round(x - PERSON_SIDES * w)), max(0, round(y - PERSON_ABOVE * h))
    x1 = min(width, round(x + w + PERSON_SIDES * w))
    return (x0, y0, max(0, x1 - x0), height - y0)


def centre_shift(before: Box, after: Box) -> tuple[float, float]:
    """How far a box's centre moved."""
    return (
        after[0] + after[2] / 2 - before[0] - before[2] / 2,
        after[1] + after[3] / 2 - before[1] - before[3] / 2,
    )


def head_first(region: Box) -> list[Box]:
    """A region taller than wide as its top square (where a head would be), then the rest."""
    x, y, w, h = region
    if h <= 1.5 * w:
        return [region]
    return [(x, y, w, w), (x, y + w, w, h - w)]


def covered(region: Box, people: list[Box], share: float = 0.9) -> bool:
    """Whether ``share`` of ``region`` lies inside the ``people`` regions (overlaps summed)."""
    x, y, w, h = region
    inside = 0
    for px, py, pw, ph in people:
        ix = max(0, min(x + w, px + pw) - max(x, px))
        iy = max(0, min(y + h, py + ph) - max(y, py))
        inside += ix * iy
    return inside >= share * w * h > 0


def lost_within_reach(region: Box, lost: list[Box]) -> Box | None:
    """The lost face nearest ``region`` that could have moved into it in a tick (within
    :data:`FOLLOW_REACH` of its widths) and that it is large enough to hold; None if none."""
    x, y, w, h = region
    best, nearest = None, None
    for face in lost:
        fx, fy = face[0] + face[2] / 2, face[1] + face[3] / 2
        dx, dy = max(x - fx, 0, fx - x - w), max(y - fy, 0, fy - y - h)  # to the region's edge
        distance = (dx * dx + dy * dy) ** 0.5
        fits = min(w, h) >= SAME_SIZE[0] * min(face[2], face[3])
        if fits and distance <= FOLLOW_REACH * face[2] and (nearest is None or distance < nearest):
            best, nearest = face, distance
    return best


def overlap(a: Box, b: Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def area(boxes: list[Box]) -> int:
    return sum(w * h for _x, _y, w, h in boxes)


def frame_parts(width: int, height: int) -> list[Box]:
    """The whole frame as overlapping squares half its height a side (eight for 16:9), searched a
    few a tick when everything moves; neighbours share a quarter side, so a face up to that size
    lies whole inside one."""
    side = max(1, height // 2)
    return tile_grid((0, 0, width, height), side, side // 4)


def in_frame(box: Box, velocity: tuple[float, float], width: int, height: int) -> bool:
    """Whether ``box`` moved by ``velocity`` keeps its centre inside the frame."""
    cx = box[0] + box[2] / 2 + velocity[0]
    cy = box[1] + box[3] / 2 + velocity[1]
    return 0 <= cx < width and 0 <= cy < height
