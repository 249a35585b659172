"""The one face-preprocessing path shared by training, evaluation and the daemon.

Training crops (FER2013's 48x48 faces, image folders), evaluation and the daemon's detector boxes
all go through :func:`crop_face` and :func:`scale_pixels`, so a model sees at serving time exactly
what it saw in training. Colour conversion happens on the crop, never on a whole frame: a 1080p
BGR->gray conversion costs more than classifying the face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, w, h in source-image pixels


@dataclass(frozen=True)
class InputSpec:
    """How a model wants its input; read from the model's metadata JSON.

    ``scale`` and ``offset`` map raw pixels (0..255) to model input as ``pixel * scale + offset``.
    fer-edge's own models rescale inside the graph, so theirs are 1 and 0: an int8 model then sees
    each pixel exactly (input scale 1, zero point -128).
    """

    size: int = 48
    channels: int = 1
    scale: float = 1.0
    offset: float = 0.0
    margin: float = 0.15


def to_gray(image: np.ndarray) -> np.ndarray:
    """Return a 2-D uint8 view or copy of ``image`` (gray, BGR or BGRA, any of HxW, HxWx1)."""
    if image.ndim == 2:
        gray = image
    elif image.ndim == 3 and image.shape[2] == 1:
        gray = image[:, :, 0]
    elif image.ndim == 3 and image.shape[2] == 3:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif image.ndim == 3 and image.shape[2] == 4:
        gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    else:
        raise ValueError(f"expected a gray, BGR or BGRA image; received shape {image.shape}")
    if gray.dtype != np.uint8:
        gray = np.clip(gray, 0, 255).astype(np.uint8)
    return gray


@dataclass(frozen=True)
class Framing:
    """Where the training crop lies relative to a detector's box: a square whose centre is the
    box centre shifted by ``dx``, ``dy`` box sides and whose side is ``scale`` box sides.

    FER2013 faces are registered so the face fills the 48x48 crop; a detector's box is not that
    crop (BlazeFace's sits inside it, Haar's is larger and lower). Each detector carries the
    framing fitted from data (``fer-edge calibrate-detector``), so the model sees a detected face
    framed as it saw its training faces.
    """

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.3

    def crop_box(self, box: Box) -> Box:
        """The square crop (x, y, side, side) for a detector ``box``."""
        x, y, w, h = box
        side = max(w, h)
        cx, cy = x + w / 2.0 + self.dx * side, y + h / 2.0 + self.dy * side
        half = side * self.scale / 2.0
        return (round(cx - half), round(cy - half), max(1, round(2 * half)), max(1, round(2 * half)))


def square_with_margin(box: Box, margin: float) -> Box:
    """Grow a detector box to a square around its centre, ``margin`` of its side on each side."""
    return Framing(scale=1.0 + 2.0 * margin).crop_box(box)


def crop_face(
    image: np.ndarray, box: Box | None, size: int, margin: float = 0.15, framing: Framing | None = None
) -> np.ndarray:
    """Crop a face as a ``size`` x ``size`` uint8 gray image.

    ``box=None`` means the image already is a face crop (FER2013 rows, dataset folders): it is
    used whole. Otherwise the box becomes the training crop by the detector's ``framing`` (else a
    square with ``margin``), and parts outside the frame are filled by replicating the border, so
    the face stays centred near the frame edge.
    """
    if box is not None:
        crop = framing.crop_box(box) if framing is not None else square_with_margin(box, margin)
        x, y, w, h = crop
        img_h, img_w = image.shape[:2]
        x0, y0, x1, y1 = max(0, x), max(0, y), min(img_w, x + w), min(img_h, y + h)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"face box {box} lies outside the {img_w}x{img_h} image")
        region = image[y0:y1, x0:x1]
        pads = (y0 - y, (y + h) - y1, x0 - x, (x + w) - x1)
        if any(pads):
            region = cv2.copyMakeBorder(region, *pads, cv2.BORDER_REPLICATE)
        image = region
    gray = to_gray(image)
    if gray.shape != (size, size):
        shrinking = gray.shape[0] > size or gray.shape[1] > size
        interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
        gray = cv2.resize(gray, (size, size), interpolation=interp)
    return np.ascontiguousarray(gray)


def scale_pixels(crops: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Turn uint8 crops (``N x H x W`` or ``H x W``) into float32 model input with a channel axis."""
    x = crops.astype(np.float32)
    if spec.scale != 1.0 or spec.offset != 0.0:
        x = x * np.float32(spec.scale) + np.float32(spec.offset)
    x = x[..., np.newaxis]
    if spec.channels == 3:
        x = np.repeat(x, 3, axis=-1)
    return x


# Video-range luma (16..235) to full range (0..255), as the training faces are.
VIDEO_TO_FULL = np.clip((np.arange(256) - 16) * 255.0 / 219.0 + 0.5, 0, 255).astype(np.uint8)


def preprocess_faces(
    image: np.ndarray,
    boxes: Sequence[Box | None],
    spec: InputSpec,
    video_range: bool = False,
    framing: Framing | None = None,
) -> np.ndarray:
    """Crop, gray, resize and scale every face in ``image``: a ``N x S x S x C`` float32 batch.

    ``video_range``: ``image`` is video-range luma (16..235); the crops are expanded to full range.
    ``framing``: the detector's box-to-crop transform (default: a square with the spec's margin).
    """
    if not boxes:
        return np.zeros((0, spec.size, spec.size, spec.channels), np.float32)
    crops = np.stack([crop_face(image, b, spec.size, spec.margin, framing) for b in boxes])
    return scale_pixels(VIDEO_TO_FULL[crops] if video_range else crops, spec)
