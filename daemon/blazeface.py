"""MediaPipe's BlazeFace detectors on the LiteRT runtime: anchors and box decoding.

BlazeFace is an SSD with fixed-size anchors: every anchor is a cell centre on one of the model's
feature grids, and the model regresses a box (centre offset, width, height, in input pixels) and a
logit per anchor. The three published variants differ only in input size and grids:

* short-range (128x128): a 16x16 grid with 2 anchors a cell and an 8x8 grid with 6, 896 anchors;
  faces within ~2 m of a phone camera, i.e. large in the image;
* back-camera (256x256): the same grids at twice the stride, 896 anchors;
* full-range (192x192): one 48x48 grid at stride 4 with one anchor a cell, 2,304 anchors; the
  dense grid is what lets it find faces that cover a small part of its input.

The variant is recognised from the model's input size and anchor count, so any of the files works
without telling the daemon which one it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class BlazeFaceVariant:
    """One published BlazeFace model: its input side and its anchor grids."""

    name: str
    input_size: int
    grids: tuple[tuple[int, int], ...]  # (cells per side, anchors per cell), in output order

    @property
    def anchor_count(self) -> int:
        return sum(side * side * per_cell for side, per_cell in self.grids)


VARIANTS = (
    BlazeFaceVariant("short-range", 128, ((16, 2), (8, 6))),
    BlazeFaceVariant("back-camera", 256, ((16, 2), (8, 6))),
    BlazeFaceVariant("full-range", 192, ((48, 1),)),
)


def find_variant(input_size: int, anchor_count: int) -> BlazeFaceVariant | None:
    """The variant with this input side and anchor count, if it is one of the published three."""
    for variant in VARIANTS:
        if variant.input_size == input_size and variant.anchor_count == anchor_count:
            return variant
    return None


def anchor_centres(variant: BlazeFaceVariant) -> np.ndarray:
    """Anchor centres (x, y) in 0..1 of the input, one row per anchor, in the model's order."""
    rows = []
    for side, per_cell in variant.grids:
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        centres = np.stack([(xs.ravel() + 0.5) / side, (ys.ravel() + 0.5) / side], axis=1)
        rows.append(np.repeat(centres, per_cell, axis=0))
    return np.concatenate(rows).astype(np.float32)


def to_input(gray: np.ndarray, size: int) -> tuple[np.ndarray, int]:
    """``gray`` letterboxed into a square (top-left aligned, so boxes need no shift), resized to
    ``size`` and scaled to -1..1 as three equal channels; returns it with the square's side."""
    h, w = gray.shape
    side = max(h, w)
    if h != w:
        square = np.zeros((side, side), np.uint8)
        square[:h, :w] = gray
    else:
        square = gray
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    resized = cv2.resize(square, (size, size), interpolation=interp)
    x = resized.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
    return cv2.cvtColor(x, cv2.COLOR_GRAY2RGB)[np.newaxis], side  # 3x faster than np.repeat


def weighted_nms(rects: np.ndarray, scores: np.ndarray, overlap: float) -> Iterator[tuple[np.ndarray, float]]:
    """MediaPipe's blending suppression: take the best box (the first four columns of ``rects``;
    any further columns, such as keypoints, are blended along), average every box overlapping it by
    at least ``overlap`` IoU (weighted by score) into one, drop them, repeat. Averaging the
    neighbouring anchors' answers steadies the box, which the crop framing depends on. Yields
    the blended boxes best first, so a caller after one face can stop at it."""
    order = np.argsort(-scores)
    rects, scores = rects[order], scores[order]
    x1, y1 = rects[:, 0], rects[:, 1]
    x2, y2 = x1 + rects[:, 2], y1 + rects[:, 3]
    areas = rects[:, 2] * rects[:, 3]
    alive = np.ones(len(rects), bool)
    for i in range(len(rects)):
        if not alive[i]:
            continue
        iw = np.clip(np.minimum(x2[i], x2) - np.maximum(x1[i], x1), 0, None)
        ih = np.clip(np.minimum(y2[i], y2) - np.maximum(y1[i], y1), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        group = alive & (iou >= overlap)
        weights = scores[group]
        alive &= ~group
        yield (rects[group] * weights[:, None]).sum(0) / weights.sum(), float(scores[i])


def decode(
    raw_boxes: np.ndarray,
    logits: np.ndarray,
    anchors: np.ndarray,
    input_size: int,
    side: int,
    threshold: float,
    nms_iou: float = 0.3,
) -> Iterator[tuple[tuple[int, int, int, int], float, tuple[tuple[float, float], ...]]]:
    """Boxes (x, y, w, h in pixels of a ``side``-pixel square) scoring at least ``threshold``,
    overlapping ones blended, from one invocation's regressors and logits; best first. Each
    comes with its six keypoints (eyes, nose tip, mouth, ears; x, y in the same pixels), blended
    with the same weights as the box."""
    # logits beyond +-50 are certain either way; clipping keeps exp() finite in float32
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))
    keep = np.flatnonzero(scores >= threshold)
    if keep.size == 0:
        return
    raw = raw_boxes[keep]
    cx = raw[:, 0] / input_size + anchors[keep, 0]
    cy = raw[:, 1] / input_size + anchors[keep, 1]
    bw, bh = raw[:, 2] / input_size, raw[:, 3] / input_size
    rects = np.stack([(cx - bw / 2) * side, (cy - bh / 2) * side, bw * side, bh * side], axis=1)
    points = np.empty((len(keep), 12), np.float32)
    points[:, 0::2] = (raw[:, 4:16:2] / input_size + anchors[keep, 0:1]) * side
    points[:, 1::2] = (raw[:, 5:16:2] / input_size + anchors[keep, 1:2]) * side
    rows = np.concatenate([rects, points], axis=1)  # the blending averages keypoints as boxes
    finite = np.isfinite(rows).all(axis=1) & (rects[:, 2] > 0) & (rects[:, 3] > 0)
    for row, score in weighted_nms(rows[finite], scores[keep][finite], nms_iou):
        x, y, w, h = (round(float(v)) for v in row[:4])
        if w > 0 and h > 0:
            keypoints = tuple((float(row[4 + 2 * k]), float(row[5 + 2 * k])) for k in range(6))
            yield (x, y, w, h), score, keypoints
