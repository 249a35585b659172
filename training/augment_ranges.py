"""The ranges training augmentation draws from, shared by both of its implementations.

``augment.py`` applies them in a TensorFlow ``tf.data`` pipeline (``fer-edge train``);
``neutral_augment.py`` applies them inside the model with backend-neutral Keras ops
(``fer-edge teach`` / ``distill`` on JAX or PyTorch GPU boxes). Keeping the numbers here means a
face is augmented the same way whichever trainer sees it. No TensorFlow import: GPU boxes lack it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fer_edge.training.robustness import BAND_VALUE, EYE_BAND, TILT_DEGREES


@dataclass(frozen=True)
class GeometryRanges:
    degrees: float
    zoom: float  # +- fraction
    shift: float  # +- fraction of the side
    shear: float  # +- shear factor


GEOMETRY = {
    "basic": GeometryRanges(degrees=10.0, zoom=0.1, shift=0.1, shear=0.0),
    "strong": GeometryRanges(degrees=TILT_DEGREES + 5.0, zoom=0.15, shift=0.1, shear=0.1),
}


@dataclass(frozen=True)
class PhotometricRanges:
    """``strong`` only: contrast and brightness for all, then each effect on a share of faces."""

    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (-20.0, 20.0)
    # low light: gain and gamma (the robustness report's condition lies inside these ranges)
    dim_share: float = 0.25
    dim_gain: tuple[float, float] = (0.3, 0.9)
    dim_gamma: tuple[float, float] = (1.0, 2.2)
    # a dark band over the eyes, like sunglasses: its top row, its height, its gray level
    band_top: tuple[float, float] = (EYE_BAND[0] - 0.05, EYE_BAND[0] + 0.05)
    band_height: tuple[float, float] = (0.10, 0.18)
    band_value: tuple[float, float] = (0.0, 2.0 * BAND_VALUE)
    # random erasing: one rectangle filled with noise
    erase_share: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.12)
    erase_aspect: tuple[float, float] = (0.5, 2.0)


PHOTOMETRIC = PhotometricRanges()


def affine_transforms(
    xp: Any, theta: Any, inv_zoom: Any, shear: Any, flip: Any, tx: Any, ty: Any, size: float
) -> Any:
    """Per-face 8-vectors for a projective-transform op, mapping each output pixel to its source.

    ``xp`` is the tensor namespace (``tf`` or ``keras.ops``): both trainers build the same warp.
    input = A @ (output - centre) + centre + t, with A = R(theta) @ Shear @ Flip / zoom.
    """
    cos, sin = xp.cos(theta), xp.sin(theta)
    a0, a1 = cos * flip * inv_zoom, (cos * shear - sin) * inv_zoom
    b0, b1 = sin * flip * inv_zoom, (sin * shear + cos) * inv_zoom
    c = (size - 1.0) / 2.0
    zeros = xp.zeros_like(theta)
    rows = [a0, a1, c + tx - a0 * c - a1 * c, b0, b1, c + ty - b0 * c - b1 * c, zeros, zeros]
    return xp.stack(rows, axis=1)
