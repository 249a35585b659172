"""The emotion classes, in FER2013 order, and the synonyms datasets use for them.

One definition serves training, evaluation and the daemon: a model's own label list lives in its
metadata (a model trained with ``--drop-class`` has fewer), but every name must be one of these.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Folder names seen in public exports (Kaggle FER2013 images, CK+, RAF-DB, AffectNet).
_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}


def canonical_label(name: str) -> str | None:
    """Map a folder or column name to one of :data:`LABELS`, or ``None`` if it is no known class."""
    return _SYNONYMS.get(name.strip().lower())


def label_index(name: str, labels: tuple[str, ...] = LABELS) -> int:
    """Index of ``name`` in ``labels``; raises ``ValueError`` naming the known labels."""
    try:
        return labels.index(name)
    except ValueError:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(labels)}") from None
