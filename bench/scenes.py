"""Labelled faces pasted into camera-like frames: what the framing fit and the stream accuracy
benchmark measure the detectors and the whole pipeline on.

A face set's crops (FER2013's 48x48 faces are registered so the face fills the crop) are scaled to
the wanted side and pasted onto real photographic textures that scikit-image ships, so the truth
is known exactly: where each crop lies in the frame, and its label.
"""

from __future__ import annotations

import math
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


# --- the labelled scenes of bench --accuracy ----------------------------------------------------

WIDTH, HEIGHT, FPS = 1280, 720, 15
SCENE_S = 4
SIDE_RANGE = (40, 200)
BANDS = (("40-60", 40, 60), ("60-100", 60, 100), ("100-200", 100, SIDE_RANGE[1] + 1))  # [low, high)
SCENE_KINDS = ("flat", "textured")


@dataclass(frozen=True)
class SceneFace:
    index: int  # into the face set
    label: int
    side: int
    x: float  # crop's top-left at the scene's start
    y: float
    vx: float  # pixels per second
    vy: float

    def box(self, t: float) -> Box:
        return (round(self.x + self.vx * t), round(self.y + self.vy * t), self.side, self.side)


@dataclass(frozen=True)
class Scene:
    kind: str
    texture: str
    seed: int
    faces: tuple[SceneFace, ...]


def band(side: int) -> str:
    for name, low, high in BANDS:
        if low <= side < high:
            return name
    return "other"


def make_scenes(labels: np.ndarray, per_kind: int, faces_per_scene: int, seed: int) -> list[Scene]:
    """``per_kind`` scenes of each kind, interleaved, each with distinct random faces whose
    whole 4-second paths stay apart and inside the frame."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    used = 0
    scenes = []
    for i in range(per_kind * len(SCENE_KINDS)):
        kind = SCENE_KINDS[i % len(SCENE_KINDS)]
        texture = "flat" if kind == "flat" else TEXTURES[int(rng.integers(len(TEXTURES)))]
        placed: list[SceneFace] = []
        paths: list[Box] = []
        while len(placed) < faces_per_scene:
            side = round(math.exp(rng.uniform(math.log(SIDE_RANGE[0]), math.log(SIDE_RANGE[1]))))
            speed, angle = rng.uniform(4, 16), rng.uniform(0, 2 * math.pi)
            vx, vy = speed * math.cos(angle), speed * math.sin(angle)
            reach_x, reach_y = abs(vx) * SCENE_S, abs(vy) * SCENE_S
            for _ in range(200):
                x = rng.uniform(reach_x if vx < 0 else 0, WIDTH - side - (reach_x if vx > 0 else 0))
                y = rng.uniform(reach_y if vy < 0 else 0, HEIGHT - side - (reach_y if vy > 0 else 0))
                path = (
                    round(min(x, x + vx * SCENE_S)),
                    round(min(y, y + vy * SCENE_S)),
                    round(side + reach_x),
                    round(side + reach_y),
                )
                gap = side // 3
                if all(_apart(path, other, gap) for other in paths):
                    index = int(order[used % len(order)])
                    used += 1
                    placed.append(SceneFace(index, int(labels[index]), side, x, y, vx, vy))
                    paths.append(path)
                    break
            else:
                break  # no room left for a face this size: the scene keeps the faces it has
        scenes.append(Scene(kind, texture, int(rng.integers(1 << 31)), tuple(placed)))
    return scenes


def _apart(a: Box, b: Box, gap: int) -> bool:
    return (
        a[0] + a[2] + gap <= b[0]
        or b[0] + b[2] + gap <= a[0]
        or a[1] + a[3] + gap <= b[1]
        or b[1] + b[3] + gap <= a[1]
    )


def render(scenes: list[Scene], faces: np.ndarray) -> Iterator[np.ndarray]:
    """Every frame of the clip (gray), with camera-like grain."""
    grain_rng = np.random.default_rng(7)
    grain = [grain_rng.normal(0, 2.0, (HEIGHT, WIDTH)).astype(np.float32) for _ in range(6)]
    for scene in scenes:
        rng = np.random.default_rng(scene.seed)
        backdrop = (
            np.full((HEIGHT, WIDTH), 118, np.uint8)
            if scene.texture == "flat"
            else background(scene.texture, WIDTH, HEIGHT, rng)
        )
        for k in range(SCENE_S * FPS):
            frame = backdrop.copy()
            for face in scene.faces:
                paste(frame, faces[face.index], face.box(k / FPS))
            yield np.clip(frame + grain[k % len(grain)], 0, 255).astype(np.uint8)


@dataclass
class LabelledFaces:
    """The benchmark's faces: ``labels`` are what results are scored against (the FER+ majority
    when the data has FER+ votes, else the FER2013 label); ``fer2013`` the FER2013 labels beside
    them (votes only)."""

    images: np.ndarray
    labels: np.ndarray
    split: str
    against: str
    fer2013: np.ndarray | None = None


def load_faces(data: str, split: str | None) -> LabelledFaces:
    from fer_edge.training.data import load_dataset
    from fer_edge.training.ferplus import UNSCORED, majority_labels

    name, chosen = load_dataset(data).get(split)
    if chosen.votes is None:
        return LabelledFaces(chosen.images, chosen.labels, name, "fer2013")
    majority = majority_labels(chosen.votes)
    keep = majority != UNSCORED  # FER+'s protocol: unknown / not-a-face (and contempt) left out
    return LabelledFaces(chosen.images[keep], majority[keep], name, "ferplus-majority", chosen.labels[keep])
