"""Deterministic degradations for robustness reports: low light, glasses-like band, head tilt,
and the framing scatter a detector leaves after its fitted box-to-crop transform.

Training augmentation draws from ranges around the same constants (see ``augment.py``), so the
conditions a model is scored on are the ones it was trained to withstand.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

# Rows (as fractions of face height) where eyes and glasses sit in a FER-style crop.
EYE_BAND = (0.27, 0.42)
BAND_VALUE = 25
LOW_LIGHT_GAIN = 0.45
LOW_LIGHT_GAMMA = 1.8
TILT_DEGREES = 20.0


def low_light(faces: np.ndarray) -> np.ndarray:
    """Darken with a gamma curve and a gain: a dim room on a camera without night mode."""
    x = faces.astype(np.float32) / 255.0
    return np.clip(255.0 * LOW_LIGHT_GAIN * x**LOW_LIGHT_GAMMA, 0, 255).astype(np.uint8)


def occlusion_band(faces: np.ndarray) -> np.ndarray:
    """Paint a dark horizontal band over the eyes, like sunglasses or a thick frame."""
    out = faces.copy()
    h = faces.shape[1]
    out[:, int(EYE_BAND[0] * h) : int(EYE_BAND[1] * h), :] = BAND_VALUE
    return out


def rotate(faces: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every face about its centre (in-plane head tilt), filling by edge reflection."""
    h, w = faces.shape[1:3]
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    return np.stack([cv2.warpAffine(f, matrix, (w, h), borderMode=cv2.BORDER_REFLECT_101) for f in faces])


def detector_scatter() -> dict[str, float]:
    """The default detector's residual framing scatter (robust standard deviations of the crop's
    centre shift, in box sides, and of log crop scale), as fitted and shipped beside it."""
    import json
    from importlib.resources import files

    document = json.loads(files("fer_edge").joinpath("models/detectors/blazeface.json").read_text())
    framing, scatter = document["framing"], document["scatter"]
    # the scatter is in detector-box sides; a crop is framing.scale box sides wide
    return {
        "shift": max(scatter["dx"], scatter["dy"]) / framing["scale"],
        "log_scale": scatter["log_scale"],
    }


def reframe(faces: np.ndarray, seed: int = 0) -> np.ndarray:
    """Shift and zoom every crop by a draw from the detector's residual framing scatter
    (reproducible: seeded), filling by edge replication as a frame around a face would."""
    scatter = detector_scatter()
    rng = np.random.default_rng(seed)
    h, w = faces.shape[1:3]
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        zoom = float(np.exp(rng.normal(0.0, scatter["log_scale"])))
        dx, dy = rng.normal(0.0, scatter["shift"], 2) * w
        matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), 0.0, zoom)
        matrix[:, 2] += (dx, dy)
        out[i] = cv2.warpAffine(face, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    return out


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "low_light": low_light,
    "occlusion_band": occlusion_band,
    f"rotate_+{TILT_DEGREES:g}": lambda f: rotate(f, TILT_DEGREES),
    f"rotate_-{TILT_DEGREES:g}": lambda f: rotate(f, -TILT_DEGREES),
    "framing": reframe,
}
