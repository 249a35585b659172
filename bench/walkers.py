"""Camera-like scenes for the benchmarks: people with a head, shoulders, arms and legs walking at
1-1.5 m/s across a textured backdrop, under sensor grain.

A face alone on a flat backdrop flatters a face detector's motion search: a real person moves
hair, shoulders, arms and legs, and a real backdrop has edges and texture that a detector must
look at and reject. The heads are the bundled face crop (cut to a head's oval); bodies are drawn
(a striped shirt, swinging arms and legs), with the stride at a walker's 2 steps a second. Every
walker goes across the frame and back a whole number of times per clip, so the clip loops without
a jump. Distances: 320 pixels a metre for a face of 95 pixels (scale 1), in proportion otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from fer_edge.daemon.democlip import FACE_BOX_IN_IMAGE, face_image

PIXELS_PER_METRE = 320.0  # at scale 1 (a 95 px face): a 1920 px frame is 6 m across
STEPS_PER_S = 2.0


@dataclass(frozen=True)
class Walker:
    """A person whose face is the bundled face at ``scale``, head top at ``y``, walking at
    about ``speed`` m/s, starting ``phase`` (0..1) of the way along the path."""

    scale: float = 1.0
    y: float = 250.0
    speed: float = 1.2
    phase: float = 0.0
    shirt: tuple[int, int, int] = (150, 80, 60)


def one_walker() -> list[Walker]:
    return [Walker()]


def three_walkers() -> list[Walker]:
    return [
        Walker(scale=1.0, y=260, speed=1.2, phase=0.0, shirt=(150, 80, 60)),
        Walker(scale=0.8, y=200, speed=1.4, phase=0.35, shirt=(60, 120, 170)),
        Walker(scale=0.65, y=160, speed=1.0, phase=0.7, shirt=(90, 150, 90)),
    ]


def textured_backdrop(width: int, height: int, seed: int = 1) -> np.ndarray:
    """A shop-like backdrop: uneven light, fine texture, shelves and posters (BGR)."""
    rng = np.random.default_rng(seed)
    light = cv2.resize(rng.uniform(70, 170, (6, 10)).astype(np.float32), (width, height), cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 18, (height, width)).astype(np.float32), (0, 0), 1.2)
    gray = np.clip(light + grain, 0, 255).astype(np.uint8)
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    for x in range(0, width, max(1, width // 9)):  # shelving uprights
        cv2.rectangle(image, (x, 0), (x + width // 80, height), (60, 60, 70), -1)
    for y in range(height // 6, height, height // 5):  # shelves
        cv2.line(image, (0, y), (width, y), (200, 200, 190), max(1, height // 150))
    for _ in range(12):  # posters and boxes
        x, y = int(rng.integers(0, width - 120)), int(rng.integers(0, height - 120))
        w, h = int(rng.integers(40, 160)), int(rng.integers(30, 140))
        colour = tuple(int(c) for c in rng.integers(30, 230, 3))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1)
    return image


def _head(face: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The face crop at ``scale`` and an oval mask of its head (face and hair)."""
    side = round(face.shape[0] * scale)
    head = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    fx, fy, fw, fh = (v * scale for v in FACE_BOX_IN_IMAGE)
    mask = np.zeros((side, side), np.uint8)
    centre = (round(fx + fw / 2), round(fy + fh * 0.42))
    cv2.ellipse(mask, centre, (round(fw * 0.68), round(fh * 0.82)), 0, 0, 360, 255, -1)
    return head, mask


def _position(walker: Walker, t: float, clip_s: float, width: int, body: int) -> tuple[float, int]:
    """(x of the head crop's left edge, direction) at ``t``: across and back a whole number of
    times per clip, at close to the walker's speed."""
    travel = max(1.0, width - body)
    if walker.speed <= 0:
        return travel * walker.phase, 1  # standing
    pixels_per_s = walker.speed * PIXELS_PER_METRE * walker.scale
    laps = max(1, round(pixels_per_s * clip_s / (2 * travel)))
    u = (t / clip_s * laps + walker.phase) % 1.0
    return (travel * 2 * u, 1) if u < 0.5 else (travel * (2 - 2 * u), -1)


def draw_walker(frame: np.ndarray, face: np.ndarray, walker: Walker, t: float, clip_s: float) -> None:
    height, width = frame.shape[:2]
    head, mask = _head(face, walker.scale)
    side = head.shape[0]
    fw = FACE_BOX_IN_IMAGE[2] * walker.scale
    x, _direction = _position(walker, t, clip_s, width, side)
    bob = 4 * walker.scale * math.sin(2 * math.pi * STEPS_PER_S * t)
    x0, y0 = round(x), round(walker.y + bob)
    centre = x0 + side / 2
    swing = math.radians(22) * math.sin(math.pi * STEPS_PER_S * t)
    neck = y0 + round(0.70 * side)
    shoulder_w, torso_h, limb = 1.35 * fw, 3.0 * fw, 3.2 * fw
    hip = neck + torso_h
    torso = np.array(
        [
            (centre - shoulder_w, neck),
            (centre + shoulder_w, neck),
            (centre + 0.9 * shoulder_w, hip),
            (centre - 0.9 * shoulder_w, hip),
        ],
        np.int32,
    )
    shirt = walker.shirt
    for leg, sign in ((0.45, 1), (-0.45, -1)):
        start = (round(centre + leg * shoulder_w), round(hip))
        end = (round(start[0] + sign * limb * math.sin(swing)), round(hip + limb * math.cos(swing)))
        cv2.line(frame, start, end, (50, 45, 40), max(2, round(0.42 * fw)))
    for arm, sign in ((1, -1), (-1, 1)):
        start = (round(centre + arm * shoulder_w * 0.95), round(neck + 0.15 * fw))
        end = (
            round(start[0] + sign * 0.8 * limb * math.sin(swing)),
            round(start[1] + 0.8 * limb * math.cos(swing)),
        )
        cv2.line(frame, start, end, tuple(int(c * 0.8) for c in shirt), max(2, round(0.32 * fw)))
    cv2.fillConvexPoly(frame, torso, shirt)
    for stripe in np.arange(neck + 0.3 * fw, hip, 0.45 * fw):  # a striped shirt: texture that moves
        cv2.line(
            frame,
            (round(centre - 0.9 * shoulder_w), round(stripe)),
            (round(centre + 0.9 * shoulder_w), round(stripe)),
            tuple(int(c * 0.6) for c in shirt),
            max(1, round(0.1 * fw)),
        )
    # the head over the shoulders, cut to its oval
    hx0, hy0 = max(0, x0), max(0, y0)
    hx1, hy1 = min(width, x0 + side), min(height, y0 + side)
    if hx1 <= hx0 or hy1 <= hy0:
        return
    crop = head[hy0 - y0 : hy1 - y0, hx0 - x0 : hx1 - x0]
    keep = mask[hy0 - y0 : hy1 - y0, hx0 - x0 : hx1 - x0] > 0
    frame[hy0:hy1, hx0:hx1][keep] = crop[keep]


def walker_frames(
    walkers: list[Walker], seconds: float, width: int, height: int, fps: int, noise: float = 4.0
) -> Iterator[np.ndarray]:
    """The clip's BGR frames: the backdrop, the walkers in depth order (far first), grain."""
    face = face_image()
    backdrop = textured_backdrop(width, height)
    rng = np.random.default_rng(0)
    grain = [rng.normal(0, noise, (height, width, 1)).astype(np.int16) for _ in range(8)]
    ordered = sorted(walkers, key=lambda w: w.scale)
    for i in range(round(seconds * fps)):
        frame = backdrop.copy()
        for walker in ordered:
            draw_walker(frame, face, walker, i / fps, seconds)
        yield np.clip(frame + grain[i % len(grain)], 0, 255).astype(np.uint8)
