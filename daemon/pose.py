"""Head pose from BlazeFace's six keypoints: is the face looking at the camera?

BlazeFace gives, per face, the subject's right eye, left eye, nose tip, mouth centre, right ear
and left ear (a subject's right eye appears on the image's left). Two angles follow:

- roll: the tilt of the line through the eyes;
- yaw: with the eyes levelled, the nose tip's offset from the eyes' midpoint over the distance
  between the eyes. A head turned by ``yaw`` moves the nose tip, which stands about
  ``NOSE_DEPTH`` eye-distances in front of the eyes, by ``depth * sin(yaw)`` while the eyes'
  distance shrinks by ``cos(yaw)``: ``offset / distance = NOSE_DEPTH * tan(yaw)``.

Signs: yaw is positive when the nose lies right of the eyes' midpoint in the image (the person
turns towards the image's right), roll is positive when the image-right eye is lower. A mirrored
face gives the opposite yaw and roll.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# The nose tip stands about 21 mm in front of the pupils, which are about 63 mm apart
# (adult anthropometric means): 0.33 eye-distances.
NOSE_DEPTH = 0.33
RIGHT_EYE, LEFT_EYE, NOSE = 0, 1, 2

Keypoints = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class HeadPose:
    yaw_deg: float
    roll_deg: float


def head_pose(keypoints: Keypoints | None) -> HeadPose | None:
    """The head's yaw and roll from BlazeFace's keypoints (``None`` without keypoints, or when the
    eyes coincide)."""
    if keypoints is None or len(keypoints) < 3:
        return None
    (rx, ry), (lx, ly), (nx, ny) = keypoints[RIGHT_EYE], keypoints[LEFT_EYE], keypoints[NOSE]
    dx, dy = lx - rx, ly - ry
    distance = math.hypot(dx, dy)
    if distance < 1e-6:
        return None
    roll = math.atan2(dy, dx)
    # the nose's offset from the eyes' midpoint, along the (levelled) line through the eyes
    mx, my = (rx + lx) / 2.0, (ry + ly) / 2.0
    along = ((nx - mx) * dx + (ny - my) * dy) / distance
    yaw = math.atan((along / distance) / NOSE_DEPTH)
    return HeadPose(round(math.degrees(yaw), 1), round(math.degrees(roll), 1))


def mirror_keypoints(keypoints: Keypoints, width: float) -> Keypoints:
    """Keypoints found on an image mirrored left to right, back in the image's own orientation:
    x flips, and each left/right pair (eyes, ears) swaps names."""
    flipped = [(width - x, y) for x, y in keypoints]
    order = (1, 0, 2, 3, 5, 4)[: len(flipped)]
    return tuple(flipped[i] for i in order)
