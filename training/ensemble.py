"""Average several trained models of one task into a single ``.keras`` model.

Averaging the softmax of two independently-cycled models is the cheapest accuracy a CPU-trained
small CNN can still buy once its own schedule has run out: the members' errors only partly
agree. The result is one graph, so ``fer-edge calibrate`` quantises it like any model and the
daemon runs it as one interpreter call (the cost is the members' latencies added).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fer_edge.atomic import atomic_path
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.metadata import (
    ModelMetadata,
    current_command,
    load_metadata,
    portable_path,
    save_metadata,
)

logger = logging.getLogger(__name__)


def _member_metadata(paths: list[Path]) -> list[ModelMetadata]:
    metas = [load_metadata(p, required=False) for p in paths]
    first = metas[0]
    for path, meta in zip(paths[1:], metas[1:], strict=True):
        if meta.labels != first.labels or list(meta.input_shape) != list(first.input_shape):
            raise DataError(
                f"{path}: labels or input shape differ from {paths[0].name}'s; "
                "only models of the same task can be averaged"
            )
    return metas


def build_ensemble(models: list[str], out: str) -> dict[str, Any]:
    """Write the averaged model to ``out`` (atomically) with its metadata; return a summary."""
    paths, out_path = [Path(m) for m in models], Path(out)
    if len(paths) < 2:
        raise UsageError("ensemble: give --model at least twice")
    if out_path.suffix != ".keras":
        raise UsageError(f"--out {out_path}: expected a .keras path")
    for path in paths:
        if not path.is_file():
            raise MissingInputError(f"{path}: model file not found")
    metas = _member_metadata(paths)

    import keras

    from fer_edge.training.archs import count_macs

    members = []
    for index, path in enumerate(paths):
        member = keras.models.load_model(path, compile=False)
        member.name = f"member_{index}"  # two copies of one architecture share a name otherwise
        members.append(member)
    inputs = keras.Input(tuple(metas[0].input_shape), name="face")
    averaged = keras.layers.Average(name="mean_probabilities")([m(inputs) for m in members])
    model = keras.Model(inputs, averaged, name="ensemble")
    meta = ModelMetadata(
        labels=metas[0].labels,
        input_shape=list(metas[0].input_shape),
        normalization=metas[0].normalization,
        crop_margin=metas[0].crop_margin,
        arch="+".join(m.arch for m in metas),
        training={
            "ensemble_of": [
                {
                    "model": portable_path(path),
                    "arch": meta.arch,
                    "selection_accuracy": meta.metrics.get("selection_accuracy"),
                    "command": meta.command,
                }
                for path, meta in zip(paths, metas, strict=True)
            ],
            "selection_split": metas[0].training.get("selection_split"),
            "params": int(model.count_params()),
            "macs": sum(count_macs(m) for m in members),
        },
        command=current_command(),
    )
    with atomic_path(out_path) as tmp:
        model.save(tmp)
    save_metadata(out_path, meta)
    logger.info("averaged %d models into %s", len(members), out_path)
    return {"model": str(out_path), "members": [str(p) for p in paths], "params": meta.training["params"]}
