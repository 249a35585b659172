"""Training-time augmentation on batches of raw gray faces (float32, 0..255, N x S x S x 1).

``basic`` is the seeds' flip/rotate/shift/zoom; ``strong`` adds shear, contrast, the conditions the
product must withstand (low light, a glasses-like band over the eyes, head tilt up to the
robustness report's angle) and random erasing. All geometry is composed into ONE affine warp per
face: chaining Keras' RandomRotation/Zoom/Shear/Translation layers resamples four times and trains
the model on blurred faces it never sees at serving time. Draws are stateless, seeded by
``(seed, batch index)``, so a run is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import tensorflow as tf

from fer_edge.training.augment_ranges import GEOMETRY, PHOTOMETRIC, GeometryRanges, affine_transforms

AUGMENTS = ("none", "basic", "strong")
Augmenter = Callable[[tf.Tensor, tuple[tf.Tensor, tf.Tensor]], tuple[tf.Tensor, tf.Tensor]]


def _draw(n: tf.Tensor, seed: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.random.stateless_uniform([n], seed, low, high)


def _affine(images: tf.Tensor, ranges: GeometryRanges, seeds: tf.Tensor) -> tf.Tensor:
    """Flip, rotate, zoom, shear and shift each face with a single bilinear warp."""
    n = tf.shape(images)[0]
    size = tf.cast(tf.shape(images)[1], tf.float32)
    theta = _draw(n, seeds[0], -1.0, 1.0) * (ranges.degrees * math.pi / 180.0)
    inv_zoom = 1.0 / _draw(n, seeds[1], 1.0 - ranges.zoom, 1.0 + ranges.zoom)
    shear = _draw(n, seeds[2], -ranges.shear, ranges.shear) if ranges.shear else tf.zeros([n])
    flip = tf.where(_draw(n, seeds[3], 0.0, 1.0) < 0.5, -1.0, 1.0)
    tx = _draw(n, seeds[4], -ranges.shift, ranges.shift) * size
    ty = _draw(n, seeds[5], -ranges.shift, ranges.shift) * size
    transforms = affine_transforms(tf, theta, inv_zoom, shear, flip, tx, ty, size)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="REFLECT",
    )


def _per_image(batch: tf.Tensor, probability: float, seed: tf.Tensor) -> tf.Tensor:
    """A N x 1 x 1 x 1 boolean mask choosing which images get an effect."""
    n = tf.shape(batch)[0]
    return tf.random.stateless_uniform([n, 1, 1, 1], seed) < probability


def _uniform(batch: tf.Tensor, low: float, high: float, seed: tf.Tensor) -> tf.Tensor:
    n = tf.shape(batch)[0]
    return tf.random.stateless_uniform([n, 1, 1, 1], seed, low, high)


def _photometric(x: tf.Tensor, seeds: tf.Tensor, eye_band_rate: float) -> tf.Tensor:
    """Contrast, low light, eye band and random erasing, each on a random subset of the batch."""
    r = PHOTOMETRIC
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    contrast = _uniform(x, *r.contrast, seeds[0])
    x = tf.clip_by_value((x - mean) * contrast + mean + _uniform(x, *r.brightness, seeds[1]), 0, 255)
    gain, gamma = _uniform(x, *r.dim_gain, seeds[2]), _uniform(x, *r.dim_gamma, seeds[3])
    dim = 255.0 * gain * tf.pow(x / 255.0, gamma)
    x = tf.where(_per_image(x, r.dim_share, seeds[4]), dim, x)
    size = tf.shape(x)[1]
    rows = tf.cast(tf.range(size), tf.float32)[tf.newaxis, :, tf.newaxis, tf.newaxis]
    rows = rows / tf.cast(size, tf.float32)
    top = _uniform(x, *r.band_top, seeds[5])
    bottom = top + _uniform(x, *r.band_height, seeds[6])
    band = (rows >= top) & (rows < bottom) & _per_image(x, eye_band_rate, seeds[7])
    x = tf.where(band, _uniform(x, *r.band_value, seeds[8]), x)
    cols = tf.transpose(rows, [0, 2, 1, 3])
    area, aspect = _uniform(x, *r.erase_area, seeds[9]), _uniform(x, *r.erase_aspect, seeds[10])
    eh, ew = tf.sqrt(area * aspect), tf.sqrt(area / aspect)
    ey = _uniform(x, 0.0, 1.0, seeds[11]) * (1 - eh)
    ex = _uniform(x, 0.0, 1.0, seeds[12]) * (1 - ew)
    erase = (rows >= ey) & (rows < ey + eh) & (cols >= ex) & (cols < ex + ew)
    erase &= _per_image(x, r.erase_share, seeds[13])
    noise = tf.random.stateless_uniform(tf.shape(x), seeds[14], 0.0, 255.0)
    return tf.where(erase, noise, x)


def make_augmenter(strength: str, seed: int, eye_band_rate: float) -> Augmenter | None:
    """A map function for an enumerated ``tf.data`` batch stream, or ``None`` for ``'none'``.

    It takes ``(step, (images, labels))``: the batch index seeds the stateless draws.
    ``eye_band_rate`` is the share of faces that get the glasses-like band under ``strong``: the
    occlusion the product is weakest on, so a warm restart can raise it without touching the rest.
    """
    if strength not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}; received {strength!r}")
    if strength == "none":
        return None
    ranges = GEOMETRY[strength]

    def augment(step: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = batch
        step = tf.cast(step, tf.int64)
        seeds = tf.stack([tf.stack([tf.constant(seed, tf.int64) + i, step]) for i in range(21)])
        x = _affine(images, ranges, seeds[15:21])
        if strength == "strong":
            x = _photometric(x, seeds, eye_band_rate)
        return x, labels

    return augment
