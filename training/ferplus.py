"""FER+ votes: ten taggers per FER2013 face, and the labels a run can learn from them.

FER2013's label is one tagger's call; FER+ (Barsoum et al., ICMI 2016) asked ten people about each
face. Three ways to label a face follow (``--labels``):

- ``fer2013``: the one original label, every face;
- ``majority``: the class most taggers chose (FER+'s protocol: faces whose most-voted class is
  ``unknown`` or not-a-face are left out; so are faces most taggers called ``contempt``, a class the
  product does not have);
- ``votes``: the share of taggers who chose each of the seven classes (soft targets), on the
  faces ``majority`` keeps. ``contempt`` votes are dropped and the rest renormalised (the model
  card gives the measurement behind that choice). The FER2013 label can count as
  ``fer2013_votes`` extra taggers, which keeps the emotions a lone tagger saw where the crowd
  leaned to neutral.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from fer_edge.errors import UsageError
from fer_edge.labels import LABELS

if TYPE_CHECKING:
    from fer_edge.training.data import Split

VOTE_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "nf",
)
LABEL_MODES: tuple[str, ...] = ("fer2013", "majority", "votes")
# Where each of the seven emotion columns goes in LABELS order; contempt, unknown and NF go nowhere.
_EMOTION_COLUMN_TO_LABEL = {
    "neutral": "neutral",
    "happiness": "happy",
    "surprise": "surprise",
    "sadness": "sad",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
}
UNSCORED = -1  # majority label of a face FER+'s protocol leaves out


def emotion_votes(votes: np.ndarray) -> np.ndarray:
    """The N x 10 FER+ vote counts as N x 7 counts in :data:`LABELS` order (contempt, unknown and
    not-a-face dropped)."""
    out = np.zeros((len(votes), len(LABELS)), np.float32)
    for column, label in _EMOTION_COLUMN_TO_LABEL.items():
        out[:, LABELS.index(label)] = votes[:, VOTE_COLUMNS.index(column)]
    return out


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """The most-voted class per face as an index into :data:`LABELS`, or :data:`UNSCORED` where
    it is ``contempt``, ``unknown`` or not-a-face. Ties go to the first column in FER+'s order."""
    top = np.argmax(votes, axis=1)
    to_label = np.full(len(VOTE_COLUMNS), UNSCORED, np.int64)
    for column, label in _EMOTION_COLUMN_TO_LABEL.items():
        to_label[VOTE_COLUMNS.index(column)] = LABELS.index(label)
    return to_label[top]


def vote_shares(
    votes: np.ndarray, fer2013: np.ndarray | None = None, fer2013_votes: float = 0.0
) -> np.ndarray:
    """Each face's share of taggers per class (N x 7, rows sum to 1), with the FER2013 label
    counted as ``fer2013_votes`` more taggers. Faces without an emotion vote get a uniform row."""
    counts = emotion_votes(votes)
    if fer2013 is not None and fer2013_votes:
        counts[np.arange(len(counts)), fer2013] += fer2013_votes
    total = counts.sum(axis=1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1e-9), 1.0 / len(LABELS)).astype(np.float32)


def relabel(split: Split, mode: str, fer2013_votes: float = 0.0) -> Split:
    """``split`` labelled as ``--labels mode`` says: ``fer2013`` leaves it as it is; ``majority``
    and ``votes`` keep the faces FER+'s protocol scores, with the majority as ``labels`` (what
    accuracy and selection count against) and, for ``votes``, the shares as ``targets``."""
    if mode not in LABEL_MODES:
        raise UsageError(f"--labels {mode}: expected one of {', '.join(LABEL_MODES)}")
    if mode == "fer2013":
        return replace(split, targets=None)
    if split.votes is None:
        raise UsageError(f"--labels {mode} needs FER+ vote columns ({','.join(VOTE_COLUMNS)}) in the data")
    majority = majority_labels(split.votes)
    kept = split.take(majority != UNSCORED)
    targets = vote_shares(kept.votes, kept.labels, fer2013_votes) if mode == "votes" else None
    return replace(kept, labels=majority[majority != UNSCORED], targets=targets)
