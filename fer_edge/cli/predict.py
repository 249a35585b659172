"""``fer-edge predict``: faces and emotions in an image or video file."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_edge.atomic import atomic_path, write_json
from fer_edge.cli.common import add_common
from fer_edge.errors import DataError, MissingInputError, UsageError

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("predict", help="faces and emotions in an image or video file (JSON)")
    p.add_argument("path", help="image or video file")
    add_common(p, data=False)
    p.add_argument("--annotate", metavar="OUT", help="write the image with boxes and scores")
    p.add_argument("--min-face", type=int, default=32, help="smallest face box side in pixels")
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="flip: average each face with its mirror image (the daemon's model.tta)",
    )
    p.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    return predict(args)


def _read_media(path: Path) -> list[tuple[float | None, np.ndarray]]:
    """(time, BGR frame) pairs: one for an image, about one per second for a video."""
    if not path.exists():
        raise MissingInputError(f"{path}: no such file")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is not None:
        return [(None, image)]
    import av

    frames: list[tuple[float | None, np.ndarray]] = []
    last_t: float | None = None
    try:
        with av.open(str(path)) as container:
            next_t = 0.0
            for frame in container.decode(video=0):
                t = float(frame.time or 0.0)
                last_t = t
                if t + 1e-6 >= next_t:
                    frames.append((round(t, 3), frame.to_ndarray(format="bgr24")))
                    next_t = t + 1.0
    except (av.error.FFmpegError, IndexError) as e:
        if not frames:
            raise DataError(f"{path}: not a readable image or video ({e})") from None
        # a truncated or damaged video: keep what decoded, and say where it stopped
        logger.warning(
            "%s: video breaks off after %.1f s (%s); results cover the frames before", path, last_t or 0.0, e
        )
    if not frames:
        raise DataError(f"{path}: no video frames")
    return frames


def annotate(image: np.ndarray, faces: list[dict[str, Any]]) -> np.ndarray:
    """Boxes, the top emotion and a score bar per class, drawn on a copy of ``image``."""
    out = image.copy()
    for face in faces:
        x, y, w, h = face["box"]
        cv2.rectangle(out, (x, y), (x + w, y + h), (60, 220, 60), 2)
        cv2.putText(
            out,
            ("turned away" if face.get("turned_away") else "too small")
            if face["emotion"] is None
            else f"{face['emotion']} {face['score']:.2f}",
            (x, max(12, y - 6)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (60, 220, 60),
            1,
            cv2.LINE_AA,
        )
        for i, (label, score) in enumerate(face["scores"].items()):
            top = y + h + 4 + i * 11
            cv2.rectangle(out, (x, top), (x + int(60 * score), top + 8), (200, 160, 40), -1)
            cv2.putText(
                out,
                label,
                (x + 64, top + 8),
                cv2.FONT_HERSHEY_PLAIN,
                0.7,
                (255, 255, 255),
                1,
                cv2.LINE_AA,
            )
    return out


def predict(args: argparse.Namespace) -> int:
    from fer_edge.daemon.config import DetectorConfig
    from fer_edge.daemon.detect import create_detector
    from fer_edge.daemon.pipeline import FacePipeline
    from fer_edge.preprocess import to_gray
    from fer_edge.runtime import EmotionModel, RuntimeOptions

    path = Path(args.path)
    if args.annotate and not cv2.haveImageWriter(args.annotate):
        # checked before any work: OpenCV raises, rather than answers, for an unknown extension
        raise UsageError(
            f"--annotate {args.annotate}: not an image file name OpenCV writes (use .png or .jpg)"
        )
    media = _read_media(path)
    detector = create_detector(DetectorConfig(min_face_px=args.min_face))
    pipeline = FacePipeline(detector, EmotionModel(args.model, RuntimeOptions(num_threads=2)), args.tta)
    results = []
    for t, image in media:
        analysis = pipeline.analyse(to_gray(image))
        entry: dict[str, Any] = {"faces": [f.to_json() for f in analysis.faces]}
        if t is not None:
            entry = {"t": t, **entry}
        results.append((image, entry))
    document: dict[str, Any] = (
        results[0][1]
        if len(results) == 1 and media[0][0] is None
        else {"frames": [entry for _, entry in results]}
    )
    document = {"path": str(path), "model": Path(args.model).name, **document}
    if args.annotate:
        _write_annotated(Path(args.annotate), results)
    if args.json:
        write_json(args.json, document)
    else:
        print(json.dumps(document))
    return 0


def _write_annotated(out: Path, results: list[tuple[np.ndarray, dict[str, Any]]]) -> None:
    if len(results) == 1:
        with atomic_path(out) as tmp:
            if not cv2.imwrite(str(tmp), annotate(results[0][0], results[0][1]["faces"])):
                raise UsageError(f"--annotate {out}: unsupported image extension")
        return
    for i, (image, entry) in enumerate(results):
        frame_path = out.with_name(f"{out.stem}-{i:04d}{out.suffix or '.jpg'}")
        with atomic_path(frame_path, suffix=out.suffix or ".jpg") as tmp:
            cv2.imwrite(str(tmp), annotate(image, entry["faces"]))
