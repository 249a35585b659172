"""Labelled faces pasted into camera-like frames: what the framing fit and the stream accuracy
benchmark measure the detectors and the whole pipeline on.

A face set's crops (FER2013's 48x48 faces are registered so the face fills the crop) are scaled to
the wanted side and pasted onto real photographic textures that scikit-image ships, so the truth
is known exactly: where each crop lies in the frame, and its label.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from fer_edge.preprocess import Box

# scikit-image's photographs and textures with no face in them (astronaut, camera and chelsea
# have one, a person's or a cat's; coins has portraits on the coins)
TEXTURES = ("brick", "grass", "gravel", "coffee", "rocket", "moon", "page", "text", "hubble_deep_field")


def texture(name: str) -> np.ndarray:
    """A scikit-image sample picture as gray uint8 (``flat`` is a uniform mid-gray)."""
    if name == "flat":
        return np.full((64, 64), 128, np.uint8)
    from skimage import data

    image = getattr(data, name)()
    if image.ndim == 3:
        image = cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    return np.asarray(image, np.uint8)


def background(name: str, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A ``width`` x ``height`` gray background cut from texture ``name`` (random part, random
    mirror), resized as needed."""
    source = texture(name)
    if rng.random() < 0.5:
        source = source[:, ::-1]
    h, w = source.shape
    # a random window of at least half the picture, keeping the frame's aspect ratio
    scale = rng.uniform(0.5, 1.0)
    ww = max(8, min(w, round(min(w, h * width / height) * scale)))
    wh = max(8, min(h, round(ww * height / width)))
    x0, y0 = int(rng.integers(0, w - ww + 1)), int(rng.integers(0, h - wh + 1))
    return cv2.resize(np.ascontiguousarray(source[y0 : y0 + wh, x0 : x0 + ww]), (width, height))


def paste(frame: np.ndarray, face: np.ndarray, box: Box) -> None:
    """Scale ``face`` (a square crop) to ``box`` and paste it into ``frame`` in place (clipped)."""
    x, y, side, _ = box
    scaled = cv2.resize(
        face, (side, side), interpolation=cv2.INTER_CUBIC if side > face.shape[0] else cv2.INTER_AREA
    )
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + side), min(h, y + side)
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = scaled[y0 - y : y1 - y, x0 - x : x1 - x]


@dataclass(frozen=True)
class Placed:
    """A face in a frame: its index in the face set and its crop's box in frame pixels."""

    index: int
    box: Box


def place_apart(
    sides: list[int], width: int, height: int, rng: np.random.Generator, gap: float = 0.3, tries: int = 200
) -> list[Box] | None:
    """Non-overlapping square boxes of ``sides`` inside the frame (``gap`` sides apart), or None."""
    boxes: list[Box] = []
    for side in sides:
        for _ in range(tries):
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            pad = round(gap * side)
            if all(
                x + side + pad <= bx or bx + bs + pad <= x or y + side + pad <= by or by + bs + pad <= y
                for bx, by, bs, _ in boxes
            ):
                boxes.append((x, y, side, side))
                break
        else:
            return None
    return boxes


def still_frames(
    faces: np.ndarray,
    count: int,
    width: int,
    height: int,
    side_range: tuple[int, int],
    rng: np.random.Generator,
    textures: tuple[str, ...] = TEXTURES,
    per_frame: int = 1,
) -> Iterator[tuple[np.ndarray, list[Placed]]]:
    """``count`` frames, each with ``per_frame`` random faces of random sides on a texture."""
    for _ in range(count):
        frame = background(textures[int(rng.integers(len(textures)))], width, height, rng)
        sides = [int(rng.integers(side_range[0], side_range[1] + 1)) for _ in range(per_frame)]
        boxes = place_apart(sides, width, height, rng) or place_apart(sides[:1], width, height, rng) or []
        placed = []
        for box in boxes:
            index = int(rng.integers(len(faces)))
            paste(frame, faces[index], box)
            placed.append(Placed(index, box))
        yield frame, placed
