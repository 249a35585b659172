"""Face detectors behind one interface, chosen by ``detector.kind`` from a registry.

Each backend answers three questions the scan planner asks (see ``scan.py``): every face in the
frame (:meth:`FaceDetector.detect`), faces inside a region that moved
(:meth:`FaceDetector.search`), and where a known face went (:meth:`FaceDetector.redetect`). Frames
arrive as gray luma; boxes come back in source pixels. Each detector also carries its
:class:`~fer_edge.preprocess.Framing`: how its boxes map to the crop the emotion model was trained
on, fitted from data and shipped beside the detector (``fer_edge/models/detectors/<kind>.json``).

* ``blazeface`` (default): MediaPipe's BlazeFace CNNs, shipped with fer-edge. The back-camera model
  (256x256) proposes faces down to a tenth of its input over tiles sized so the smallest face
  searched still is; the short-range model (128x128) then looks at each proposal at a size it
  handles best and gives the final box and score. Finds faces of 40 px in a 1080p frame.
* ``haar``: OpenCV's bundled cascade on a downscaled frame; no model file, fewer faces found.
"""

from __future__ import annotations

import json
import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np

from fer_edge.daemon import blazeface
from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.pose import Keypoints, mirror_keypoints
from fer_edge.daemon.track import iou
from fer_edge.errors import ConfigError, DataError
from fer_edge.preprocess import Box, Framing
from fer_edge.runtime import find_runtime

logger = logging.getLogger(__name__)

DETECTORS_DIR = "models/detectors"
REGION_FACE_PX = 48  # Haar: known faces are re-detected at this size (the cascade's window is 24)
REGION_SIZES = (0.8, 1.25)  # ... searching sizes from/to these multiples of the last one
# BlazeFace: the least short-range score worth pooling (the pooled score decides)
REFINE_FLOOR = 0.05
# BlazeFace: a face followed from last tick whose first close look scores at least this skips the
# mirror look (half its cost). Over 24 of the stream benchmark's scenes and the walkers, the
# mirror turned down none of the 172 followed faces' looks scoring 0.8 or more (and 3 of 26 at
# 0.7-0.8); new faces always take both looks
SURE_LOOK = 0.85


@dataclass(frozen=True)
class Detection:
    box: Box  # x, y, w, h in source pixels
    score: float
    # BlazeFace's six keypoints in source pixels (see fer_edge.daemon.pose); None for Haar
    keypoints: Keypoints | None = None


def bundled_detector_file(name: str) -> Path:
    """A file shipped in ``fer_edge/models/detectors/``."""
    return Path(str(files("fer_edge").joinpath(DETECTORS_DIR, name)))


def load_framing(kind: str, path: Path | None = None) -> Framing:
    """The box-to-crop framing fitted for detector ``kind`` (a JSON file beside its models)."""
    source = path or bundled_detector_file(f"{kind}.json")
    try:
        framing = json.loads(source.read_text())["framing"]
        return Framing(float(framing["dx"]), float(framing["dy"]), float(framing["scale"]))
    except FileNotFoundError:
        raise ConfigError(f"{source}: detector framing file is missing") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{source}: not a detector framing file ({e})") from None


def grow(box: Box, margin: float, width: int, height: int) -> Box:
    """``box`` grown by ``margin`` box sides on each side, clipped to the frame."""
    x, y, w, h = box
    dx, dy = round(w * margin), round(h * margin)
    x0, y0 = max(0, x - dx), max(0, y - dy)
    x1, y1 = min(width, x + w + dx), min(height, y + h + dy)
    return (x0, y0, x1 - x0, y1 - y0)


class FaceDetector(ABC):
    """Finds faces in a gray frame. Subclasses set ``kind`` and register themselves."""

    kind: ClassVar[str]
    registry: ClassVar[dict[str, type[FaceDetector]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        FaceDetector.registry[cls.kind] = cls

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.framing = load_framing(self.kind, config.framing_path)

    def detect(self, gray: np.ndarray) -> list[Detection]:
        """Faces in ``gray`` (H x W uint8), at least ``min_face_px`` wide, in source pixels."""
        return self.search(gray, (0, 0, gray.shape[1], gray.shape[0]))

    @abstractmethod
    def search(self, gray: np.ndarray, region: Box, min_face: int | None = None) -> list[Detection]:
        """Faces of any size from ``min_face`` (default ``min_face_px``) up inside ``region``
        (source pixels)."""

    @abstractmethod
    def redetect(self, gray: np.ndarray, last: Box) -> list[Detection]:
        """The face last seen at ``last``, if it is still near there (at most one box side away)."""

    def confirm(self, gray: np.ndarray, expected: Box, strict: bool = False) -> list[Detection]:
        """The face expected at ``expected`` by the cheapest look there, or nothing. ``strict``: it is
        predicted there, never seen, so it needs a new face's evidence. Default: :meth:`redetect`."""
        return self.redetect(gray, expected)

    # boxes may come out this much smaller than the smallest face searched (a detector's box
    # scatters around a face's size) and are kept: the search was made for them
    KEEP_FRACTION: ClassVar[float] = 1.0

    def _keep(self, found: list[Detection]) -> list[Detection]:
        least = self.KEEP_FRACTION * self.config.min_face_px
        return [d for d in found if min(d.box[2], d.box[3]) >= least]


class HaarDetector(FaceDetector):
    """OpenCV's bundled frontal-face Haar cascade on a frame downscaled to ``detect_width``."""

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

    def full_scale(self, width: int) -> float:
        """The factor a whole frame of this width is downscaled by before detection."""
        return min(1.0, self.config.detect_width / float(width))

    def search(self, gray: np.ndarray, region: Box, min_face: int | None = None) -> list[Detection]:
        sizes = None if min_face is None else (min_face, max(region[2], region[3]))
        return self.detect_region(gray, region, self.full_scale(gray.shape[1]), sizes)

    def redetect(self, gray: np.ndarray, last: Box) -> list[Detection]:
        region = grow(last, 1.0, gray.shape[1], gray.shape[0])
        side = max(1, min(last[2], last[3]))
        sizes = (round(side * REGION_SIZES[0]), round(side * REGION_SIZES[1]))
        return self.detect_region(gray, region, REGION_FACE_PX / side, sizes) or self.search(gray, region)

    def detect_region(
        self, gray: np.ndarray, region: Box, scale: float, face_px: tuple[int, int] | None = None
    ) -> list[Detection]:
        """Faces inside ``region`` of ``gray``, detected after downscaling it by ``scale``;
        ``face_px`` (smallest, largest side in source pixels) bounds the sizes searched when the
        face's size is known, which saves most of the cost."""
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
        boxes = self._cascade.detectMultiScale(
            small,
            scaleFactor=self.config.scale_factor,
            minNeighbors=5,
            minSize=(min_px, min_px),
            maxSize=(max_px, max_px) if max_px else None,
        )
        found = [
            Detection((x0 + round(x / scale), y0 + round(y / scale), round(w / scale), round(h / scale)), 1.0)
            for x, y, w, h in boxes
        ]
        return self._keep(found)


class _BlazeFaceModel:
    """One BlazeFace ``.tflite`` on the runtime: a gray square in, boxes in its pixels out."""

    def __init__(self, path: Path, threads: int) -> None:
        runtime = find_runtime()
        try:
            self._interpreter = runtime.interpreter_class(model_path=str(path), num_threads=threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise DataError(f"{path}: not a loadable TFLite model") from e
        inp = self._interpreter.get_input_details()[0]
        self._input_index, self.size = inp["index"], int(inp["shape"][1])
        outputs = self._interpreter.get_output_details()
        by_width = {int(o["shape"][-1]): o for o in outputs}
        variant = None
        if 16 in by_width and 1 in by_width:
            variant = blazeface.find_variant(self.size, int(by_width[16]["shape"][1]))
        if variant is None:
            raise DataError(
                f"{path}: expected a BlazeFace model (short-range 128x128 or back-camera 256x256 with "
                "896 anchors, or full-range 192x192 with 2304; 16 box values and 1 score per anchor)"
            )
        self.variant = variant
        self._boxes_index, self._scores_index = by_width[16]["index"], by_width[1]["index"]
        self._anchors = blazeface.anchor_centres(variant)

    def __call__(self, gray: np.ndarray, threshold: float) -> list[tuple[Box, float, Keypoints]]:
        return list(self.boxes(gray, threshold))

    def boxes(self, gray: np.ndarray, threshold: float) -> Iterator[tuple[Box, float, Keypoints]]:
        """The faces scoring at least ``threshold``, best first, blended lazily: a caller after
        one face stops after the blending that finds it (the rest is most of the decoding)."""
        x, side = blazeface.to_input(gray, self.size)
        self._interpreter.set_tensor(self._input_index, x)
        self._interpreter.invoke()
        raw = self._interpreter.get_tensor(self._boxes_index)[0]
        logits = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        return blazeface.decode(raw, logits, self._anchors, self.size, side, threshold)


def _square_tile(gray: np.ndarray, cx: float, cy: float, side: int) -> tuple[np.ndarray, int, int]:
    """A ``side`` x ``side`` view of ``gray`` centred near (cx, cy), shifted to stay inside the
    frame where it fits (a face at the edge keeps its context), zero-padded where it does not."""
    h, w = gray.shape
    x0 = int(min(max(0, round(cx - side / 2)), max(0, w - side)))
    y0 = int(min(max(0, round(cy - side / 2)), max(0, h - side)))
    tile = gray[y0 : y0 + side, x0 : x0 + side]
    return tile, x0, y0


def tile_grid(region: Box, tile: int, overlap: int) -> list[Box]:
    """Square tiles of side ``tile`` covering ``region``, neighbours sharing ``overlap`` pixels,
    spread evenly so the last one ends at the region's edge."""
    x0, y0, rw, rh = region

    def starts(length: int) -> list[int]:
        if length <= tile:
            return [0]
        count = math.ceil((length - tile) / max(1, tile - overlap)) + 1
        step = (length - tile) / (count - 1)
        return [round(i * step) for i in range(count)]

    return [(x0 + dx, y0 + dy, tile, tile) for dy in starts(rh) for dx in starts(rw)]


def dedupe(detections: list[Detection], overlap: float = 0.4) -> list[Detection]:
    """Drop detections that overlap an earlier one: two faces' regions can both see one face."""
    kept: list[Detection] = []
    for det in detections:
        if all(iou(det.box, k.box) < overlap for k in kept):
            kept.append(det)
    return kept


def nms(found: list[Detection], overlap: float = 0.3) -> list[Detection]:
    """Highest-scoring detections first, dropping any that overlap a kept one."""
    return dedupe(sorted(found, key=lambda d: d.score, reverse=True), overlap)


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace: back-camera proposals over tiles, short-range boxes and scores.

    Proposal tiles are sized so a face of ``min_face_px`` covers ``PROPOSE_FRACTION`` of the
    back-camera model's input (where it still proposes 95% of faces); a level of tiles three
    times larger follows until one tile holds the region, so every face size is seen by one level
    at a tenth to a third of a tile. The short-range model then sees each proposal at
    ``REFINE_FRACTION`` of its input, where it is most reliable, and decides.
    """

    kind = "blazeface"
    KEEP_FRACTION = 0.8  # BlazeFace boxes of one face size scatter by about +-15%
    PROPOSE_FRACTION = 0.08  # smallest face (detector box side) / proposal tile side
    LEVEL_RATIO = 3.0  # each proposal level's tiles are this much larger than the last's
    REFINE_FRACTION = 0.45  # face side / refine tile side

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__(config)
        cv2.setNumThreads(config.threads)
        refine_path = config.model_path or bundled_detector_file("face_detection_short_range.tflite")
        propose_path = config.proposal_model_path or bundled_detector_file("face_detection_back.tflite")
        self._refine = _BlazeFaceModel(refine_path, config.threads)
        self._propose = _BlazeFaceModel(propose_path, config.threads)

    def _tiles(self, region: Box, min_face: int | None = None) -> list[Box]:
        tiles: list[Box] = []
        tile = max(min_face or 0, self.config.min_face_px) / self.PROPOSE_FRACTION
        longest = max(region[2], region[3])
        while True:
            side = round(min(tile, longest))
            # neighbours overlap by the largest face this level must see whole: a third of a tile
            tiles.extend(tile_grid(region, side, round(side / self.LEVEL_RATIO)))
            if side >= min(region[2], region[3]):
                return tiles
            tile *= self.LEVEL_RATIO

    def proposals(self, gray: np.ndarray, region: Box, min_face: int | None = None) -> list[Detection]:
        """Candidate faces in ``region`` from the back-camera model, in source pixels."""
        found = []
        for x0, y0, tw, th in self._tiles(region, min_face):
            view = gray[y0 : y0 + th, x0 : x0 + tw]
            for (x, y, w, h), score, _ in self._propose(view, self.config.proposal_threshold):
                found.append(Detection((x0 + x, y0 + y, w, h), score))
        return nms(found, 0.3)

    def _nearest(
        self, tile: np.ndarray, cx: float, cy: float, reach: float, side: float
    ) -> tuple[Box, float, Keypoints] | None:
        """The short-range model's best face in ``tile`` centred within ``reach`` of (cx, cy)
        (tile pixels): the face asked about, not a neighbour sharing the tile. Boxes come best
        first, so the first near one is the best near one."""
        for box, score, keypoints in self._refine.boxes(tile, REFINE_FLOOR):
            bx, by, bw, bh = box
            if abs(bx + bw / 2 - cx) <= reach * side and abs(by + bh / 2 - cy) <= reach * side:
                return box, score, keypoints
        return None

    def _look_closer(
        self,
        gray: np.ndarray,
        box: Box,
        prior: float,
        threshold: float,
        reach: float = 0.5,
        sure: float | None = None,
    ) -> Detection | None:
        """Score the face at ``box`` with the short-range model on a tile where it covers
        :attr:`REFINE_FRACTION`, on the tile and on its mirror image: textures that fool the
        model once rarely fool it the same way mirrored, and a face is symmetric. The final
        score pools the two looks and ``prior`` (the proposal's score) as a mean of log-odds;
        the final box is the mean of the two looks' boxes, which steadies the crop.

        With ``sure``, a first look scoring at least that settles it alone, as if the mirror
        agreed: for a face that passed both looks a tick ago (see :data:`SURE_LOOK`)."""
        x, y, w, h = box
        side = max(w, h)
        tile, x0, y0 = _square_tile(
            gray, x + w / 2.0, y + h / 2.0, max(8, round(side / self.REFINE_FRACTION))
        )
        cx, cy = x + w / 2.0 - x0, y + h / 2.0 - y0
        look = self._nearest(tile, cx, cy, reach, side)
        if look is None or pooled_score(look[1], 0.995, prior) < threshold:
            return None  # not even a certain mirror look would make it a face: skip that look
        # a sure first look of a followed face stands for both: the mirror is taken to agree
        other = look if sure is not None and look[1] >= sure else self._mirror_look(tile, cx, cy, reach, side)
        if other is None:
            return None
        (ax, ay, aw, ah), a_score, a_points = look
        (mx, my, mw, mh), m_score, m_points = other
        score = pooled_score(a_score, m_score, prior)
        if score < threshold:
            return None
        mean = ((ax + mx) / 2.0, (ay + my) / 2.0, (aw + mw) / 2.0, (ah + mh) / 2.0)
        points = tuple(
            (x0 + (p[0] + q[0]) / 2.0, y0 + (p[1] + q[1]) / 2.0)
            for p, q in zip(a_points, m_points, strict=True)
        )
        box = (x0 + round(mean[0]), y0 + round(mean[1]), round(mean[2]), round(mean[3]))
        return Detection(box, score, points)

    def _mirror_look(
        self, tile: np.ndarray, cx: float, cy: float, reach: float, side: float
    ) -> tuple[Box, float, Keypoints] | None:
        """:meth:`_nearest` on the tile's mirror image, its box and keypoints back in the tile's
        own orientation."""
        width = tile.shape[1]
        mirrored = self._nearest(np.ascontiguousarray(tile[:, ::-1]), width - cx, cy, reach, side)
        if mirrored is None:
            return None
        (mx, my, mw, mh), score, points = mirrored
        return (width - mx - mw, my, mw, mh), score, mirror_keypoints(points, width)

    def search(self, gray: np.ndarray, region: Box, min_face: int | None = None) -> list[Detection]:
        found = []
        for proposal in self.proposals(gray, region, min_face):
            face = self._look_closer(gray, proposal.box, proposal.score, self.config.score_threshold)
            if face is not None:
                found.append(face)
        return self._keep(nms(found, 0.3))

    def redetect(self, gray: np.ndarray, last: Box) -> list[Detection]:
        return self.confirm(gray, last) or self.search(gray, grow(last, 1.0, gray.shape[1], gray.shape[0]))

    def confirm(self, gray: np.ndarray, expected: Box, strict: bool = False) -> list[Detection]:
        # a face seen a tick ago needs less evidence to be seen again (hysteresis), and no
        # proposal: where it is expected is the prior. A predicted place was never seen: a
        # texture there must not pass for the face on the tracker's lower bar
        threshold = self.config.score_threshold if strict else self.config.track_threshold
        face = self._look_closer(gray, expected, 0.5, threshold, reach=0.75, sure=SURE_LOOK)
        return self._keep([face]) if face is not None else []


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1.0 - 1e-6)
    return math.log(p / (1.0 - p))


def pooled_score(look: float, mirrored: float, prior: float) -> float:
    """One face score from the two close looks and the proposal (a second model's opinion):
    the mean of their log-odds, as a probability."""
    pooled = (_logit(look) + _logit(mirrored) + _logit(prior)) / 3.0
    return 1.0 / (1.0 + math.exp(-pooled))


def create_detector(config: DetectorConfig) -> FaceDetector:
    """The detector for ``config.kind``; an unknown kind names the known ones."""
    try:
        cls = FaceDetector.registry[config.kind]
    except KeyError:
        raise ConfigError(
            f"detector.kind {config.kind}: expected one of {', '.join(FaceDetector.registry)}"
        ) from None
    return cls(config)
