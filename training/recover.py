"""Recover trainable ``edge`` members from a shipped int8 ensemble, to warm-start a new run.

The bundled model was distilled on a GPU for hundreds of epochs; only its int8 ``.tflite`` ships.
Retraining it from scratch on a 2-core CPU buys a fraction of those epochs, so a new run starts
from its weights instead (``train --init-from``). The converter folded every batch norm (and the
input rescale) into the convolutions: each member's kernels and biases are dequantised back into
a freshly built ``edge``, and each batch norm is set so that it computes the folded function
both with its moving statistics and with a batch's statistics (measured on real faces), so the
first training steps continue the shipped model rather than a perturbed one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import DataError

logger = logging.getLogger(__name__)

_CONV_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _dequantised(interpreter: Any, index: int) -> np.ndarray:
    detail = interpreter._get_tensor_details(index, 0)
    values = interpreter.get_tensor(index).astype(np.float32)
    q = detail["quantization_parameters"]
    scales, zeros = q["scales"], q["zero_points"]
    if not len(scales):
        return values
    axis = int(q.get("quantized_dimension", 0))
    shape = [1] * values.ndim
    shape[axis] = -1
    return (values - zeros.reshape(shape)) * scales.reshape(shape).astype(np.float32)


def _folded_weights(tflite: Path, member: int, layer_names: set[str]) -> dict[str, dict[str, np.ndarray]]:
    """``{keras layer: {"kernel" | "depthwise" | "bias": array}}`` of one ensemble member, in
    the TFLite layouts."""
    from fer_edge.runtime import find_runtime

    interpreter = find_runtime().interpreter_class(model_path=str(tflite))
    interpreter.allocate_tensors()
    tensors = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    pattern = re.compile(rf"member_{member}_1/([a-z0-9_]+?)_1/")
    found: dict[str, dict[str, np.ndarray]] = {}
    for op in interpreter._get_ops_details():
        if op["op_name"] not in _CONV_OPS:
            continue
        weight, bias = int(op["inputs"][1]), int(op["inputs"][2])
        name = next((n for n in pattern.findall(tensors[weight]) if n in layer_names), None)
        if name is None:
            continue
        slot = "depthwise" if op["op_name"] == "DEPTHWISE_CONV_2D" else "kernel"
        found.setdefault(name, {})[slot] = _dequantised(interpreter, weight)
        if slot == "kernel" and bias >= 0:
            found[name]["bias"] = _dequantised(interpreter, bias)
    if not found:
        raise DataError(f"{tflite}: no layers of ensemble member {member} found")
    return found


def _bn_of(conv_name: str) -> str:
    """The batch norm that follows a conv layer in ``edge`` (see ``archs.build_edge``)."""
    for suffix in ("_conv", "_sep"):
        if conv_name.endswith(suffix):
            return conv_name[: -len(suffix)] + "_bn"
    return conv_name + "_bn"


def recover_member(tflite: str | Path, member: int, faces: np.ndarray) -> Any:
    """Member ``member`` of an int8 ``edge`` ensemble as a trainable Keras ``edge`` model;
    ``faces`` (N x 48 x 48 uint8, a few thousand training faces) set the batch norms' statistics."""
    import keras

    from fer_edge.training.archs import build_edge

    tflite = Path(tflite)
    probe = build_edge(7)
    kinds = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.Dense)
    convs = {layer.name for layer in probe.layers if isinstance(layer, kinds)}
    folded = _folded_weights(tflite, member, convs)
    missing = sorted(convs - set(folded))
    if missing:
        raise DataError(
            f"{tflite}: member {member} has no weights for {', '.join(missing)}: not an edge ensemble?"
        )
    width = int(folded["stem1_conv"]["kernel"].shape[0]) * 2
    classes = int(folded["emotion"]["kernel"].shape[0])
    model = build_edge(classes, int(faces.shape[1]), width=width)
    biases: dict[str, np.ndarray] = {}
    for name, parts in folded.items():
        layer = model.get_layer(name)
        # the converter drops an all-zero bias; it is zero then
        bias = parts.get("bias", np.zeros(parts["kernel"].shape[0], np.float32))
        if name == "emotion":
            layer.set_weights([parts["kernel"].T, bias])
            continue
        kernel = np.transpose(parts["kernel"], (1, 2, 3, 0))  # OHWI -> HWIO
        if name == "stem1_conv":
            kernel = kernel * 255.0  # the converter folded the input rescale (1/255) in here
        if "depthwise" in parts:  # separable: depthwise 1HWC -> HWC1, then the 1x1 pointwise
            layer.set_weights([np.transpose(parts["depthwise"], (1, 2, 3, 0)), kernel])
        else:
            layer.set_weights([kernel])
        biases[_bn_of(name)] = bias
    _fit_batch_norms(model, biases, faces)
    return model


def _fit_batch_norms(model: Any, biases: dict[str, np.ndarray], faces: np.ndarray) -> None:
    """Make each batch norm compute ``y + folded bias`` with its moving statistics set to the
    statistics of ``y`` on real faces: then a training batch's statistics give about the same."""
    import keras

    norms = [model.get_layer(name) for name in biases]
    for bn in norms:  # identity plus the folded bias, so the inputs measured below are right
        eps = bn.epsilon
        c = biases[bn.name].shape[0]
        bn.set_weights([np.ones(c), biases[bn.name], np.zeros(c), np.full(c, 1.0 - eps)])
    probe = keras.Model(model.inputs, [bn.input for bn in norms])
    outputs = probe.predict(faces[..., None].astype(np.float32), batch_size=256, verbose=0)
    for bn, y in zip(norms, outputs, strict=True):
        axes = tuple(range(y.ndim - 1))
        mean, var = y.mean(axis=axes), y.var(axis=axes)
        bn.set_weights([np.sqrt(var + bn.epsilon), biases[bn.name] + mean, mean, var])
