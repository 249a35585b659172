"""End-to-end accuracy: crops framed as the model was trained, faces too small to classify,
scene cuts that must not pass scores on, the stream accuracy benchmark's scoring, and the
benchmark itself on a real RTSP stream with the real daemon and mosquitto."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.bench import scenes as sc
from fer_edge.bench import stream_accuracy as sa
from fer_edge.bench.loopback import have_mosquitto, have_rtsp_server
from fer_edge.bench.scenes import paste, place_apart
from fer_edge.cli import main
from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.payloads import state_payload
from fer_edge.daemon.pipeline import FacePipeline
from fer_edge.daemon.scan import ScanPlanner
from fer_edge.daemon.track import FaceTracker
from fer_edge.labels import LABELS
from fer_edge.models import BUNDLED_MODEL
from fer_edge.preprocess import Framing
from fer_edge.runtime import EmotionModel, RuntimeOptions


@pytest.fixture(scope="module")
def astronaut_face() -> np.ndarray:
    """Her face framed as FER2013 frames faces (it fills the crop), 96x96 gray."""
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    return cv2.resize(gray[62:182, 170:290], (96, 96), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def pipeline() -> FacePipeline:
    model = EmotionModel(str(BUNDLED_MODEL), RuntimeOptions(num_threads=1))
    return FacePipeline(create_detector(DetectorConfig()), model)


def test_framing_maps_a_box_to_its_training_crop() -> None:
    framing = Framing(dx=0.0, dy=-0.1, scale=1.2)
    assert framing.crop_box((100, 100, 50, 50)) == (95, 90, 60, 60)
    assert Framing(scale=1.3).crop_box((0, 0, 100, 100)) == (-15, -15, 130, 130)  # the old margin


def test_fitted_framing_recovers_the_pasted_crop(astronaut_face: np.ndarray, pipeline: FacePipeline) -> None:
    """Fit a framing on faces pasted at known places, then crop a new pasted face with it: the
    crop lands on the pasted square, which a hand-set margin does not."""
    from fer_edge.bench.framing_fit import fit_framing
    from fer_edge.daemon.track import iou

    faces = astronaut_face[np.newaxis]
    fit = fit_framing(pipeline.detector, faces, count=16, side_range=(80, 160), seed=3)
    assert fit.found >= 12 and fit.scatter["log_scale"] < 0.1
    frame = np.full((720, 1280), 120, np.uint8)
    paste(frame, astronaut_face, (500, 200, 140, 140))
    (found,) = pipeline.detector.detect(frame)
    assert iou(fit.framing.crop_box(found.box), (500, 200, 140, 140)) > 0.8
    assert iou(fit.framing.crop_box(found.box), (500, 200, 140, 140)) > iou(
        Framing(scale=1.3).crop_box(found.box), (500, 200, 140, 140)
    )


def test_faces_too_small_to_classify_are_reported_without_an_emotion(astronaut_face: np.ndarray) -> None:
    model = EmotionModel(str(BUNDLED_MODEL), RuntimeOptions(num_threads=1))
    detector = create_detector(DetectorConfig(min_classify_px=400))
    frame = np.full((720, 1280), 120, np.uint8)
    paste(frame, astronaut_face, (500, 200, 160, 160))
    analysis = FacePipeline(detector, model).analyse(frame, FaceTracker())
    (face,) = analysis.faces
    assert face.too_small and face.emotion is None
    document = face.to_json()
    assert document["too_small"] is True and document["emotion"] is None and document["scores"] == {}
    assert state_payload(analysis, 0.0)["dominant"] is None and state_payload(analysis, 0.0)["faces"] == 1


def test_a_new_face_after_a_scene_cut_does_not_inherit_scores(
    astronaut_face: np.ndarray, pipeline: FacePipeline
) -> None:
    """Same place, another face, a new backdrop: a new id and its own scores, even with heavy
    smoothing that would otherwise carry most of the old face's scores over."""
    tracker, planner = FaceTracker(smoothing=0.9), ScanPlanner(pipeline.detector, full_scan_every=10)
    first = np.full((720, 1280), 120, np.uint8)
    paste(first, astronaut_face, (500, 200, 160, 160))
    before = pipeline.analyse(first, tracker, planner).faces
    second = np.full((720, 1280), 30, np.uint8)
    paste(second, astronaut_face[:, ::-1].copy(), (500, 200, 160, 160))  # her mirror image
    after = pipeline.analyse(second, tracker, planner)
    assert planner.scene_changed
    alone = pipeline.analyse(second)  # the same frame, no history
    assert len(before) == len(after.faces) == 1
    assert after.faces[0].id != before[0].id
    assert after.faces[0].scores == alone.faces[0].scores


def _scenes() -> list[sc.Scene]:
    labels = np.arange(40) % len(LABELS)
    return sc.make_scenes(labels, per_kind=2, faces_per_scene=3, seed=5)


def _perfect_ticks(scenes: list[sc.Scene], offset: float, wrong: bool = False) -> list[sa.Tick]:
    ticks = []
    for t in np.arange(0.1, len(scenes) * sc.SCENE_S, 1.0):
        scene = scenes[int(t // sc.SCENE_S)]
        within = t % sc.SCENE_S
        faces = []
        for f in scene.faces:
            x, y, side, _ = f.box(within)
            emotion = LABELS[(f.label + 1) % len(LABELS)] if wrong else LABELS[f.label]
            faces.append(((x + side // 10, y + side // 10, side * 8 // 10, side * 8 // 10), emotion))
        ticks.append(sa.Tick(offset + t, faces))  # type: ignore[arg-type]
    return ticks


def test_scenes_keep_faces_apart_and_inside_the_frame() -> None:
    for scene in _scenes():
        assert scene.faces
        for t in (0.0, sc.SCENE_S):
            boxes = [f.box(t) for f in scene.faces]
            for x, y, side, _ in boxes:
                assert x >= 0 and x + side <= sc.WIDTH and y >= 0 and y + side <= sc.HEIGHT
                assert sc.SIDE_RANGE[0] <= side <= sc.SIDE_RANGE[1]
            for (ax, ay, aw, ah), (bx, by, bw, bh) in itertools.combinations(boxes, 2):
                apart = ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay
                assert apart, (scene, t)  # no two faces of a scene overlap, start or end
    assert place_apart([100, 100], 150, 150, np.random.default_rng(0)) is None


def test_scoring_finds_the_clip_start_and_scores_each_face() -> None:
    scenes = _scenes()
    aligned = {(s, j): True for s, scene in enumerate(scenes) for j in range(len(scene.faces))}
    right = sa.score(_perfect_ticks(scenes, 1000.0), scenes, aligned)
    assert right["all"]["recall_ticks"] == 1.0 and right["all"]["end_to_end"] == 1.0
    assert right["all"]["false_positives_per_tick"] == 0.0
    wrong = sa.score(_perfect_ticks(scenes, 1000.0, wrong=True), scenes, aligned)
    assert wrong["all"]["faces_found"] == 1.0 and wrong["all"]["end_to_end"] == 0.0
    # a phantom face on every tick, and every other face missed on every tick
    ticks = _perfect_ticks(scenes, 1000.0)
    for tick in ticks:
        tick.faces = [*tick.faces[::2], ((5, 5, 40, 40), "happy")]
    partial = sa.score(ticks, scenes, aligned)
    assert 0.3 < partial["all"]["recall_ticks"] < 0.8
    assert partial["all"]["false_positives_per_tick"] == pytest.approx(1.0)


def test_with_votes_faces_are_scored_against_the_majority_and_the_fer2013_label_beside_it(
    tmp_path: Path,
) -> None:
    from tests.fixtures import write_ferplus_csv

    data = write_ferplus_csv(tmp_path / "votes.csv.gz", {"PublicTest": 62})
    faces = sc.load_faces(str(data), "PublicTest")
    assert faces.against == "ferplus-majority" and faces.fer2013 is not None
    assert len(faces.labels) == 62 - 3 - 2  # every 20th face mostly unknown, every 31st not a face
    scenes = sc.make_scenes(faces.labels, per_kind=2, faces_per_scene=3, seed=5)
    aligned = {(s, j): True for s, scene in enumerate(scenes) for j in range(len(scene.faces))}
    rows = sa.score(_perfect_ticks(scenes, 50.0), scenes, aligned, fer2013=faces.fer2013)
    assert rows["all"]["end_to_end"] == 1.0  # the ticks call every face by its majority
    placed = [f.index for scene in scenes for f in scene.faces]
    agree = np.mean([faces.fer2013[i] == faces.labels[i] for i in placed])
    assert rows["all"]["end_to_end_fer2013"] == pytest.approx(agree, abs=1e-3) and agree < 0.6


@pytest.mark.skipif(
    not (have_mosquitto() and have_rtsp_server()), reason="needs mosquitto and gst-rtsp-server"
)
def test_bench_accuracy_runs_the_daemon_on_a_real_stream(
    astronaut_face: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fer-edge bench --accuracy`` on a labelled image folder: her smiling face (and its
    mirror) as 'happy'; the daemon must find her on most ticks and call her happy."""
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), astronaut_face)
    cv2.imwrite(str(folder / "b.png"), astronaut_face[:, ::-1])
    report_path = tmp_path / "report.json"
    code = main(
        [
            "bench",
            "--accuracy",
            "--data",
            str(tmp_path / "faces"),
            "--scenes",
            "1",
            "--detectors",
            "blazeface",
            "--no-standin",
            "--json",
            str(report_path),
        ]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    row = report["pipelines"]["fer-edge (blazeface)"]["all"]
    assert row["faces"] == report["faces"] >= 4
    assert row["recall_ticks"] >= 0.7 and row["end_to_end"] >= 0.7
    assert row["false_positives_per_tick"] <= 0.5
    assert "fer-edge (blazeface)" in capsys.readouterr().out


def test_framing_condition_draws_from_the_shipped_scatter() -> None:
    from fer_edge.training.robustness import CONDITIONS, detector_scatter, reframe

    assert "framing" in CONDITIONS
    scatter = detector_scatter()
    assert 0 < scatter["shift"] < 0.2 and 0 < scatter["log_scale"] < 0.3
    rng = np.random.default_rng(1)
    faces = rng.integers(0, 256, (20, 48, 48), dtype=np.uint8)
    once, again = reframe(faces), reframe(faces)
    assert once.shape == faces.shape and once.dtype == np.uint8
    assert np.array_equal(once, again)  # seeded: the report is reproducible
    assert (once != faces).any(axis=(1, 2)).mean() > 0.9


def test_fit_framing_cli_writes_a_framing_file_the_daemon_loads(
    astronaut_face: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "faces" / "Training" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.png"), astronaut_face)
    out = tmp_path / "blazeface.json"
    args = ["-q", "fit-framing", "--data", str(tmp_path / "faces"), "--faces", "12", "--cache-dir", "none"]
    assert main([*args, "--out", str(out)]) == 0
    assert "found" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["fitted_on"]["split"] == "Training" and written["found"] >= 8
    detector = create_detector(DetectorConfig(framing_path=out))
    assert detector.framing.scale == pytest.approx(written["framing"]["scale"], abs=1e-4)


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--faces", "3"], 2, "--faces 3"),
        (["--faces", "12"], 65, "too few to fit"),  # noise images: no face to fit on
    ],
)
def test_fit_framing_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], code: int, message: str
) -> None:
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    cv2.imwrite(
        str(folder / "noise.png"), np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    )
    out = tmp_path / "framing.json"
    args = ["-q", "fit-framing", "--data", str(tmp_path / "faces"), "--split", "all", "--cache-dir", "none"]
    assert main([*args, "--out", str(out), *extra]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and not out.exists()
