"""Convert a trained ``.keras`` model to TFLite: float32, float16, dynamic-range, int8, EdgeTPU.

Full-integer modes calibrate on a class-balanced, seeded sample of training faces (the same
preprocessing as training), so rare classes such as disgust shape the activation ranges too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_edge.errors import DataError, UsageError
from fer_edge.training.data import Split

logger = logging.getLogger(__name__)

MODES = ("float32", "float16", "dynamic", "int8", "edgetpu")


def representative_faces(split: Split, size: int, seed: int, labels: list[str]) -> np.ndarray:
    """Up to ``size`` faces, as equal a share per class as the split allows (uint8, N x S x S)."""
    from fer_edge.labels import LABELS

    rng = np.random.default_rng(seed)
    wanted = [LABELS.index(name) for name in labels]
    pools = [rng.permutation(np.flatnonzero(split.labels == c)) for c in wanted]
    pools = [p for p in pools if len(p)]
    if not pools:
        raise DataError("no calibration faces of the model's classes in the chosen split")
    picked: list[int] = []
    round_ = 0
    while len(picked) < size and any(round_ < len(p) for p in pools):
        picked.extend(int(p[round_]) for p in pools if round_ < len(p))
        round_ += 1
    return split.images[np.array(picked[:size])]


def convert(
    keras_path: Path, mode: str, calibration: np.ndarray | None = None, io_type: str = "int8"
) -> bytes:
    """TFLite flatbuffer bytes for ``mode``; int8/edgetpu need ``calibration`` faces (uint8)."""
    if mode not in MODES:
        raise UsageError(f"--mode {mode}: expected one of {', '.join(MODES)}")
    import keras
    import tensorflow as tf

    model = keras.models.load_model(keras_path, compile=False)
    with tempfile.TemporaryDirectory(prefix="fer-edge-export-") as saved:
        model.export(saved, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved)
        if mode != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "float16":
            converter.target_spec.supported_types = [tf.float16]
        if mode in ("int8", "edgetpu"):
            if calibration is None or not len(calibration):
                raise DataError("full-integer quantisation needs representative faces")

            def representative() -> Iterator[list[np.ndarray]]:
                for face in calibration:
                    yield [face.astype(np.float32)[np.newaxis, :, :, np.newaxis]]

            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            dtype = {"int8": tf.int8, "uint8": tf.uint8}[io_type]
            converter.inference_input_type = dtype
            converter.inference_output_type = dtype
        try:
            return converter.convert()
        except Exception as e:  # the converter raises assorted internal errors
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{keras_path}: TFLite conversion ({mode}) failed: {first}") from e
