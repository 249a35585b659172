"""``strong`` augmentation as a Keras layer of backend-neutral ops, applied on the accelerator.

``augment.py`` runs in TensorFlow's ``tf.data``; GPU boxes that carry JAX or PyTorch but no
TensorFlow cannot run it. This layer draws from the same ranges (``augment_ranges``) with
``keras.ops`` and ``keras.random``, inside the training graph: the faces never leave the GPU to be
augmented, and a teacher inside the same graph scores exactly the face the student sees.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import layers, ops

from fer_edge.training.augment_ranges import GEOMETRY, PHOTOMETRIC, affine_transforms


class StrongAugment(layers.Layer):
    """One affine warp per face (flip, tilt, zoom, shear, shift), then contrast, low light, a band
    over the eyes on ``eye_band_rate`` of the faces, and random erasing. Identity at inference."""

    def __init__(self, eye_band_rate: float, seed: int, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)  # pixel arithmetic stays float32 under mixed precision
        self.eye_band_rate = eye_band_rate
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _draw(self, n: int, bounds: tuple[float, float], per_pixel: bool = True) -> Any:
        shape = (n, 1, 1, 1) if per_pixel else (n,)
        return keras.random.uniform(shape, bounds[0], bounds[1], seed=self.generator)

    def _chosen(self, n: int, share: float) -> Any:
        return self._draw(n, (0.0, 1.0)) < share

    def _affine(self, x: Any) -> Any:
        n, size = ops.shape(x)[0], float(x.shape[1])
        g = GEOMETRY["strong"]
        theta = self._draw(n, (-1.0, 1.0), False) * (g.degrees * math.pi / 180.0)
        inv_zoom = 1.0 / self._draw(n, (1.0 - g.zoom, 1.0 + g.zoom), False)
        shear = self._draw(n, (-g.shear, g.shear), False)
        flip = ops.where(self._draw(n, (0.0, 1.0), False) < 0.5, -1.0, 1.0)
        tx = self._draw(n, (-g.shift, g.shift), False) * size
        ty = self._draw(n, (-g.shift, g.shift), False) * size
        transforms = affine_transforms(ops, theta, inv_zoom, shear, flip, tx, ty, size)
        return ops.image.affine_transform(x, transforms, interpolation="bilinear", fill_mode="reflect")

    def _photometric(self, x: Any) -> Any:
        r, n, size = PHOTOMETRIC, ops.shape(x)[0], int(x.shape[1])
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        x = ops.clip((x - mean) * self._draw(n, r.contrast) + mean + self._draw(n, r.brightness), 0.0, 255.0)
        dim = 255.0 * self._draw(n, r.dim_gain) * ops.power(x / 255.0 + 1e-6, self._draw(n, r.dim_gamma))
        x = ops.where(self._chosen(n, r.dim_share), dim, x)
        rows = ops.reshape(ops.arange(size, dtype="float32") / size, (1, size, 1, 1))
        top = self._draw(n, r.band_top)
        band = (rows >= top) & (rows < top + self._draw(n, r.band_height))
        x = ops.where(band & self._chosen(n, self.eye_band_rate), self._draw(n, r.band_value), x)
        cols = ops.reshape(rows, (1, 1, size, 1))
        area, aspect = self._draw(n, r.erase_area), self._draw(n, r.erase_aspect)
        eh, ew = ops.sqrt(area * aspect), ops.sqrt(area / aspect)
        ey, ex = self._draw(n, (0.0, 1.0)) * (1 - eh), self._draw(n, (0.0, 1.0)) * (1 - ew)
        erase = (rows >= ey) & (rows < ey + eh) & (cols >= ex) & (cols < ex + ew)
        noise = keras.random.uniform(ops.shape(x), 0.0, 255.0, seed=self.generator)
        return ops.where(erase & self._chosen(n, r.erase_share), noise, x)

    def call(self, x: Any, training: bool | None = None) -> Any:
        return self._photometric(self._affine(x)) if training else x

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "eye_band_rate": self.eye_band_rate, "seed": self.seed}
