"""Read a ``.tflite`` flatbuffer directly: which operators it has and the types of their tensors.

The int8 and EdgeTPU promises ("every operator quantised") are checked here, on the bytes that
ship, rather than trusted to the converter's flags.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.errors import DataError

_SCHEMA_MODULES = (
    "ai_edge_litert.schema_py_generated",
    "tflite_runtime.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
)
FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}


def _schema() -> Any:
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise DataError("cannot read .tflite files: no TFLite schema module (pip install ai-edge-litert)")


def _enum_names(enum_class: Any) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class OpInfo:
    """One operator: its builtin name and the element types of its input and output tensors."""

    index: int
    name: str
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    @property
    def is_float(self) -> bool:
        """True when it computes in floating point (a float activation goes in or out)."""
        return any(t in FLOAT_TYPES for t in self.input_types + self.output_types)


def read_ops(path: str | Path) -> list[OpInfo]:
    """The operators of the main subgraph of a ``.tflite`` file, in execution order."""
    schema = _schema()
    data = Path(path).read_bytes()
    try:
        model = schema.Model.GetRootAs(data, 0)
        subgraph = model.Subgraphs(0)
        op_names = _enum_names(schema.BuiltinOperator)
        type_names = _enum_names(schema.TensorType)
        ops = []
        for i in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, f"BUILTIN_{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'').decode()}"

            def types(indices: Any) -> tuple[str, ...]:
                return tuple(type_names.get(subgraph.Tensors(int(t)).Type(), "?") for t in indices if t >= 0)

            ops.append(OpInfo(i, name, types(op.InputsAsNumpy()), types(op.OutputsAsNumpy())))
    except Exception as e:  # the flatbuffer library raises anything on garbage
        raise DataError(f"{path}: not a valid .tflite flatbuffer ({type(e).__name__})") from e
    return ops


def float_ops(path: str | Path) -> list[OpInfo]:
    """Operators that compute in floating point; empty for a fully integer model."""
    return [op for op in read_ops(path) if op.is_float]
