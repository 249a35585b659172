"""``fer-edge evaluate``: score a ``.keras`` or ``.tflite`` model on a dataset split.

Both model kinds go through the same preprocessing and the same NumPy metrics, so a float model
and its int8 export are compared like for like.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.metadata import ModelMetadata, load_metadata
from fer_edge.metrics import classification_report
from fer_edge.preprocess import InputSpec, scale_pixels
from fer_edge.runtime import EmotionModel, RuntimeOptions
from fer_edge.scores import agreement_report, clearly_shown_report, rescale_scores
from fer_edge.training.data import Split, select_classes_with_targets
from fer_edge.training.ferplus import UNSCORED, majority_labels, relabel
from fer_edge.training.robustness import CONDITIONS

logger = logging.getLogger(__name__)

TTA_MODES = ("none", "flip", "crops")


class Classifier(Protocol):
    """Anything that turns preprocessed faces into class probabilities."""

    metadata: ModelMetadata

    def predict(self, faces: np.ndarray) -> np.ndarray: ...


class KerasClassifier:
    """A ``.keras`` model behind the same interface as :class:`EmotionModel`."""

    def __init__(self, path: Path) -> None:
        import keras

        try:
            self.model = keras.models.load_model(path, compile=False)
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: not a loadable Keras model ({e})") from e
        self.metadata = load_metadata(path, required=False)
        self.metadata.input_shape = [int(d) for d in self.model.input_shape[1:]]

    def predict(self, faces: np.ndarray) -> np.ndarray:
        probs = np.asarray(self.model.predict(faces, batch_size=256, verbose=0))
        return rescale_scores(probs, self.metadata.temperature, self.metadata.score_bias)


def load_classifier(path: str | Path, options: RuntimeOptions | None = None) -> Classifier:
    """Open a ``.keras`` (needs TensorFlow) or ``.tflite`` model."""
    path = Path(path)
    if not path.exists():
        raise MissingInputError(f"{path}: model file not found")
    if path.suffix == ".tflite":
        return EmotionModel(path, options)
    if path.suffix == ".keras":
        return KerasClassifier(path)
    raise UsageError(f"--model {path}: expected a .keras or .tflite file")


def _views(crops: np.ndarray, tta: str) -> list[np.ndarray]:
    """The test-time views of uint8 crops (N x S x S): identity, flips, small shifts."""
    if tta == "none":
        return [crops]
    flipped = crops[:, :, ::-1]
    if tta == "flip":
        return [crops, flipped]
    pad = max(1, crops.shape[1] // 24)
    views = []
    for base in (crops, flipped):
        padded = np.pad(base, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
        size = crops.shape[1]
        for dy, dx in ((pad, pad), (0, 0), (0, 2 * pad), (2 * pad, 0), (2 * pad, 2 * pad)):
            views.append(padded[:, dy : dy + size, dx : dx + size])
    return views


def predict_proba(model: Classifier, crops: np.ndarray, tta: str = "none") -> np.ndarray:
    """Mean class probabilities over the TTA views of uint8 crops."""
    if tta not in TTA_MODES:
        raise UsageError(f"--tta {tta}: expected one of {', '.join(TTA_MODES)}")
    spec: InputSpec = model.metadata.input_spec()
    total = None
    views = _views(crops, tta)
    for view in views:
        probs = model.predict(scale_pixels(np.ascontiguousarray(view), spec))
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(views)


@dataclass
class Evaluation:
    report: dict[str, Any]
    labels: list[str]


def evaluate_split(
    model: Classifier, split: Split, tta: str = "none", robustness: bool = False
) -> Evaluation:
    """The contract's report fields (``n``, ``accuracy``, ``macro_f1``, ``per_class``, ``confusion``).

    With FER+ votes in the data they count against the FER+ majority (faces FER+'s protocol
    scores), and the report adds ``fer2013`` (the same metrics against the FER2013 label, every
    face), ``agreement`` (cross-entropy and calibration error against the taggers' shares) and
    ``clearly_shown`` (recall where most taggers agree, and how often those emotions were called
    neutral)."""
    labels = list(model.metadata.labels)
    if split.votes is None:
        report = _scored(model, split, labels, tta, robustness)[0]
        return Evaluation({"labels": "fer2013", **report}, labels)
    # the majority as labels, the taggers' shares as targets, on the faces FER+ scores
    report, probs, shares = _scored(model, relabel(split, "votes"), labels, tta, robustness)
    # the FER2013 label on the same faces, so the two accuracies compare like for like
    fer2013 = _scored(model, split.take(majority_labels(split.votes) != UNSCORED), labels, tta, False)[0]
    report = {"labels": "ferplus-majority", **report}
    report["fer2013"] = {k: fer2013[k] for k in ("n", "accuracy", "macro_f1", "per_class")}
    assert shares is not None
    report["agreement"] = agreement_report(probs, shares)
    report["clearly_shown"] = clearly_shown_report(probs, shares, labels)
    return Evaluation(report, labels)


def _scored(
    model: Classifier, split: Split, labels: list[str], tta: str, robustness: bool
) -> tuple[dict[str, Any], np.ndarray, np.ndarray | None]:
    """Metrics of ``model`` on ``split``'s labels, its probabilities, and the faces' soft targets
    over the model's classes (when the split has any)."""
    images, y, shares = select_classes_with_targets(split, labels)
    if len(y) < len(split):
        logger.warning("skipping %d faces of classes the model does not have", len(split) - len(y))
    if not len(y):
        raise DataError("no faces of a class the model knows")
    images = _at_model_size(model, images)
    probs = predict_proba(model, images, tta)
    report = classification_report(y, probs.argmax(axis=1), labels)
    if robustness:
        report["robustness"] = {}
        for name, degrade in CONDITIONS.items():
            degraded = predict_proba(model, degrade(images), tta).argmax(axis=1)
            acc = float((degraded == y).mean())
            report["robustness"][name] = {
                "accuracy": round(acc, 4),
                "delta": round(acc - report["accuracy"], 4),
            }
    return report, probs, shares


def _at_model_size(model: Classifier, images: np.ndarray) -> np.ndarray:
    size = model.metadata.input_spec().size
    if images.shape[1] == size:
        return images
    from fer_edge.preprocess import crop_face

    return np.stack([crop_face(f, None, size) for f in images])
