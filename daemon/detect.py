"""Face detectors behind one interface, chosen by ``detector.kind`` from a registry.

Each backend is a small class with a ``kind`` and one method. Frames arrive as gray luma and are
downscaled to ``detect_width`` before detection; boxes are mapped back to source pixels, so a
1080p camera costs the detector what a 640-wide one does.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from fer_edge.daemon.config import DetectorConfig
from fer_edge.errors import ConfigError, DataError
from fer_edge.preprocess import Box
from fer_edge.runtime import RuntimeOptions, find_runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detection:
    box: Box  # x, y, w, h in source pixels
    score: float


class FaceDetector(ABC):
    """Finds faces in a gray frame. Subclasses set ``kind`` and register themselves."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[FaceDetector]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        FaceDetector.registry[cls.kind] = cls

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config

    def full_scale(self, width: int) -> float:
        """The factor a whole frame of this width is downscaled by before detection."""
        return min(1.0, self.config.detect_width / float(width))

    def detect(self, gray: np.ndarray) -> list[Detection]:
        """Faces in ``gray`` (H x W uint8), at least ``min_face_px`` wide, in source pixels."""
        return self.detect_region(gray, (0, 0, gray.shape[1], gray.shape[0]), self.full_scale(gray.shape[1]))

    def detect_region(
        self, gray: np.ndarray, region: Box, scale: float, face_px: tuple[int, int] | None = None
    ) -> list[Detection]:
        """Faces inside ``region`` of ``gray``, detected after downscaling it by ``scale``;
        boxes come back in source pixels of the whole frame. ``face_px`` (smallest, largest side
        in source pixels) bounds the sizes searched when the face's size is known, which saves
        most of the cost."""
        x0, y0, rw, rh = region
        view = gray[y0 : y0 + rh, x0 : x0 + rw]
        scale = min(1.0, scale)
        small = (
            view
            if scale == 1.0
            else cv2.resize(
                view, (max(1, round(rw * scale)), max(1, round(rh * scale))), interpolation=cv2.INTER_AREA
            )
        )
        smallest, largest = face_px or (self.config.min_face_px, 0)
        min_px = max(8, int(max(smallest, self.config.min_face_px) * scale))
        max_px = max(min_px, round(largest * scale)) if largest else 0
        found = self._detect_small(small, min_px, max_px)
        out = []
        for (x, y, w, h), score in found:
            box = (x0 + round(x / scale), y0 + round(y / scale), round(w / scale), round(h / scale))
            if min(box[2], box[3]) >= self.config.min_face_px:
                out.append(Detection(box, float(score)))
        return out

    @abstractmethod
    def _detect_small(self, gray: np.ndarray, min_px: int, max_px: int = 0) -> list[tuple[Box, float]]:
        """Faces from ``min_px`` to ``max_px`` wide (0: any) in the downscaled frame, in its pixels."""


class HaarDetector(FaceDetector):
    """OpenCV's bundled frontal-face Haar cascade: no model file, a few ms per 640-wide frame."""

    kind = "haar"

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        # OpenCV's parallel pyramid cuts latency but costs ~25% more CPU per frame on 2 cores;
        # at one analysis a second CPU is the budget, so the default is one thread.
        cv2.setNumThreads(config.threads)
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ConfigError(
                f"detector.kind haar: cannot load {path} (needs opencv-python-headless>=4.10,<5)"
            )

    def _detect_small(self, gray: np.ndarray, min_px: int, max_px: int = 0) -> list[tuple[Box, float]]:
        boxes = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.config.scale_factor,
            minNeighbors=5,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px) if max_px else None,
        )
        return [((int(x), int(y), int(w), int(h)), 1.0) for x, y, w, h in boxes]


def _blazeface_anchors() -> np.ndarray:
    """Anchor centres of MediaPipe's short-range BlazeFace (128x128): 512 at stride 8, 384 at 16."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        for y in range(grid):
            for x in range(grid):
                centres.extend([((x + 0.5) / grid, (y + 0.5) / grid)] * per_cell)
    return np.asarray(centres, np.float32)


class BlazeFaceDetector(FaceDetector):
    """MediaPipe's short-range BlazeFace TFLite model (``detector.model_path``), via the runtime."""

    kind = "blazeface"

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        runtime = find_runtime()
        try:
            self._interpreter = runtime.interpreter_class(
                model_path=str(config.model_path), num_threads=RuntimeOptions().num_threads
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DataError(f"{config.model_path}: not a loadable TFLite model") from e
        inp = self._interpreter.get_input_details()[0]
        self._input_index, self._size = inp["index"], int(inp["shape"][1])
        outputs = self._interpreter.get_output_details()
        by_width = {int(o["shape"][-1]): o["index"] for o in outputs}
        if 16 not in by_width or 1 not in by_width or int(outputs[0]["shape"][1]) != 896:
            raise DataError(
                f"{config.model_path}: expected BlazeFace short-range outputs "
                "(896 x 16 boxes, 896 x 1 scores)"
            )
        self._boxes_index, self._scores_index = by_width[16], by_width[1]
        self._anchors = _blazeface_anchors()

    def _detect_small(self, gray: np.ndarray, min_px: int, max_px: int = 0) -> list[tuple[Box, float]]:
        h, w = gray.shape
        side = max(h, w)  # letterbox to a square so faces keep their shape
        square = np.zeros((side, side), np.uint8)
        square[:h, :w] = gray
        resized = cv2.resize(square, (self._size, self._size), interpolation=cv2.INTER_AREA)
        x = (resized.astype(np.float32) / 127.5 - 1.0)[np.newaxis, :, :, np.newaxis]
        self._interpreter.set_tensor(self._input_index, np.repeat(x, 3, axis=-1))
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes_index)[0]
        logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100, 100)))
        keep = scores >= self.config.score_threshold
        if not keep.any():
            return []
        cx = raw[keep, 0] / self._size + self._anchors[keep, 0]
        cy = raw[keep, 1] / self._size + self._anchors[keep, 1]
        bw, bh = raw[keep, 2] / self._size, raw[keep, 3] / self._size
        rects = np.stack([(cx - bw / 2) * side, (cy - bh / 2) * side, bw * side, bh * side], 1)
        chosen = cv2.dnn.NMSBoxes(rects.tolist(), scores[keep].tolist(), self.config.score_threshold, 0.3)
        return [
            (tuple(round(v) for v in rects[i]), float(scores[keep][i]))  # type: ignore[misc]
            for i in np.asarray(chosen).reshape(-1)
        ]


def create_detector(config: DetectorConfig) -> FaceDetector:
    """The detector for ``config.kind``; an unknown kind names the known ones."""
    try:
        cls = FaceDetector.registry[config.kind]
    except KeyError:
        raise ConfigError(
            f"detector.kind {config.kind}: expected one of {', '.join(FaceDetector.registry)}"
        ) from None
    return cls(config)
