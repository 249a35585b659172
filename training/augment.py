"""Training-time augmentation: one Keras layer of backend-neutral ops, the only augmenter.

``basic`` is the seeds' flip/rotate/shift/zoom; ``strong`` adds shear, contrast, the conditions the
product must withstand (low light, a glasses-like band over the eyes, head tilt up to the
robustness report's angle) and random erasing. All geometry is composed into ONE affine warp per
face: chaining rotation, zoom, shear and translation layers resamples four times and trains the
model on blurred faces it never sees at serving time.

The layer is written in ``keras.ops`` and ``keras.random`` only, so the same code augments on
TensorFlow here and on JAX or PyTorch on a GPU box, inside the training graph: faces never leave
the accelerator to be augmented, and a teacher in the same graph scores exactly the face the
student sees. Its draws come from a :class:`keras.random.SeedGenerator` whose state a checkpoint
keeps, so a resumed run draws what an uninterrupted one would have drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers, ops

from fer_edge.training.robustness import BAND_VALUE, EYE_BAND, TILT_DEGREES

AUGMENTS = ("none", "basic", "strong")
# Seeds one call takes from its stream (two), rounded up: ``reseed`` spaces steps this far apart
# so no two steps share a draw.
DRAWS_PER_CALL = 64
DRAWS_PER_FACE = 20  # uniforms per face per call: 6 for the warp, 14 for light, band and erasing


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


def affine_transforms(theta: Any, inv_zoom: Any, shear: Any, flip: Any, tx: Any, ty: Any, size: float) -> Any:
    """Per-face 8-vectors for ``ops.image.affine_transform``, mapping each output pixel to its source.

    input = A @ (output - centre) + centre + t, with A = R(theta) @ Shear @ Flip / zoom.
    """
    cos, sin = ops.cos(theta), ops.sin(theta)
    a0, a1 = cos * flip * inv_zoom, (cos * shear - sin) * inv_zoom
    b0, b1 = sin * flip * inv_zoom, (sin * shear + cos) * inv_zoom
    c = (size - 1.0) / 2.0
    zeros = ops.zeros_like(theta)
    rows = [a0, a1, c + tx - a0 * c - a1 * c, b0, b1, c + ty - b0 * c - b1 * c, zeros, zeros]
    return ops.stack(rows, axis=1)


class _Draws:
    """Columns of one N x ``DRAWS_PER_FACE`` uniform draw, handed out in turn, scaled to a range."""

    def __init__(self, uniforms: Any) -> None:
        self.uniforms, self.used = uniforms, 0

    def take(self, bounds: tuple[float, float], per_pixel: bool = True) -> Any:
        if self.used == DRAWS_PER_FACE:
            raise RuntimeError("more draws than DRAWS_PER_FACE")
        column = self.uniforms[:, self.used]
        self.used += 1
        value = bounds[0] + (bounds[1] - bounds[0]) * column
        return ops.reshape(value, (-1, 1, 1, 1)) if per_pixel else value

    def chosen(self, share: float) -> Any:
        """A per-face mask choosing ``share`` of the faces."""
        return self.take((0.0, 1.0)) < share


@keras.saving.register_keras_serializable(package="fer_edge")
class Augment(layers.Layer):
    """One affine warp per face, then (``strong``) contrast, low light, a band over the eyes on
    ``eye_band_rate`` of the faces, and random erasing. Identity at inference."""

    def __init__(
        self, strength: str = "strong", eye_band_rate: float = 0.15, seed: int = 0, **kwargs: Any
    ) -> None:
        kwargs["dtype"] = "float32"  # pixel arithmetic stays float32 under mixed precision
        super().__init__(**kwargs)
        if strength not in AUGMENTS:
            raise ValueError(f"augment must be one of {AUGMENTS}; received {strength!r}")
        self.strength = strength
        self.eye_band_rate = eye_band_rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def reseed(self, step: int) -> None:
        """Draw the next call from ``(seed, step)``: for augmenting outside a graph, in a feed that
        runs ahead of training, where the stream's position must not depend on how far ahead."""
        state = self.generator.state
        value = np.asarray(
            [self.seed, step * DRAWS_PER_CALL], dtype=keras.backend.standardize_dtype(state.dtype)
        )
        state.assign(value)

    def _uniforms(self, n: Any) -> _Draws:
        """Every per-face draw of one call from a single random op: ~20 separate draws would each
        advance the seed state in turn, a chain of small ops on every training step."""
        return _Draws(keras.random.uniform((n, DRAWS_PER_FACE), seed=self.generator))

    def geometry(self, n: Any, size: float, draws: _Draws | None = None) -> dict[str, Any]:
        """One face's warp per row: angle (radians), 1/zoom, shear, flip (-1 mirrors), shift (px)."""
        g = GEOMETRY["basic" if self.strength == "none" else self.strength]
        d = draws or self._uniforms(n)
        return {
            "theta": d.take((-1.0, 1.0), False) * (g.degrees * math.pi / 180.0),
            "inv_zoom": 1.0 / d.take((1.0 - g.zoom, 1.0 + g.zoom), False),
            "shear": d.take((-g.shear, g.shear), False),
            "flip": ops.where(d.take((0.0, 1.0), False) < 0.5, -1.0, 1.0),
            "tx": d.take((-g.shift, g.shift), False) * size,
            "ty": d.take((-g.shift, g.shift), False) * size,
        }

    def _affine(self, x: Any, d: _Draws) -> Any:
        size = float(x.shape[1])
        transforms = affine_transforms(**self.geometry(ops.shape(x)[0], size, d), size=size)
        return ops.image.affine_transform(x, transforms, interpolation="bilinear", fill_mode="reflect")

    def _photometric(self, x: Any, d: _Draws) -> Any:
        r, size = PHOTOMETRIC, int(x.shape[1])
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = ops.clip((x - mean) * d.take(r.contrast) + mean + d.take(r.brightness), 0.0, 255.0)
        dim = 255.0 * d.take(r.dim_gain) * ops.power(x / 255.0 + 1e-6, d.take(r.dim_gamma))
        x = ops.where(d.chosen(r.dim_share), dim, x)
        rows = ops.reshape(ops.arange(size, dtype="float32") / size, (1, size, 1, 1))
        top = d.take(r.band_top)
        band = (rows >= top) & (rows < top + d.take(r.band_height))
        x = ops.where(band & d.chosen(self.eye_band_rate), d.take(r.band_value), x)
        cols = ops.reshape(rows, (1, 1, size, 1))
        area, aspect = d.take(r.erase_area), d.take(r.erase_aspect)
        eh, ew = ops.sqrt(area * aspect), ops.sqrt(area / aspect)
        ey, ex = d.take((0.0, 1.0)) * (1 - eh), d.take((0.0, 1.0)) * (1 - ew)
        erase = (rows >= ey) & (rows < ey + eh) & (cols >= ex) & (cols < ex + ew)
        noise = keras.random.uniform(ops.shape(x), 0.0, 255.0, seed=self.generator)
        return ops.where(erase & d.chosen(r.erase_share), noise, x)

    def call(self, x: Any, training: bool | None = None) -> Any:
        if not training or self.strength == "none":
            return x
        draws = self._uniforms(ops.shape(x)[0])
        x = self._affine(x, draws)
        return self._photometric(x, draws) if self.strength == "strong" else x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "strength": self.strength,
            "eye_band_rate": self.eye_band_rate,
            "seed": self.seed,
        }
