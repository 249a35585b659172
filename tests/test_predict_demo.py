"""The newcomer's commands: ``fer-edge run --demo`` and ``fer-edge predict``, on real faces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.democlip import DEMO_SPRITES, write_clip
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.pipeline import FacePipeline
from fer_edge.models import BUNDLED_MODEL
from fer_edge.preprocess import preprocess_faces
from fer_edge.runtime import EmotionModel

NO_TF = (
    "import sys; from fer_edge.cli import main; code = main(sys.argv[1:]); "
    "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TF'; "
    "sys.exit(code)"
)


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scikit-image's astronaut portrait (a smiling face), as a PNG file."""
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_bundled_model_is_the_default_and_ships_metadata() -> None:
    assert BUNDLED_MODEL.is_file() and BUNDLED_MODEL.stat().st_size <= 1_000_000
    meta = json.loads(BUNDLED_MODEL.with_suffix(".json").read_text())
    assert meta["quantization"]["mode"] == "int8" and len(meta["labels"]) == 7
    assert "calibrate" in meta["command"]  # its last step: quantised, or its scores fitted anew
    quantized_by = meta["training"].get("quantize_command", meta["command"])
    assert "calibrate" in quantized_by and "--mode int8" in quantized_by


def test_predict_finds_the_astronaut_smiling(astronaut: Path, tmp_path: Path) -> None:
    annotated = tmp_path / "annotated.png"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_TF,
            "predict",
            str(astronaut),
            "--json",
            "-",
            "--annotate",
            str(annotated),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["faces"]) == 1
    face = document["faces"][0]
    assert face["emotion"] == "happy", face["scores"]
    x, y, w, h = face["box"]
    assert 150 < x + w / 2 < 300 and 60 < y + h / 2 < 200  # the face, not the flag or the suit
    image = cv2.imread(str(annotated))
    assert image is not None and image.shape == (512, 512, 3)


def test_flip_averages_each_face_with_its_mirror(astronaut: Path) -> None:
    """``model.tta: flip`` scores equal the mean of the face's and its mirror's scores.

    The bundled model scores the smiling astronaut and her mirror image alike to int8 precision,
    so one half of her mouth is blurred first: a face whose mirror image reads differently.
    """
    gray = cv2.imread(str(astronaut), cv2.IMREAD_GRAYSCALE)
    model = EmotionModel(str(BUNDLED_MODEL))
    detector = create_detector(DetectorConfig())
    (x, y, w, h), *_ = [face.box for face in FacePipeline(detector, model, "none").analyse(gray).faces]
    lower_left = gray[y + h // 2 : y + h, x : x + w // 2]
    gray[y + h // 2 : y + h, x : x + w // 2] = cv2.GaussianBlur(lower_left, (0, 0), 6)
    plain = FacePipeline(detector, model, "none").analyse(gray).faces
    flipped = FacePipeline(detector, model, "flip").analyse(gray).faces
    assert len(plain) == len(flipped) == 1 and plain[0].box == flipped[0].box
    faces = preprocess_faces(gray, [plain[0].box], model.metadata.input_spec(), framing=detector.framing)
    expected = (model.predict(faces) + model.predict(faces[:, :, ::-1])) / 2.0
    got = np.array([flipped[0].scores[label] for label in model.labels])
    assert np.allclose(got, expected[0], atol=1e-4)  # payload scores carry 4 decimals
    assert not np.allclose(got, [plain[0].scores[label] for label in model.labels], atol=1e-3)


def test_predict_video_samples_about_one_frame_a_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=3, fps=10)
    assert main(["-q", "predict", str(clip), "--json", "-"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert [f["t"] for f in frames] == [0.0, 1.0, 2.0]
    assert all(len(f["faces"]) == 2 for f in frames)


@pytest.mark.parametrize(("content", "code"), [(None, 66), (b"not media at all", 65)])
def test_predict_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, code: int
) -> None:
    path = tmp_path / "input.jpg"
    if content is not None:
        path.write_bytes(content)
    assert main(["-q", "predict", str(path)]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "input.jpg" in err[0]


@pytest.mark.parametrize("name", ["out.xyz", "out"])
def test_predict_annotate_needs_an_image_extension(
    astronaut: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = tmp_path / name
    assert main(["-q", "predict", str(astronaut), "--annotate", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--annotate" in err[0] and not out.exists()
    assert not list(tmp_path.iterdir())  # no temp file left behind either


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        ('{"labels": 7}', "labels"),
        ("[1, 2, 3]", "JSON object"),
        ('{"input_shape": ["48", 48, 1]}', "input_shape"),
        ('{"normalization": {"scale": "big"}}', "normalization"),
        (b"\xff\xfe\x00garbage", "cannot read model metadata"),
    ],
)
def test_model_metadata_of_the_wrong_type_is_one_line_exit_65(
    astronaut: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], metadata: str | bytes, key: str
) -> None:
    import shutil

    model = tmp_path / "model.tflite"
    shutil.copy(BUNDLED_MODEL, model)
    data = metadata if isinstance(metadata, bytes) else metadata.encode()
    (tmp_path / "model.json").write_bytes(data)
    assert main(["-q", "predict", str(astronaut), "--model", str(model)]) == 65
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.json" in err[0] and key in err[0]


def test_predict_on_a_truncated_video_keeps_the_frames_that_decoded(tmp_path: Path) -> None:
    """An MP4 cut off half-way (its index at the front): results for the seconds before the
    break, and one warning saying where it broke, instead of nothing."""
    import av

    from fer_edge.daemon.democlip import face_image, render_frame

    whole = tmp_path / "whole.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(whole), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        stream.codec_context.gop_size = 10
        for i in range(80):
            image = render_frame(face_image(), DEMO_SPRITES, i / 10, 640, 360)
            noisy = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(noisy, format="bgr24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    result = subprocess.run(
        [sys.executable, "-m", "fer_edge.cli", "predict", str(cut)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    frames = json.loads(result.stdout)["frames"]
    assert 2 <= len(frames) < 8 and frames[0]["t"] == 0.0
    warnings = [line for line in result.stderr.splitlines() if "breaks off" in line]
    assert len(warnings) == 1 and "cut.mp4" in warnings[0]


def test_demo_prints_emotions_documents_without_tensorflow() -> None:
    result = subprocess.run(
        [sys.executable, "-c", NO_TF, "-q", "run", "--demo", "--duration", "3.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) >= 3
    assert [d["seq"] for d in documents] == list(range(1, len(documents) + 1))
    assert all(d["schema"] == 2 and d["camera"] == "demo" for d in documents)
    assert sum(len(d["faces"]) for d in documents) >= 2 * len(documents) - 1
