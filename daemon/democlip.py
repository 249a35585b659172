"""Synthetic camera footage with real faces: the demo, the tests and the benchmarks all use it.

The face is the astronaut portrait that scikit-image ships (NASA, public domain); a crop of it is
bundled so a camera box without scikit-image can run ``fer-edge run --demo`` too. Faces move and
bounce across the frame so trackers, detectors and the newest-frame logic are exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

# Where the face sits inside FACE_IMAGE (x, y, w, h), as OpenCV's Haar cascade finds it.
FACE_BOX_IN_IMAGE = (57, 46, 95, 95)


def face_image() -> np.ndarray:
    """The bundled face crop (BGR)."""
    from importlib.resources import files

    data = files("fer_edge").joinpath("assets/face.jpg").read_bytes()
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise RuntimeError("the bundled face image is unreadable")
    return image


@dataclass(frozen=True)
class Sprite:
    """A face pasted at ``scale``, starting at ``(x, y)`` and moving ``(vx, vy)`` pixels/s."""

    scale: float = 1.0
    x: float = 0.0
    y: float = 0.0
    vx: float = 0.0
    vy: float = 0.0


def _bounce(start: float, velocity: float, t: float, span: float) -> float:
    if span <= 0:
        return 0.0
    pos = (start + velocity * t) % (2 * span)
    return pos if pos <= span else 2 * span - pos


def sprite_origin(sprite: Sprite, t: float, width: int, height: int, side: int) -> tuple[int, int]:
    return (
        round(_bounce(sprite.x, sprite.vx, t, width - side)),
        round(_bounce(sprite.y, sprite.vy, t, height - side)),
    )


def face_boxes(
    sprites: list[Sprite], t: float, width: int, height: int, image_side: int = 210
) -> list[tuple[int, int, int, int]]:
    """Where each sprite's face is at time ``t``, in frame pixels (for checking detections)."""
    boxes = []
    for s in sprites:
        side = round(image_side * s.scale)
        x, y = sprite_origin(s, t, width, height, side)
        fx, fy, fw, fh = (round(v * s.scale) for v in FACE_BOX_IN_IMAGE)
        boxes.append((x + fx, y + fy, fw, fh))
    return boxes


def render_frame(face: np.ndarray, sprites: list[Sprite], t: float, width: int, height: int) -> np.ndarray:
    """One BGR frame: a plain backdrop with every sprite pasted at its place at time ``t``."""
    frame = np.full((height, width, 3), (96, 110, 120), np.uint8)
    for s in sprites:
        side = round(face.shape[0] * s.scale)
        sprite = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
        x, y = sprite_origin(s, t, width, height, side)
        frame[y : y + side, x : x + side] = sprite[: height - y, : width - x]
    return frame


def _sensor_noise(width: int, height: int, sigma: float, count: int = 8) -> list[np.ndarray]:
    """A few frames of camera-like noise (cycled): flat synthetic video decodes unrealistically
    cheaply, which would flatter every decoding measurement."""
    rng = np.random.default_rng(0)
    return [rng.normal(0, sigma, (height, width, 1)).astype(np.int16) for _ in range(count)]


def write_clip(
    path: str | Path,
    sprites: list[Sprite],
    seconds: float = 10.0,
    fps: int = 10,
    width: int = 640,
    height: int = 360,
    gop_s: float = 1.0,
    noise: float = 0.0,
    b_frames: bool = False,
) -> Path:
    """An H.264 MP4 (yuv420p, a key frame every ``gop_s``) of moving faces.

    ``noise`` adds sensor-like noise of that standard deviation (in 0..255 levels), for
    benchmarks that must decode what a real camera sends. ``b_frames``: x264's defaults (three
    B-frames, B-pyramid, frames out of display order) instead of a low-latency camera's.
    """
    path = Path(path)
    face = face_image()
    grain = _sensor_noise(width, height, noise) if noise > 0 else []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        gop = max(1, round(fps * gop_s))
        stream.codec_context.gop_size = gop
        params = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        stream.options = (
            {"preset": "medium", "x264-params": params}
            if b_frames
            else {"preset": "veryfast", "tune": "zerolatency", "x264-params": params}
        )
        stream.codec_context.time_base = Fraction(1, fps)
        for i in range(round(seconds * fps)):
            image = render_frame(face, sprites, i / fps, width, height)
            if grain:
                image = np.clip(image + grain[i % len(grain)], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# Two faces that move without ever overlapping (one on each side of a 640x360 frame).
DEMO_SPRITES = [
    Sprite(scale=1.0, x=30, y=10, vx=8, vy=35),
    Sprite(scale=0.7, x=450, y=150, vx=-8, vy=-30),
]
