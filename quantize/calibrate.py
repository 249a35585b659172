"""``fer-edge calibrate``: quantise a trained model, check it, and report what quantisation cost.

The output file appears only once it is complete and has passed its checks (an EdgeTPU model with
a float operator is refused, and nothing is left behind).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_edge.atomic import atomic_path
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.latency import per_face_latency_ms
from fer_edge.metadata import ModelMetadata, current_command, load_metadata, save_metadata
from fer_edge.quantize.convert import MODES, convert, representative_faces
from fer_edge.quantize.inspect import float_ops
from fer_edge.runtime import EmotionModel, RuntimeOptions
from fer_edge.training.data import load_dataset
from fer_edge.training.evaluate import evaluate_split, load_classifier

logger = logging.getLogger(__name__)


@dataclass
class CalibrateConfig:
    model: str
    data: str
    mode: str
    out: str
    split: str | None = None
    calibration_size: int = 500
    seed: int = 0
    io_type: str = "int8"
    cache_dir: str | None = None


def _run_edgetpu_compiler(tflite: Path) -> None:
    compiler = shutil.which("edgetpu_compiler")
    if compiler is None:
        print(
            "edgetpu_compiler is not on PATH: the model is EdgeTPU-ready int8 but not compiled "
            "(run edgetpu_compiler on it where Coral's tools are installed)"
        )
        return
    result = subprocess.run(
        [compiler, "-s", "-o", str(tflite.parent), str(tflite)],
        capture_output=True,
        text=True,
        check=False,
    )
    log = tflite.with_suffix(".edgetpu.log")
    log.write_text(result.stdout + result.stderr)
    print(f"edgetpu_compiler exited {result.returncode}; log at {log}")


def calibrate(cfg: CalibrateConfig) -> dict[str, Any]:
    """Convert, verify, score float vs quantised, write ``out`` and its metadata; return the report."""
    if cfg.mode not in MODES:
        raise UsageError(f"--mode {cfg.mode}: expected one of {', '.join(MODES)}")
    if cfg.io_type not in ("int8", "uint8"):
        raise UsageError(f"--io {cfg.io_type}: expected int8 or uint8")
    keras_path, out = Path(cfg.model), Path(cfg.out)
    if not keras_path.exists():
        raise MissingInputError(f"{keras_path}: model file not found")
    if keras_path.suffix != ".keras":
        raise UsageError(f"--model {keras_path}: calibrate takes a trained .keras model")
    if out.suffix != ".tflite":
        raise UsageError(f"--out {out}: expected a .tflite path")
    float_model = load_classifier(keras_path)
    meta: ModelMetadata = load_metadata(keras_path, required=False)
    meta.input_shape = float_model.metadata.input_shape
    keras_model = getattr(float_model, "model", None)
    if keras_model is not None:  # size figures for the model card, if training did not record them
        from fer_edge.training.archs import count_macs

        meta.training.setdefault("params", int(keras_model.count_params()))
        meta.training.setdefault("macs", count_macs(keras_model))
    size = int(meta.input_shape[0])
    dataset = load_dataset(cfg.data, size, cfg.cache_dir)
    calib_name = next(
        (k for k in dataset.splits if k.lower() in ("training", "train")),
        next(iter(dataset.splits)),
    )
    calibration = None
    if cfg.mode in ("int8", "edgetpu"):
        calibration = representative_faces(
            dataset.splits[calib_name], cfg.calibration_size, cfg.seed, meta.labels
        )
    flatbuffer = convert(keras_path, cfg.mode, calibration, cfg.io_type)

    with atomic_path(out) as tmp:
        tmp.write_bytes(flatbuffer)
        if cfg.mode in ("int8", "edgetpu"):
            bad = float_ops(tmp)
            if bad:
                raise DataError(
                    f"{out}: operator {bad[0].index} ({bad[0].name}) is not quantised "
                    f"({'/'.join(bad[0].input_types)} in); {len(bad)} float ops in all"
                )
        quant_model = EmotionModel(tmp, RuntimeOptions(num_threads=2), metadata=meta)
        split_name, split = dataset.get(cfg.split)
        float_report = evaluate_split(float_model, split).report
        quant_report = evaluate_split(quant_model, split).report
        latency = per_face_latency_ms(EmotionModel(tmp, RuntimeOptions(num_threads=1), metadata=meta))
        meta.quantization = {"mode": cfg.mode, "input_dtype": str(quant_model.input_dtype)}
        if calibration is not None:
            meta.quantization["representative"] = {
                "split": calib_name,
                "faces": len(calibration),
                "seed": cfg.seed,
                "class_balanced": True,
            }
        meta.metrics = {
            "split": split_name,
            "accuracy": round(quant_report["accuracy"], 4),
            "macro_f1": round(quant_report["macro_f1"], 4),
            "float_accuracy": round(float_report["accuracy"], 4),
            "per_face_ms_1thread": latency,
        }
        if meta.command and "train_command" not in meta.training:
            meta.training["train_command"] = meta.command
        meta.command = current_command()
        meta.created = ""
    save_metadata(out, meta)
    if cfg.mode == "edgetpu":
        _run_edgetpu_compiler(out)
    return {
        "model": str(out),
        "mode": cfg.mode,
        "size_bytes": out.stat().st_size,
        "split": split_name,
        "n": quant_report["n"],
        "float_accuracy": float_report["accuracy"],
        "accuracy": quant_report["accuracy"],
        "accuracy_change": quant_report["accuracy"] - float_report["accuracy"],
        "per_face_ms": latency,
    }
