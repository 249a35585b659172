"""Fit a detector's framing: where the training crop lies relative to the detector's box.

Training faces (never the selection or report split) are pasted at known places and sizes into
textured frames; the detector runs on each frame and each found face gives one sample of the crop's
centre offset and side in units of the box side. The medians are the framing; the spread that
remains (robust standard deviations) is what training jitter and the ``framing`` robustness row
should cover. Written beside the detector's models as ``<kind>.json``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import write_json
from fer_edge.bench.scenes import still_frames
from fer_edge.daemon.detect import FaceDetector
from fer_edge.preprocess import Framing

MAD_TO_STD = 1.4826  # a normal distribution's standard deviation per median absolute deviation


@dataclass
class FramingFit:
    framing: Framing
    scatter: dict[str, float]  # robust standard deviations of dx, dy and log(scale)
    found: int
    faces: int

    def to_json(self) -> dict[str, Any]:
        return {
            "framing": {
                "dx": round(self.framing.dx, 4),
                "dy": round(self.framing.dy, 4),
                "scale": round(self.framing.scale, 4),
            },
            "scatter": {k: round(v, 4) for k, v in self.scatter.items()},
            "found": self.found,
            "faces": self.faces,
        }


def _robust_std(values: list[float]) -> float:
    centre = statistics.median(values)
    return MAD_TO_STD * statistics.median(abs(v - centre) for v in values)


def fit_framing(
    detector: FaceDetector,
    faces: np.ndarray,
    count: int = 1000,
    side_range: tuple[int, int] = (60, 200),
    size: tuple[int, int] = (640, 480),
    seed: int = 0,
) -> FramingFit:
    """Paste ``count`` of ``faces`` (N x S x S uint8 crops) into frames and fit the framing."""
    rng = np.random.default_rng(seed)
    dxs: list[float] = []
    dys: list[float] = []
    log_scales: list[float] = []
    for frame, placed in still_frames(faces, count, size[0], size[1], side_range, rng):
        for face in placed:
            x, y, side, _ = face.box
            cx, cy = x + side / 2.0, y + side / 2.0
            hits = [
                d.box
                for d in detector.detect(frame)
                if abs(d.box[0] + d.box[2] / 2.0 - cx) < side / 2.0
                and abs(d.box[1] + d.box[3] / 2.0 - cy) < side / 2.0
            ]
            if not hits:
                continue
            bx, by, bw, bh = max(hits, key=lambda b: b[2] * b[3])
            box_side = float(max(bw, bh))
            dxs.append((cx - (bx + bw / 2.0)) / box_side)
            dys.append((cy - (by + bh / 2.0)) / box_side)
            log_scales.append(float(np.log(side / box_side)))
    if len(dxs) < 10:
        raise ValueError(f"the detector found only {len(dxs)} of {count} faces: too few to fit a framing")
    framing = Framing(
        statistics.median(dxs), statistics.median(dys), float(np.exp(statistics.median(log_scales)))
    )
    scatter = {"dx": _robust_std(dxs), "dy": _robust_std(dys), "log_scale": _robust_std(log_scales)}
    return FramingFit(framing, scatter, len(dxs), count)


def write_framing(path: Path, kind: str, fit: FramingFit, source: dict[str, Any]) -> None:
    """Write the fit as the detector's framing file, atomically."""
    write_json(path, {"detector": kind, **fit.to_json(), "fitted_on": source})
