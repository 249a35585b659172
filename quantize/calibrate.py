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

import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.latency import per_face_latency_ms
from fer_edge.metadata import ModelMetadata, current_command, load_metadata, save_metadata
from fer_edge.quantize.convert import MODES, convert, representative_faces
from fer_edge.quantize.inspect import float_ops
from fer_edge.runtime import EmotionModel, RuntimeOptions
from fer_edge.scores import (
    agreement_report,
    choose_prior_strength,
    fit_temperature,
    prior_bias,
    rescale_scores,
)
from fer_edge.training.data import load_dataset, select_classes_with_targets
from fer_edge.training.evaluate import evaluate_split, load_classifier, predict_proba
from fer_edge.training.ferplus import relabel

logger = logging.getLogger(__name__)


@dataclass
class CalibrateConfig:
    model: str
    data: str
    mode: str | None
    out: str
    split: str | None = None
    calibration_size: int = 500
    seed: int = 0
    io_type: str = "int8"
    cache_dir: str | None = None
    prior_shift: str = "auto"


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
    """Convert, verify, score float vs quantised, fit the score scale, write ``out`` and its
    metadata; return the report. A ``.tflite`` model is not converted again: only its score scale
    is fitted anew (:func:`rescore`). Each step is a function below; nothing here prints."""
    model_path, out = _check_paths(cfg)
    if model_path.suffix == ".tflite":
        return rescore(cfg, model_path, out)
    float_model, meta = _float_model(model_path)
    dataset = load_dataset(cfg.data, int(meta.input_shape[0]), cfg.cache_dir)
    calib_name, calibration = _representative(cfg, dataset, meta)
    flatbuffer = convert(model_path, cfg.mode, calibration, cfg.io_type)
    with atomic_path(out) as tmp:
        tmp.write_bytes(flatbuffer)
        _verify_integer_ops(cfg.mode, tmp, out)
        quant_model, scale, split_name, quant_report, latency = _fit_and_measure(cfg, tmp, meta, dataset)
        float_accuracy = evaluate_split(float_model, dataset.get(cfg.split)[1]).report["accuracy"]
        _record(cfg, meta, quant_model, calib_name, calibration, scale)
        meta.metrics = _metrics(split_name, quant_report, latency, float_accuracy)
    save_metadata(out, meta)
    if cfg.mode == "edgetpu":
        _run_edgetpu_compiler(out)
    return _report(out, cfg.mode, split_name, quant_report, latency, meta, float_accuracy)


def rescore(cfg: CalibrateConfig, model_path: Path, out: Path) -> dict[str, Any]:
    """An already quantised model with its score scale fitted anew (prior shift, temperature):
    the same flatbuffer at ``out``, new metadata beside it. Needs no converter."""
    meta = load_metadata(model_path)
    mode = str(meta.quantization.get("mode", "float32"))
    if cfg.mode and cfg.mode != mode:
        raise UsageError(f"--mode {cfg.mode}: {model_path} is already quantised ({mode}); it keeps its mode")
    dataset = load_dataset(cfg.data, int(meta.input_shape[0]), cfg.cache_dir)
    float_accuracy = None  # the float model is not here to be scored with the new scale
    with atomic_path(out) as tmp:
        tmp.write_bytes(model_path.read_bytes())
        _, scale, split_name, report, latency = _fit_and_measure(cfg, tmp, meta, dataset)
        for key in ("score_temperature", "prior_shift"):
            meta.quantization.pop(key, None)
        meta.quantization.update(scale)
        meta.training.setdefault("quantize_command", meta.command)
        meta.command, meta.created = current_command(), ""
        meta.metrics = _metrics(split_name, report, latency, float_accuracy)
    save_metadata(out, meta)
    return _report(out, mode, split_name, report, latency, meta, float_accuracy)


def _fit_and_measure(
    cfg: CalibrateConfig, tflite: Path, meta: ModelMetadata, dataset: Any
) -> tuple[EmotionModel, dict[str, Any], str, dict[str, Any], dict[str, float]]:
    """The quantised model at ``tflite`` with its score scale fitted (set in ``meta``), its report
    on ``--split`` and its per-face latency on one thread."""
    model = EmotionModel(tflite, RuntimeOptions(num_threads=2), metadata=meta)
    scale = fit_score_scale(model, dataset, cfg.prior_shift)
    split_name, split = dataset.get(cfg.split)
    report = evaluate_split(model, split).report
    latency = per_face_latency_ms(EmotionModel(tflite, RuntimeOptions(num_threads=1), metadata=meta))
    return model, scale, split_name, report, latency


def _report(
    out: Path,
    mode: str,
    split_name: str,
    report: dict[str, Any],
    latency: dict[str, float],
    meta: ModelMetadata,
    float_accuracy: float | None,
) -> dict[str, Any]:
    """What ``calibrate --json`` writes: the file, its accuracy and cost, its score scale."""
    return {
        "model": str(out),
        "mode": mode,
        "size_bytes": out.stat().st_size,
        "split": split_name,
        "n": report["n"],
        "float_accuracy": float_accuracy,
        "accuracy": report["accuracy"],
        "accuracy_change": None if float_accuracy is None else report["accuracy"] - float_accuracy,
        "per_face_ms": latency,
        "temperature": meta.temperature,
        "score_bias": meta.score_bias,
        **({"agreement": report["agreement"]} if "agreement" in report else {}),
    }


def _check_paths(cfg: CalibrateConfig) -> tuple[Path, Path]:
    """Refuse what cannot work before anything is read or written."""
    model_path, out = Path(cfg.model), Path(cfg.out)
    if model_path.suffix not in (".keras", ".tflite"):
        raise UsageError(f"--model {model_path}: expected a trained .keras or a quantised .tflite model")
    if model_path.suffix == ".keras" and cfg.mode not in MODES:
        raise UsageError(f"--mode {cfg.mode or ''}: a .keras model needs one of {', '.join(MODES)}")
    if cfg.io_type not in ("int8", "uint8"):
        raise UsageError(f"--io {cfg.io_type}: expected int8 or uint8")
    if not model_path.exists():
        raise MissingInputError(f"{model_path}: model file not found")
    if out.suffix != ".tflite":
        raise UsageError(f"--out {out}: expected a .tflite path")
    _prior_strength(cfg.prior_shift)
    return model_path, out


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
    calib_name = _training_split(dataset) or next(iter(dataset.splits))
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


def fit_score_scale(model: EmotionModel, dataset: Any, prior_shift: str = "auto") -> dict[str, Any]:
    """Fit what the runtime does to ``model``'s scores, on the selection split: a prior shift
    (``auto``: chosen there; a number: that strength; ``0``: none) and then the temperature that
    makes the scores match the FER+ taggers' shares. Both are set in the model's metadata; the
    returned provenance is ``{}`` for data without votes (nothing to match scores against)."""
    strength = _prior_strength(prior_shift)
    model.metadata.temperature, model.metadata.score_bias = 1.0, []
    selection = dataset.selection()
    if selection is None or selection[1].votes is None:
        return {}
    labels = list(model.metadata.labels)
    scored = relabel(selection[1], "votes")  # the taggers' shares on the faces FER+ scores
    images, y, shares = select_classes_with_targets(scored, labels)
    assert shares is not None
    raw = predict_proba(model, images)
    provenance: dict[str, Any] = {}
    prior = _taggers_prior(dataset, labels)
    if prior is not None and strength != 0.0:
        provenance["prior_shift"] = _fit_prior_shift(model, raw, y, prior, strength, selection[0])
    shifted = rescale_scores(raw, 1.0, model.metadata.score_bias)
    temperature = fit_temperature(shifted, shares)
    model.metadata.temperature = temperature
    before, after = agreement_report(raw, shares), agreement_report(predict_proba(model, images), shares)
    logger.info("score temperature %.3f: ECE %.4f -> %.4f", temperature, before["ece"], after["ece"])
    provenance["score_temperature"] = {
        "temperature": temperature,
        "fitted_on": selection[0],
        "against": "FER+ taggers' shares (cross-entropy)",
        "faces": len(images),
        "ece_before": before["ece"],
        "ece_after": after["ece"],
        "cross_entropy_before": before["cross_entropy"],
        "cross_entropy_after": after["cross_entropy"],
    }
    return provenance


PRIOR_SHIFT_RULE = (
    "best FER+ majority accuracy (within 0.1 points: the weakest shift) with macro-F1 no lower than unshifted"
)


def _fit_prior_shift(
    model: EmotionModel, raw: np.ndarray, y: np.ndarray, prior: np.ndarray, strength: float | None, split: str
) -> dict[str, Any]:
    """Set the model's score bias for the given strength, or the one chosen on ``split``'s faces
    (``strength`` None); return its provenance."""
    provenance: dict[str, Any] = {"prior": [round(float(v), 4) for v in prior]}
    if strength is None:
        choice = choose_prior_strength(raw, y, list(model.metadata.labels), prior)
        strength = float(choice["strength"])
        provenance.update(
            chosen_on=split, rule=PRIOR_SHIFT_RULE, unshifted=choice["unshifted"], chosen=choice["chosen"]
        )
    else:
        provenance["chosen_on"] = "given (--prior-shift)"
    model.metadata.score_bias = prior_bias(prior, strength) if strength else []
    return {"strength": strength, **provenance}


def _prior_strength(value: str) -> float | None:
    """``--prior-shift``: ``auto`` (None: chosen on the selection split) or a strength."""
    if value == "auto":
        return None
    try:
        strength = float(value)
    except ValueError:
        raise UsageError(f"--prior-shift {value}: expected auto or a number (0: no shift)") from None
    if not -2.0 <= strength <= 2.0:
        raise UsageError(f"--prior-shift {value}: expected a strength between -2 and 2")
    return strength


def _training_split(dataset: Any) -> str | None:
    """The name of the split that trained the model (``Training``, or a ``train`` folder)."""
    return next((k for k in dataset.splits if k.lower() in ("training", "train")), None)


def _taggers_prior(dataset: Any, labels: list[str]) -> np.ndarray | None:
    """Each class's share of the taggers' votes over the training split's scored faces."""
    name = _training_split(dataset)
    if name is None or dataset.splits[name].votes is None:
        return None
    _, _, shares = select_classes_with_targets(relabel(dataset.splits[name], "votes"), labels)
    assert shares is not None
    return shares.mean(axis=0)


def _record(
    cfg: CalibrateConfig,
    meta: ModelMetadata,
    quant_model: EmotionModel,
    calib_name: str,
    calibration: Any,
    scale: dict[str, Any],
) -> None:
    """Provenance of the export: quantisation, its calibration faces, the score scale."""
    meta.quantization = {"mode": cfg.mode, "input_dtype": str(quant_model.input_dtype)}
    if calibration is not None:
        meta.quantization["representative"] = {
            "split": calib_name,
            "faces": len(calibration),
            "seed": cfg.seed,
            "class_balanced": True,
        }
    meta.quantization.update(scale)
    if meta.command and "train_command" not in meta.training:
        meta.training["train_command"] = meta.command
    meta.command = current_command()
    meta.created = ""


def _metrics(
    split_name: str, report: dict[str, Any], latency: dict[str, float], float_accuracy: float | None
) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "split": split_name,
        "labels": report.get("labels", "fer2013"),
        "accuracy": round(report["accuracy"], 4),
        "macro_f1": round(report["macro_f1"], 4),
        "per_face_ms_1thread": latency,
    }
    if float_accuracy is not None:
        metrics["float_accuracy"] = round(float_accuracy, 4)
    if "fer2013" in report:
        metrics["fer2013_accuracy"] = round(report["fer2013"]["accuracy"], 4)
    if "agreement" in report:
        metrics["ece"] = report["agreement"]["ece"]
    return metrics
