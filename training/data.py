"""Load face datasets: FER2013 CSV (``.csv``/``.csv.gz``) and image folders.

FER2013's CSV is ~290 MB of text; it is parsed once, in one streaming pass over all splits, and the
decoded arrays are cached as ``.npz`` so the next run starts in seconds.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_edge.atomic import atomic_path
from fer_edge.errors import DataError, MissingInputError, UsageError
from fer_edge.labels import LABELS, canonical_label
from fer_edge.preprocess import crop_face
from fer_edge.training.ferplus import VOTE_COLUMNS

logger = logging.getLogger(__name__)
# where decoded datasets are cached (``--cache-dir``); importing this module needs no Keras
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fer-edge"

CACHE_VERSION = 2
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
# The order the README fixes for the default --split: report on PrivateTest where it exists.
REPORT_SPLITS = ("PrivateTest", "PublicTest")
SELECTION_SPLITS = ("PublicTest", "validation", "val", "test")
_SPLIT_ALIASES = {
    "training": "Training",
    "train": "Training",
    "publictest": "PublicTest",
    "privatetest": "PrivateTest",
    "validation": "validation",
    "val": "val",
    "test": "test",
}


@dataclass
class Split:
    """Faces of one split: ``images`` N x S x S uint8, ``labels`` N indices into :data:`LABELS`.

    ``votes`` (N x 10, FER+'s column order) are the ten taggers' counts when the data has them;
    ``targets`` (N x len(LABELS) shares) are soft labels when a run learns from the votes.
    """

    images: np.ndarray
    labels: np.ndarray
    votes: np.ndarray | None = None
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Split:
        """The faces at ``index`` (indices or a boolean mask), with their votes and targets."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Split(self.images[index], self.labels[index], pick(self.votes), pick(self.targets))


@dataclass
class Dataset:
    """All splits of one data source, by split name (``Training``, ``PublicTest``, ...)."""

    source: str
    splits: dict[str, Split]

    def split_names(self) -> list[str]:
        return list(self.splits)

    def get(self, name: str | None) -> tuple[str, Split]:
        """Resolve ``--split``: a name (case-insensitive), or the contract's default when ``None``.

        The default is the first of PrivateTest, PublicTest the data has, else the whole set.
        """
        if name is None:
            for candidate in REPORT_SPLITS:
                if candidate in self.splits:
                    return candidate, self.splits[candidate]
            return "all", concat(self.splits.values())
        if name.lower() == "all":
            return "all", concat(self.splits.values())
        for key, split in self.splits.items():
            if key.lower() == name.lower():
                return key, split
        raise UsageError(
            f"--split {name}: {self.source} has no such split; it has {', '.join(self.splits) or 'none'}"
        )

    def selection(self) -> tuple[str, Split] | None:
        """The split that selects checkpoints (PublicTest, else a validation/test folder)."""
        for candidate in SELECTION_SPLITS:
            for key, split in self.splits.items():
                if key.lower() == candidate.lower():
                    return key, split
        return None


def select_classes(split: Split, classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Faces of ``classes`` only, with labels re-indexed into ``classes`` (a model's label list)."""
    images, y, _ = select_classes_with_targets(split, classes)
    return images, y


def select_classes_with_targets(
    split: Split, classes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`select_classes`, plus the faces' soft targets over ``classes`` (renormalised over
    the kept classes) when the split has any."""
    mapping = np.full(len(LABELS), -1, np.int64)
    for i, name in enumerate(classes):
        mapping[LABELS.index(name)] = i
    y = mapping[split.labels]
    keep = y >= 0
    if split.targets is None:
        return split.images[keep], y[keep], None
    columns = [LABELS.index(name) for name in classes]
    targets = split.targets[keep][:, columns]
    targets = targets / np.maximum(targets.sum(axis=1, keepdims=True), 1e-9)
    return split.images[keep], y[keep], targets.astype(np.float32)


def concat(splits: Iterable[Split]) -> Split:
    parts = list(splits)
    if not parts:
        raise DataError("no faces to concatenate")
    joined = lambda name: (  # noqa: E731
        np.concatenate([getattr(p, name) for p in parts])
        if all(getattr(p, name) is not None for p in parts)
        else None
    )
    return Split(joined("images"), joined("labels"), joined("votes"), joined("targets"))


def load_dataset(
    path: str | os.PathLike[str], size: int = 48, cache_dir: str | os.PathLike[str] | None = None
) -> Dataset:
    """Load a FER2013 CSV(.gz) or an image folder, as ``size`` x ``size`` gray faces.

    With ``cache_dir`` the decoded arrays are kept there, keyed by the source's path, size and
    modification time, so a changed file is decoded again.
    """
    source = Path(path)
    if not source.exists():
        raise MissingInputError(f"{source}: no such file or folder")
    if source.is_dir():
        loader = _load_image_folder
    elif source.name.lower().endswith((".csv", ".csv.gz")):
        loader = _load_fer_csv
    else:
        raise DataError(f"{source}: expected a FER2013 .csv/.csv.gz file or an image folder")
    cache_file = _cache_file(source, size, cache_dir) if cache_dir else None
    if cache_file is not None and cache_file.exists():
        try:
            return _read_cache(source, cache_file)
        except (OSError, ValueError, KeyError) as e:
            logger.warning("ignoring unreadable cache %s: %s", cache_file, e)
    dataset = loader(source, size)
    if cache_file is not None:
        _write_cache(dataset, cache_file)
    return dataset


def _cache_file(source: Path, size: int, cache_dir: str | os.PathLike[str]) -> Path:
    stat = source.stat()
    if source.is_dir():  # a folder's mtime changes when files are added or removed
        stamp = f"{stat.st_mtime_ns}:{sum(1 for _ in source.rglob('*'))}"
    else:
        stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
    key = f"{CACHE_VERSION}:{source.resolve()}:{stamp}:{size}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    stem = source.name.split(".")[0]
    return Path(cache_dir) / f"{stem}-{size}px-{digest}.npz"


def _read_cache(source: Path, cache_file: Path) -> Dataset:
    with np.load(cache_file) as npz:
        names = [str(n) for n in npz["split_names"]]
        splits = {
            n: Split(npz[f"{n}__images"], npz[f"{n}__labels"], npz.get(f"{n}__votes", None)) for n in names
        }
    logger.info("loaded %s from cache %s", source, cache_file)
    return Dataset(str(source), splits)


def _write_cache(dataset: Dataset, cache_file: Path) -> None:
    arrays: dict[str, np.ndarray] = {"split_names": np.array(dataset.split_names())}
    for name, split in dataset.splits.items():
        arrays[f"{name}__images"] = split.images
        arrays[f"{name}__labels"] = split.labels
        if split.votes is not None:
            arrays[f"{name}__votes"] = split.votes
    with atomic_path(cache_file) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    logger.info("cached decoded faces at %s", cache_file)


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _load_fer_csv(path: Path, size: int) -> Dataset:
    """Stream the CSV once; rows go straight into per-split lists of arrays."""
    images: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[int]] = {}
    votes: dict[str, list[np.ndarray]] = {}
    try:
        with _open_text(path) as fh:
            for usage, label, face, face_votes in _parse_fer_rows(path, fh, size):
                images.setdefault(usage, []).append(face)
                labels.setdefault(usage, []).append(label)
                if face_votes is not None:
                    votes.setdefault(usage, []).append(face_votes)
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read CSV: {e}") from e
    if not images:
        raise DataError(f"{path}: no data rows")
    splits = {
        u: Split(np.stack(images[u]), np.asarray(labels[u], np.int64), np.stack(votes[u]) if votes else None)
        for u in images
    }
    return Dataset(str(path), splits)


def _vote_columns(path: Path, columns: list[str]) -> list[int] | None:
    """Where FER+'s ten vote columns are, when the header has all of them (else ``None``)."""
    present = [c for c in VOTE_COLUMNS if c in columns]
    if not present:
        return None
    if len(present) != len(VOTE_COLUMNS):
        missing = [c for c in VOTE_COLUMNS if c not in columns]
        raise DataError(f"{path}:1: FER+ vote columns incomplete: missing {','.join(missing)}")
    return [columns.index(c) for c in VOTE_COLUMNS]


def _parse_votes(path: Path, line: int, row: list[str], where: list[int]) -> np.ndarray:
    try:
        counts = np.array([int(row[i]) for i in where], np.int64)
    except ValueError:
        raise DataError(f"{path}:{line}: FER+ votes: expected whole numbers of taggers") from None
    if counts.min() < 0 or counts.max() > 255:
        raise DataError(f"{path}:{line}: FER+ votes: counts must lie in 0..255")
    return counts.astype(np.uint8)


def _parse_fer_rows(
    path: Path, fh: io.TextIOBase, size: int
) -> Iterator[tuple[str, int, np.ndarray, np.ndarray | None]]:
    reader = csv.reader(fh)
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path}: empty file; expected the header emotion,pixels,Usage")
    columns = [h.strip().lower() for h in header]
    for required in ("emotion", "pixels"):
        if required not in columns:
            raise DataError(f"{path}:1: missing column '{required}' (header: {','.join(header)})")
    i_emotion, i_pixels = columns.index("emotion"), columns.index("pixels")
    i_usage = columns.index("usage") if "usage" in columns else None
    i_votes = _vote_columns(path, columns)
    for row in reader:
        line = reader.line_num
        if not row:
            continue
        if len(row) != len(columns):
            raise DataError(f"{path}:{line}: expected {len(columns)} fields, received {len(row)}")
        try:
            label = int(row[i_emotion])
        except ValueError:
            raise DataError(f"{path}:{line}: emotion: {row[i_emotion]!r} is not an integer") from None
        if not 0 <= label < len(LABELS):
            raise DataError(f"{path}:{line}: emotion: {label} is outside 0..{len(LABELS) - 1}")
        face = _parse_pixels(path, line, row[i_pixels])
        usage = row[i_usage].strip() if i_usage is not None else "all"
        if not usage:
            raise DataError(f"{path}:{line}: Usage: empty")
        votes = _parse_votes(path, line, row, i_votes) if i_votes is not None else None
        yield usage, label, crop_face(face, None, size), votes


def _parse_pixels(path: Path, line: int, text: str) -> np.ndarray:
    try:
        values = np.array(text.split(), dtype=np.int32)
    except ValueError:
        raise DataError(f"{path}:{line}: pixels: not a list of integers") from None
    side = round(len(values) ** 0.5)
    if len(values) == 0 or side * side != len(values):
        raise DataError(
            f"{path}:{line}: pixels: expected a square image (e.g. 2304 = 48x48 values), "
            f"received {len(values)}"
        )
    if values.min() < 0 or values.max() > 255:
        raise DataError(f"{path}:{line}: pixels: values must lie in 0..255")
    return values.astype(np.uint8).reshape(side, side)


def _label_dirs(folder: Path) -> dict[str, Path]:
    """Child folders of ``folder`` that name a known class; unknown ones are skipped, with a warning."""
    found: dict[str, Path] = {}
    for child in sorted(p for p in folder.iterdir() if p.is_dir()):
        label = canonical_label(child.name)
        if label is None:
            logger.warning("%s: skipping folder of unknown class %r", child, child.name)
            continue
        found.setdefault(label, child)
    return found


def _load_image_folder(root: Path, size: int) -> Dataset:
    """``root/<split>/<label>/*`` or split-less ``root/<label>/*``."""
    children = [p for p in root.iterdir() if p.is_dir()]
    if not children:
        raise DataError(f"{root}: empty folder; expected <split>/<label>/ or <label>/ subfolders of images")
    if any(canonical_label(c.name) for c in children):
        splits = {"all": _load_label_dirs(root, size)}
    else:
        splits = {}
        for child in sorted(children):
            name = _SPLIT_ALIASES.get(child.name.lower(), child.name)
            splits[name] = _load_label_dirs(child, size)
    return Dataset(str(root), splits)


def _load_label_dirs(folder: Path, size: int) -> Split:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, directory in _label_dirs(folder).items():
        for file in sorted(directory.iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            images.append(crop_face(_read_gray(file), None, size))
            labels.append(LABELS.index(label))
    if not images:
        raise DataError(
            f"{folder}: no readable images of a known class "
            f"(expected {'|'.join(LABELS)} subfolders of .png/.jpg files)"
        )
    return Split(np.stack(images), np.asarray(labels, np.int64))


def _read_gray(file: Path) -> np.ndarray:
    try:
        data = np.fromfile(file, dtype=np.uint8)
    except OSError as e:
        raise MissingInputError(f"{file}: cannot read: {e.strerror}") from e
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if image is None:
        raise DataError(f"{file}: not a readable image")
    return image
