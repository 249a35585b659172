"""What a published score means: temperature scaling, and how well scores match the taggers.

A dashboard reads ``score: 0.8`` as "eight in ten people would call this face that". FER+ asked ten
taggers about each face, so that reading can be checked: the expected calibration error compares
each face's top score with the share of taggers who chose the top class. A model's softmax is
often over- or under-confident; one temperature, fitted on the selection split and stored in the
model's metadata, rescales every score the runtime returns (the ranking, so accuracy, is unchanged).

A model trained with class weights (rare emotions weigh more, so they are still seen) predicts the
rare classes more often than the taggers choose them. A prior shift, ``bias = strength * log(prior)``
with the taggers' class shares as the prior, moves every score part of the way back; the strength is
chosen on the selection split as the one that agrees most with the taggers' majority without
losing macro-F1 (the rare emotions, on balance, are seen as well as before). Like the temperature,
it is stored in the metadata and applied by the runtime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from fer_edge.metrics import classification_report

ECE_BINS = 10
_FLOOR = 1e-6  # an int8 softmax rounds small probabilities to 0; log needs them above it


PRIOR_STRENGTHS = tuple(round(0.05 * i, 2) for i in range(-10, 21))  # -0.5 .. 1.0
# Accuracies closer than this (about 3 faces in 3,500) are a tie: the weaker shift is taken, so
# a few faces' gain never buys a stronger lean to the common classes.
ACCURACY_TIE = 0.001


def rescale_scores(
    probs: np.ndarray, temperature: float = 1.0, bias: Sequence[float] | None = None
) -> np.ndarray:
    """``softmax((log(p) + bias) / T)`` row by row; ``T = 1`` without a bias returns ``probs``."""
    if (temperature == 1.0 and not bias) or len(probs) == 0:
        return probs
    logits = np.log(np.clip(probs.astype(np.float64), _FLOOR, 1.0))
    if bias:
        logits = logits + np.asarray(bias, np.float64)
    logits /= temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(np.float32)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(p) / T)`` row by row; ``T = 1`` returns ``probs`` unchanged."""
    return rescale_scores(probs, temperature)


def prior_bias(prior: np.ndarray, strength: float) -> list[float]:
    """Per-class log offsets ``strength * log(prior)``, centred (only their differences count)."""
    logp = np.log(np.clip(np.asarray(prior, np.float64), _FLOOR, 1.0))
    return [round(float(v), 4) for v in strength * (logp - logp.mean())]


def choose_prior_strength(
    probs: np.ndarray, y: np.ndarray, labels: Sequence[str], prior: np.ndarray
) -> dict[str, Any]:
    """The prior shift with the best majority accuracy whose macro-F1 is no lower than with no
    shift (within :data:`ACCURACY_TIE`: the weakest such shift), over :data:`PRIOR_STRENGTHS`,
    with the figures behind it."""
    rows = []
    for strength in PRIOR_STRENGTHS:
        predicted = rescale_scores(probs, 1.0, prior_bias(prior, strength)).argmax(axis=1)
        report = classification_report(y, predicted, labels)
        rows.append({"strength": strength, "accuracy": round(report["accuracy"], 4),
                     "macro_f1": round(report["macro_f1"], 4)})  # fmt: skip
    unshifted = next(r for r in rows if r["strength"] == 0.0)
    allowed = [r for r in rows if r["macro_f1"] >= unshifted["macro_f1"]]
    top = max(r["accuracy"] for r in allowed)
    best = min((r for r in allowed if r["accuracy"] >= top - ACCURACY_TIE), key=lambda r: abs(r["strength"]))
    return {"strength": best["strength"], "unshifted": unshifted, "chosen": best, "grid": rows}


def cross_entropy(probs: np.ndarray, shares: np.ndarray) -> float:
    """Mean cross-entropy of the scores against each face's share of taggers per class (nats)."""
    logp = np.log(np.clip(probs.astype(np.float64), _FLOOR, 1.0))
    return float(-np.mean(np.sum(shares * logp, axis=1)))


def reliability(probs: np.ndarray, shares: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """Expected calibration error of the top score against the taggers' share of the top class,
    with the bins behind it (for the reliability diagram)."""
    top = probs.argmax(axis=1)
    confidence = probs[np.arange(len(probs)), top].astype(np.float64)
    agreement = shares[np.arange(len(shares)), top].astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        inside = which == b
        n = int(inside.sum())
        if not n:
            continue
        mean_conf, mean_share = float(confidence[inside].mean()), float(agreement[inside].mean())
        ece += n / len(probs) * abs(mean_conf - mean_share)
        rows.append(
            {
                "from": round(float(edges[b]), 2),
                "to": round(float(edges[b + 1]), 2),
                "n": n,
                "mean_score": round(mean_conf, 4),
                "taggers_share": round(mean_share, 4),
            }
        )
    return {"ece": round(ece, 4), "bins": rows}


def fit_temperature(probs: np.ndarray, shares: np.ndarray, low: float = 0.25, high: float = 8.0) -> float:
    """The temperature that minimises cross-entropy against the taggers' shares (golden-section
    search over log T; the loss is smooth and unimodal in T)."""
    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    loss = lambda log_t: cross_entropy(apply_temperature(probs, math.exp(log_t)), shares)  # noqa: E731
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(40):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return round(math.exp((a + b) / 2.0), 4)


def agreement_report(probs: np.ndarray, shares: np.ndarray) -> dict[str, Any]:
    """How well scores match the taggers: cross-entropy and expected calibration error."""
    return {"cross_entropy": round(cross_entropy(probs, shares), 4), **reliability(probs, shares)}


CLEAR_SHARE = 0.7  # a face most taggers (7 of 10) read one way shows that emotion clearly


def clearly_shown_report(
    probs: np.ndarray, shares: np.ndarray, labels: Sequence[str], share: float = CLEAR_SHARE
) -> dict[str, Any]:
    """Recall on the faces whose emotion is plain to see (at least ``share`` of the taggers
    agree): accuracy against the majority rewards a model that calls unsure faces neutral, and
    this is where that habit shows, as emotions most taggers saw and the model called
    neutral (``emotions_called_neutral``)."""
    clear = shares.max(axis=1) >= share
    seen = classification_report(shares[clear].argmax(axis=1), probs[clear].argmax(axis=1), labels)
    per_class = {
        label: {"n": row["support"], "recall": row["recall"] if row["support"] else None}
        for label, row in seen["per_class"].items()
    }
    report: dict[str, Any] = {"share": share, "n": seen["n"], "per_class": per_class}
    if "neutral" in labels:
        neutral = list(labels).index("neutral")
        emotions = np.delete(np.asarray(seen["confusion"]), neutral, axis=0)  # rows: what taggers saw
        total = int(emotions.sum())
        called = float(emotions[:, neutral].sum() / total) if total else 0.0
        report["emotions_called_neutral"] = round(called, 4)
    return report
