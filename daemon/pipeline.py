"""One analysis step on one frame: detect faces, classify them in one batch, track ids.

Shared by the daemon, ``fer-edge predict`` and ``fer-edge bench`` so that all three measure and
report the same thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fer_edge.daemon.detect import FaceDetector
from fer_edge.daemon.pose import head_pose
from fer_edge.daemon.scan import ScanPlanner
from fer_edge.daemon.track import FaceTracker
from fer_edge.preprocess import preprocess_faces
from fer_edge.runtime import EmotionModel


@dataclass
class FaceResult:
    """One face of one tick. A face too small to classify (its crop under
    ``detector.min_classify_px``) or turned away (``|yaw_deg|`` over ``detector.max_yaw_deg``) has
    no emotion: ``emotion``/``score`` are None, ``scores`` empty. ``yaw_deg``, ``roll_deg`` and
    ``attention`` come from the detector's keypoints (BlazeFace; None with Haar)."""

    id: int
    box: tuple[int, int, int, int]
    emotion: str | None
    score: float | None
    scores: dict[str, float]
    yaw_deg: float | None = None
    roll_deg: float | None = None
    attention: bool | None = None
    turned_away: bool = False

    @property
    def too_small(self) -> bool:
        return self.emotion is None and not self.turned_away

    def to_json(self) -> dict[str, object]:
        document: dict[str, object] = {
            "id": self.id,
            "box": list(self.box),
            "emotion": self.emotion,
            "score": None if self.score is None else round(self.score, 4),
            "scores": self.scores,
        }
        if self.yaw_deg is not None:
            document.update(yaw_deg=self.yaw_deg, roll_deg=self.roll_deg, attention=self.attention)
        if self.too_small:
            document["too_small"] = True
        if self.turned_away:
            document["turned_away"] = True
        return document


@dataclass
class Analysis:
    faces: list[FaceResult]
    timing_ms: dict[str, float] = field(default_factory=dict)


class FacePipeline:
    """Detector + emotion model; one :class:`FaceTracker` per camera is passed in by the caller."""

    def __init__(self, detector: FaceDetector, model: EmotionModel, tta: str = "none") -> None:
        if tta not in ("none", "flip"):
            raise ValueError(f"tta must be 'none' or 'flip'; received {tta!r}")
        self.detector = detector
        self.framing = detector.framing
        self.min_classify_px = detector.config.min_classify_px
        self.max_yaw_deg = detector.config.max_yaw_deg
        self.attention_yaw_deg = detector.config.attention_yaw_deg
        self.model = model
        self.tta = tta
        self.spec = model.metadata.input_spec()
        self.labels = list(model.labels)

    def _classify(
        self, gray: np.ndarray, boxes: list[tuple[int, int, int, int]], video_range: bool
    ) -> np.ndarray:
        """Class probabilities per box; with ``tta='flip'`` averaged with the mirrored face,
        both in one batch (one interpreter call)."""
        if not boxes:
            return np.zeros((0, len(self.labels)), np.float32)
        faces = preprocess_faces(gray, boxes, self.spec, video_range, self.framing)
        if self.tta == "none":
            return self.model.predict(faces)
        both = self.model.predict(np.concatenate([faces, faces[:, :, ::-1]]))
        return (both[: len(faces)] + both[len(faces) :]) / 2.0

    def analyse(
        self,
        gray: np.ndarray,
        tracker: FaceTracker | None = None,
        planner: ScanPlanner | None = None,
        video_range: bool = False,
    ) -> Analysis:
        """Faces with emotions in a gray frame; ``timing_ms`` has ``detect`` and ``classify``.

        A camera's ``planner`` (built on this pipeline's detector) searches only where a face can
        be; without one the whole frame is scanned, as a single picture needs. ``video_range``:
        ``gray`` is 16..235 luma as cameras send it (see :func:`~fer_edge.daemon.decode.frame_luma`)."""
        t0 = time.perf_counter()
        detections = planner.find(gray) if planner is not None else self.detector.detect(gray)
        t1 = time.perf_counter()
        boxes = [d.box for d in detections]
        poses = [head_pose(d.keypoints) for d in detections]
        turned = [p is not None and abs(p.yaw_deg) > self.max_yaw_deg for p in poses]
        big_enough = [
            self.framing.crop_box(b)[2] >= self.min_classify_px and not away
            for b, away in zip(boxes, turned, strict=True)
        ]
        probs = np.full((len(boxes), len(self.labels)), np.nan, np.float32)
        if any(big_enough):
            probs[np.asarray(big_enough)] = self._classify(
                gray, [b for b, ok in zip(boxes, big_enough, strict=True) if ok], video_range
            )
        t2 = time.perf_counter()
        if tracker is not None and planner is not None and planner.scene_changed:
            tracker.reset()  # a new scene: faces where old ones were are new faces
        tracks = tracker.update(boxes, probs) if tracker is not None else None
        faces = []
        for i, box in enumerate(boxes):
            face = FaceResult(
                id=tracks[i].id if tracks is not None else i + 1,
                box=box,
                emotion=None,
                score=None,
                scores={},
                turned_away=turned[i],
            )
            if poses[i] is not None:
                face.yaw_deg, face.roll_deg = poses[i].yaw_deg, poses[i].roll_deg
                face.attention = abs(poses[i].yaw_deg) <= self.attention_yaw_deg
            if big_enough[i]:
                scores = tracks[i].scores if tracks is not None else probs[i]
                best = int(np.argmax(scores))
                face.emotion, face.score = self.labels[best], float(scores[best])
                face.scores = {
                    label: round(float(s), 4) for label, s in zip(self.labels, scores, strict=True)
                }
            faces.append(face)
        return Analysis(faces, {"detect": round((t1 - t0) * 1000, 2), "classify": round((t2 - t1) * 1000, 2)})
