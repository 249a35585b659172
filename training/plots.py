"""Training curves and confusion-matrix PNGs (matplotlib, headless, written atomically)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.atomic import atomic_path

logger = logging.getLogger(__name__)


def _pyplot() -> Any | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed: PNG plots are skipped (pip install 'fer-edge[train]')")
        return None
    return plt


def plot_curves(history: dict[str, list[float]], path: str | Path) -> bool:
    """Loss and accuracy per epoch, training beside selection split. Returns whether it wrote."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(epochs, values, style, label=("selection " if prefix else "train ") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return True


def plot_confusion(
    matrix: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path, title: str = ""
) -> bool:
    """Row-normalised confusion matrix with counts. Returns whether it wrote."""
    plt = _pyplot()
    if plt is None:
        return False
    counts = np.asarray(matrix)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{counts[i, j]}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return True


def plot_reliability(bins: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> bool:
    """Reliability diagram: per bin of top score, the mean score against the share of taggers who
    chose that class (on the diagonal, a score means what it says). Returns whether it wrote."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 5))
    centres = [(b["from"] + b["to"]) / 2 for b in bins]
    width = [0.9 * (b["to"] - b["from"]) for b in bins]
    ax.bar(centres, [b["taggers_share"] for b in bins], width=width, color="#4a7ab8", label="taggers' share")
    ax.plot(
        [b["mean_score"] for b in bins],
        [b["taggers_share"] for b in bins],
        "o",
        color="#c0392b",
        label="mean score",
    )
    ax.plot([0, 1], [0, 1], "--", color="gray", label="a score that means what it says")
    for centre, b in zip(centres, bins, strict=True):
        ax.text(centre, 0.02, str(b["n"]), ha="center", fontsize=7, color="white")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("top score")
    ax.set_ylabel("share of taggers who chose that class")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return True
