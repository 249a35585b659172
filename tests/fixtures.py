"""Small datasets the tests write themselves (a fresh clone has no FER2013)."""

from __future__ import annotations

import gzip
from pathlib import Path

import cv2
import numpy as np

from fer_edge.labels import LABELS


def synthetic_faces(n: int, seed: int = 0, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """Learnable stand-ins for faces: class c is a bright bar at a class-specific row, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(LABELS)
    images = rng.integers(0, 70, (n, size, size)).astype(np.int32)
    for i, c in enumerate(labels):
        row = 3 + int(c) * (size - 8) // len(LABELS)
        images[i, row : row + 5, 4:-4] += 160
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_fer_csv(path: Path, splits: dict[str, int], seed: int = 0, gz: bool = False) -> Path:
    """A FER2013-layout CSV (``emotion,pixels,Usage``) with ``splits[name]`` rows each."""
    lines = ["emotion,pixels,Usage"]
    for k, (usage, n) in enumerate(splits.items()):
        images, labels = synthetic_faces(n, seed + k)
        for image, label in zip(images, labels, strict=True):
            lines.append(f"{label},{' '.join(map(str, image.ravel()))},{usage}")
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def write_image_folder(
    root: Path,
    per_class: int,
    folder_names: dict[str, str] | None = None,
    seed: int = 0,
    size: int = 48,
) -> Path:
    """``root/<label folder>/<i>.png`` with ``per_class`` images of each class."""
    folder_names = folder_names or {label: label for label in LABELS}
    images, labels = synthetic_faces(per_class * len(LABELS), seed, size)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = folder_names.get(LABELS[label])
        if name is None:
            continue
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(directory / f"{i}.png"), image)
    return root


def calibrate_cli(keras_model: Path, data: Path, mode: str, out: Path, *extra: str) -> int:
    """Run ``fer-edge -q calibrate`` in-process; returns its exit code."""
    from fer_edge.cli import main

    return main(
        [
            "-q",
            "calibrate",
            "--model",
            str(keras_model),
            "--data",
            str(data),
            "--mode",
            mode,
            "--out",
            str(out),
            "--cache-dir",
            "none",
            *extra,
        ]
    )


def train_cli(arch: str, data: Path, out: Path, *extra: str) -> int:
    """Run ``fer-edge -q train --arch ARCH`` in-process without a dataset cache; returns its exit code."""
    return training_cli("train", data, out, "--arch", arch, *extra)


def ensemble_cli(out: Path, *models: str | Path) -> int:
    """Run ``fer-edge -q ensemble`` in-process on ``models``; returns its exit code."""
    from fer_edge.cli import main

    return main(["-q", "ensemble", *(a for m in models for a in ("--model", str(m))), "--out", str(out)])


def training_cli(command: str, data: Path, out: Path, *extra: str) -> int:
    """Run ``fer-edge -q train``, ``teach`` or ``distill`` in-process without a dataset cache;
    returns its exit code."""
    from fer_edge.cli import main

    return main(["-q", command, "--data", str(data), "--out", str(out), "--cache-dir", "none", *extra])


VOTE_HEADER = "neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
# FER+ vote column of each of LABELS (angry, disgust, fear, happy, sad, surprise, neutral)
_VOTE_COLUMN = {0: 4, 1: 5, 2: 6, 3: 1, 4: 3, 5: 2, 6: 0}


def ferplus_votes(shown: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FER+-style votes for faces whose image shows class ``shown``: 7 of 10 taggers see it,
    3 see another class; the FER2013 label is right on only 30% of the faces, and otherwise
    names the next class (one tagger with a systematic slip);
    every 20th face is mostly 'unknown' and every 31st mostly 'not a face'. Returns
    ``(fer2013 labels, N x 10 vote counts)``."""
    rng = np.random.default_rng(seed)
    n = len(shown)
    votes = np.zeros((n, 10), np.int64)
    fer2013 = np.where(rng.random(n) < 0.3, shown, (shown + 1) % len(LABELS))
    for i, c in enumerate(shown):
        votes[i, _VOTE_COLUMN[int(c)]] += 7
        votes[i, rng.integers(0, 8)] += 3
        if i % 20 == 19:
            votes[i] = 0
            votes[i, 8], votes[i, _VOTE_COLUMN[int(c)]] = 6, 4
        elif i % 31 == 30:
            votes[i] = 0
            votes[i, 9], votes[i, _VOTE_COLUMN[int(c)]] = 8, 2
    return fer2013, votes


def write_ferplus_csv(path: Path, splits: dict[str, int], seed: int = 0) -> Path:
    """``fer2013plus.csv.gz``'s layout: ``emotion,pixels,Usage`` and FER+'s ten vote columns, with
    faces whose picture agrees with the taggers' majority and only 30% of the time with the
    FER2013 label (see :func:`ferplus_votes`)."""
    lines = [f"emotion,pixels,Usage,{VOTE_HEADER}"]
    for k, (usage, n) in enumerate(splits.items()):
        images, shown = synthetic_faces(n, seed + k)
        fer2013, votes = ferplus_votes(shown, seed + k)
        for image, label, row in zip(images, fer2013, votes, strict=True):
            lines.append(f"{label},{' '.join(map(str, image.ravel()))},{usage},{','.join(map(str, row))}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    return path
