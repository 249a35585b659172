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
from fer_edge.scores import agreement_report, fit_temperature
from fer_edge.training.data import load_dataset, select_classes_with_targets
from fer_edge.training.evaluate import evaluate_split, load_classifier, predict_proba
from fer_edge.training.ferplus import relabel

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
    """Convert, verify, score float vs quantised, fit the score temperature, write ``out`` and its
    metadata; return the report. Each step is a function below; nothing here prints."""
    keras_path, out = _check_paths(cfg)
    float_model, meta = _float_model(keras_path)
    dataset = load_dataset(cfg.data, int(meta.input_shape[0]), cfg.cache_dir)
    calib_name, calibration = _representative(cfg, dataset, meta)
    flatbuffer = convert(keras_path, cfg.mode, calibration, cfg.io_type)
    with atomic_path(out) as tmp:
        tmp.write_bytes(flatbuffer)
        _verify_integer_ops(cfg.mode, tmp, out)
        quant_model = EmotionModel(tmp, RuntimeOptions(num_threads=2), metadata=meta)
        temperature = fit_score_temperature(quant_model, dataset)
        split_name, split = dataset.get(cfg.split)
        float_report = evaluate_split(float_model, split).report
        quant_report = evaluate_split(quant_model, split).report
        latency = per_face_latency_ms(EmotionModel(tmp, RuntimeOptions(num_threads=1), metadata=meta))
        _record(cfg, meta, quant_model, calib_name, calibration, temperature)
        meta.metrics = _metrics(split_name, float_report, quant_report, latency, temperature)
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
        "temperature": temperature.get("temperature", 1.0) if temperature else 1.0,
        **({"agreement": quant_report["agreement"]} if "agreement" in quant_report else {}),
    }


def _check_paths(cfg: CalibrateConfig) -> tuple[Path, Path]:
    """Refuse what cannot work before anything is read or written."""
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
    return keras_path, out


def _float_model(keras_path: Path) -> tuple[Any, ModelMetadata]:
    """The trained model and the metadata its export starts from (with size figures for the
    model card, if training did not record them)."""
    float_model = load_classifier(keras_path)
    meta: ModelMetadata = load_metadata(keras_path, required=False)
    meta.input_shape = float_model.metadata.input_shape
    meta.temperature = 1.0  # fitted anew on the quantised model's own scores
    keras_model = getattr(float_model, "model", None)
    if keras_model is not None:
        from fer_edge.training.archs import count_macs

        meta.training.setdefault("params", int(keras_model.count_params()))
        meta.training.setdefault("macs", count_macs(keras_model))
    return float_model, meta


def _representative(cfg: CalibrateConfig, dataset: Any, meta: ModelMetadata) -> tuple[str, Any]:
    """The training faces full-integer modes calibrate their activation ranges on."""
    calib_name = next(
        (k for k in dataset.splits if k.lower() in ("training", "train")),
        next(iter(dataset.splits)),
    )
    if cfg.mode not in ("int8", "edgetpu"):
        return calib_name, None
    return calib_name, representative_faces(
        dataset.splits[calib_name], cfg.calibration_size, cfg.seed, meta.labels
    )


def _verify_integer_ops(mode: str, tmp: Path, out: Path) -> None:
    """An int8 or EdgeTPU model with a float operator is refused."""
    if mode not in ("int8", "edgetpu"):
        return
    bad = float_ops(tmp)
    if bad:
        raise DataError(
            f"{out}: operator {bad[0].index} ({bad[0].name}) is not quantised "
            f"({'/'.join(bad[0].input_types)} in); {len(bad)} float ops in all"
        )


def fit_score_temperature(model: EmotionModel, dataset: Any) -> dict[str, Any]:
    """Fit the temperature that makes ``model``'s scores match the FER+ taggers' shares on the
    selection split, and set it in the model's metadata. Data without votes leaves it at 1
    (returns ``{}``): there is nothing to match scores against."""
    selection = dataset.selection()
    if selection is None or selection[1].votes is None:
        return {}
    scored = relabel(selection[1], "votes")  # the taggers' shares on the faces FER+ scores
    images, _, shares = select_classes_with_targets(scored, list(model.metadata.labels))
    assert shares is not None
    model.metadata.temperature = 1.0
    raw = predict_proba(model, images)
    temperature = fit_temperature(raw, shares)
    model.metadata.temperature = temperature
    before, after = agreement_report(raw, shares), agreement_report(predict_proba(model, images), shares)
    logger.info("score temperature %.3f: ECE %.4f -> %.4f", temperature, before["ece"], after["ece"])
    return {
        "temperature": temperature,
        "fitted_on": selection[0],
        "against": "FER+ taggers' shares (cross-entropy)",
        "faces": len(images),
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "cross_entropy_before": before["cross_entropy"],
        "cross_entropy_after": after["cross_entropy"],
    }


def _record(
    cfg: CalibrateConfig,
    meta: ModelMetadata,
    quant_model: EmotionModel,
    calib_name: str,
    calibration: Any,
    temperature: dict[str, Any],
) -> None:
    """Provenance of the export: quantisation, its calibration faces, the score temperature."""
    meta.quantization = {"mode": cfg.mode, "input_dtype": str(quant_model.input_dtype)}
    if calibration is not None:
        meta.quantization["representative"] = {
            "split": calib_name,
            "faces": len(calibration),
            "seed": cfg.seed,
            "class_balanced": True,
        }
    if temperature:
        meta.quantization["score_temperature"] = temperature
    if meta.command and "train_command" not in meta.training:
        meta.training["train_command"] = meta.command
    meta.command = current_command()
    meta.created = ""


def _metrics(
    split_name: str,
    float_report: dict[str, Any],
    quant_report: dict[str, Any],
    latency: dict[str, float],
    temperature: dict[str, Any],
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "split": split_name,
        "labels": quant_report.get("labels", "fer2013"),
        "accuracy": round(quant_report["accuracy"], 4),
        "macro_f1": round(quant_report["macro_f1"], 4),
        "float_accuracy": round(float_report["accuracy"], 4),
        "per_face_ms_1thread": latency,
    }
    if "fer2013" in quant_report:
        metrics["fer2013_accuracy"] = round(quant_report["fer2013"]["accuracy"], 4)
    if "agreement" in quant_report:
        metrics["ece"] = quant_report["agreement"]["ece"]
    return metrics
