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
