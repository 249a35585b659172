"""Model metadata: the JSON that travels beside every model file (``<model>.json``).

It says what the model expects (input shape, normalisation, crop margin), what it predicts (its
label list), how it was produced (data, split, command) and how well it did, so that a model file
never has to be guessed at.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.errors import DataError
from fer_edge.labels import LABELS
from fer_edge.preprocess import InputSpec


@dataclass
class ModelMetadata:
    """Everything a consumer needs to run a model and trust its output."""

    labels: list[str] = field(default_factory=lambda: list(LABELS))
    input_shape: list[int] = field(default_factory=lambda: [48, 48, 1])
    normalization: dict[str, float] = field(default_factory=lambda: {"scale": 1.0, "offset": 0.0})
    crop_margin: float = 0.15
    # Scores are softmax((log p + score_bias) / temperature): fitted so a score matches the share
    # of taggers who would choose that class (fer_edge.scores); 1.0 leaves the softmax as it is.
    temperature: float = 1.0
    # Per-class log offsets added before the temperature (a prior shift, fer_edge.scores); empty
    # leaves the model's ranking as it is.
    score_bias: list[float] = field(default_factory=list)
    arch: str = "unknown"
    quantization: dict[str, Any] = field(default_factory=lambda: {"mode": "float32"})
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    created: str = ""

    def input_spec(self) -> InputSpec:
        """The preprocessing parameters this model was trained with."""
        return InputSpec(
            size=int(self.input_shape[0]),
            channels=int(self.input_shape[2]),
            scale=float(self.normalization.get("scale", 1.0)),
            offset=float(self.normalization.get("offset", 0.0)),
            margin=float(self.crop_margin),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def metadata_path(model_path: str | Path) -> Path:
    """``model.tflite`` -> ``model.json`` (the contract's ``<model>.json``)."""
    return Path(model_path).with_suffix(".json")


def portable_path(value: str | Path) -> str:
    """A path as provenance may keep it: relative to the working directory when it lies inside
    it, else the file's name with a short content hash (a file) or its name alone. Never the
    training machine's absolute paths or home directory, which mean nothing anywhere else."""
    path = Path(value).expanduser()
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        pass
    if path.is_file():
        return f"{path.name}@sha256:{content_hash(path)}"
    return path.name


def content_hash(path: str | Path) -> str:
    """The first 12 hex digits of a file's SHA-256: names a file's content wherever it lies."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def _portable_argument(argument: str) -> str:
    flag, equals, value = argument.partition("=") if argument.startswith("--") else ("", "", argument)
    if value.startswith(("/", "~")):
        value = portable_path(value)
    return f"{flag}{equals}{value}"


_COMMAND: list[str] | None = None  # the arguments ``fer_edge.cli.main`` was given


def set_command(arguments: Sequence[str]) -> None:
    """Remember the command's arguments (``main`` may be called with others than ``sys.argv``)."""
    global _COMMAND
    _COMMAND = list(arguments)


def current_command() -> str:
    """The command line that is running, for provenance, with its paths made portable."""
    arguments = _COMMAND if _COMMAND is not None else sys.argv[1:]
    return shlex.join(["fer-edge", *(_portable_argument(a) for a in arguments)])


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_metadata(model_path: str | Path, *, required: bool = True) -> ModelMetadata:
    """Read the metadata beside ``model_path``; default metadata if absent and not required."""
    path = metadata_path(model_path)
    if not path.exists():
        if required:
            raise DataError(f"{path}: model metadata is missing (every model ships a .json beside it)")
        return ModelMetadata()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read model metadata: {e}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object of metadata, received {type(raw).__name__}")
    known = set(ModelMetadata.__dataclass_fields__)
    meta = ModelMetadata(**{k: v for k, v in raw.items() if k in known})
    _check_types(meta, path)
    bad = [name for name in meta.labels if name not in LABELS]
    if bad:
        raise DataError(f"{path}: labels: unknown emotion {bad[0]!r}")
    if len(meta.input_shape) != 3 or any(v < 1 for v in meta.input_shape):
        raise DataError(
            f"{path}: input_shape: expected [height, width, channels], received {meta.input_shape}"
        )
    return meta


def _check_types(meta: ModelMetadata, path: Path) -> None:
    """Every field the runtime reads has the type it needs: one line naming the key otherwise."""

    def number(v: object) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    checks: dict[str, bool] = {
        "labels": isinstance(meta.labels, list) and all(isinstance(x, str) for x in meta.labels),
        "input_shape": isinstance(meta.input_shape, list)
        and all(isinstance(x, int) and not isinstance(x, bool) for x in meta.input_shape),
        "normalization": isinstance(meta.normalization, dict)
        and all(number(v) for v in meta.normalization.values()),
        "crop_margin": number(meta.crop_margin),
        "temperature": number(meta.temperature) and meta.temperature > 0,
        "score_bias": isinstance(meta.score_bias, list)
        and all(number(v) for v in meta.score_bias)
        and len(meta.score_bias) in (0, len(meta.labels) if isinstance(meta.labels, list) else 0),
        "quantization": isinstance(meta.quantization, dict),
        "training": isinstance(meta.training, dict),
        "metrics": isinstance(meta.metrics, dict),
    }
    for key, ok in checks.items():
        if not ok:
            raise DataError(f"{path}: {key}: wrong type ({getattr(meta, key)!r:.60})")


def save_metadata(model_path: str | Path, meta: ModelMetadata) -> Path:
    """Write ``meta`` beside ``model_path`` atomically; returns the JSON path."""
    if not meta.created:
        meta.created = now_iso()
    path = metadata_path(model_path)
    write_json(path, meta.to_dict())
    return path
