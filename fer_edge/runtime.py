"""Run TFLite emotion models: LiteRT first, then ``tflite_runtime``, then ``tensorflow.lite``.

The daemon, ``evaluate``, ``predict`` and ``bench`` all classify through :class:`EmotionModel`,
which owns one interpreter (reused across calls), picks a delegate by name with a logged,
configurable fallback to the CPU, and hides int8/uint8 input and output scaling.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.errors import EXIT_UNAVAILABLE, DataError, FerEdgeError, MissingInputError
from fer_edge.metadata import ModelMetadata, load_metadata
from fer_edge.scores import rescale_scores

logger = logging.getLogger(__name__)


# (module, attribute holding Interpreter, attribute holding load_delegate), in preference order.
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai_edge_litert.interpreter", "Interpreter", "load_delegate"),
    ("tflite_runtime.interpreter", "Interpreter", "load_delegate"),
    ("tensorflow", "lite.Interpreter", "lite.experimental.load_delegate"),
)

# Shared-library names tried for each named delegate.
DELEGATE_LIBRARIES: dict[str, tuple[str, ...]] = {
    "edgetpu": ("libedgetpu.so.1", "libedgetpu.1.dylib", "edgetpu.dll"),
    "gpu": ("libtensorflowlite_gpu_delegate.so", "libLiteRtGpuAccelerator.so"),
}


class RuntimeUnavailableError(FerEdgeError):
    """No TFLite runtime is installed, or a delegate could not be loaded (no fallback allowed)."""

    exit_code = EXIT_UNAVAILABLE


@dataclass(frozen=True)
class Runtime:
    """A TFLite runtime found on this machine."""

    name: str
    interpreter_class: Any
    load_delegate: Any


def _resolve(module: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


def find_runtime(preferred: tuple[tuple[str, str, str], ...] = RUNTIMES) -> Runtime:
    """The first importable runtime in ``preferred`` order (TensorFlow only as the last resort)."""
    for module_name, interpreter_attr, delegate_attr in preferred:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            logger.debug("TFLite runtime %s is not installed", module_name)
            continue
        return Runtime(module_name, _resolve(module, interpreter_attr), _resolve(module, delegate_attr))
    raise RuntimeUnavailableError(
        "no TFLite runtime found: pip install 'fer-edge[device]' "
        "(ai-edge-litert), or tflite-runtime, or tensorflow"
    )


@dataclass(frozen=True)
class RuntimeOptions:
    """How to run a model: ``delegate`` is cpu, gpu, edgetpu or a delegate library's path."""

    delegate: str = "cpu"
    num_threads: int = 1
    fallback_to_cpu: bool = True


def _load_delegate(runtime: Runtime, delegate: str) -> Any:
    candidates = DELEGATE_LIBRARIES.get(delegate, (delegate,))
    errors = []
    for library in candidates:
        try:
            return runtime.load_delegate(library)
        except (ValueError, OSError, RuntimeError) as e:
            errors.append(f"{library}: {str(e).strip().splitlines()[0] if str(e).strip() else e}")
    raise RuntimeUnavailableError(f"delegate {delegate!r} could not be loaded ({'; '.join(errors)})")


class EmotionModel:
    """A loaded emotion classifier: preprocessed faces in, class probabilities out."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        options: RuntimeOptions | None = None,
        metadata: ModelMetadata | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.path = Path(path)
        self.options = options or RuntimeOptions()
        if not self.path.is_file():
            raise MissingInputError(f"{self.path}: model file not found")
        self.metadata = metadata or load_metadata(self.path)
        self.runtime = runtime or find_runtime()
        self.delegate = "cpu"
        self._interpreter = self._make_interpreter()
        self._check_against_metadata()
        self._batch = 1

    @property
    def labels(self) -> list[str]:
        return self.metadata.labels

    def _make_interpreter(self) -> Any:
        delegates = []
        wanted = self.options.delegate
        if wanted not in ("cpu", "xnnpack", ""):
            try:
                delegates = [_load_delegate(self.runtime, wanted)]
                self.delegate = wanted
            except RuntimeUnavailableError as e:
                if not self.options.fallback_to_cpu:
                    raise
                logger.warning("%s; falling back to the CPU", e)
        try:
            interpreter = self.runtime.interpreter_class(
                model_path=str(self.path),
                experimental_delegates=delegates or None,
                num_threads=self.options.num_threads,
            )
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"{self.path}: not a loadable TFLite model ({first})") from e
        return interpreter

    def _check_against_metadata(self) -> None:
        inp = self._interpreter.get_input_details()
        out = self._interpreter.get_output_details()
        if len(inp) != 1 or len(out) != 1:
            raise DataError(
                f"{self.path}: expected one input and one output tensor, received {len(inp)} and {len(out)}"
            )
        self._input, self._output = inp[0], out[0]
        shape = [int(d) for d in self._input["shape"][1:]]
        if shape != list(self.metadata.input_shape):
            raise DataError(
                f"{self.path}: input shape {shape} does not match its metadata's "
                f"input_shape {self.metadata.input_shape}"
            )
        classes = int(self._output["shape"][-1])
        if classes != len(self.metadata.labels):
            raise DataError(
                f"{self.path}: model has {classes} outputs but its metadata lists "
                f"{len(self.metadata.labels)} labels"
            )

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self._input["dtype"])

    def _resize(self, batch: int) -> None:
        if batch == self._batch:
            return
        shape = [batch, *self.metadata.input_shape]
        self._interpreter.resize_tensor_input(self._input["index"], shape)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch = batch

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input_dtype
        if dtype == np.float32:
            return x.astype(np.float32, copy=False)
        scale, zero = self._input["quantization"]
        info = np.iinfo(dtype)
        q = np.round(x / np.float32(scale) + zero)
        return np.clip(q, info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if y.dtype == np.float32:
            return y
        scale, zero = self._output["quantization"]
        return (y.astype(np.float32) - zero) * np.float32(scale)

    def predict(self, faces: np.ndarray, max_batch: int = 64) -> np.ndarray:
        """Class probabilities (N x classes, float32) for preprocessed ``faces`` (N x S x S x C)."""
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        outputs = []
        for start in range(0, len(faces), max_batch):
            chunk = faces[start : start + max_batch]
            self._resize(len(chunk))
            self._interpreter.set_tensor(self._input["index"], self._quantize(chunk))
            self._interpreter.invoke()
            outputs.append(self._dequantize(self._interpreter.get_tensor(self._output["index"])))
        return rescale_scores(np.concatenate(outputs), self.metadata.temperature, self.metadata.score_bias)
