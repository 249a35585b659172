"""``fer-edge calibrate`` modes, the flatbuffer check, and the runtime wrapper's fallbacks."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from fer_edge.errors import DataError, MissingInputError
from fer_edge.preprocess import scale_pixels
from fer_edge.quantize.inspect import float_ops, read_ops
from fer_edge.runtime import (
    RUNTIMES,
    EmotionModel,
    RuntimeOptions,
    RuntimeUnavailableError,
    find_runtime,
)
from tests.fixtures import calibrate_cli, synthetic_faces


@pytest.fixture(scope="module")
def converted(
    tmp_path_factory: pytest.TempPathFactory, trained_run: Path, fer_csv: Path, int8_model: Path
) -> dict[str, Path]:
    """Every calibrate mode applied to the tiny trained model."""
    out = tmp_path_factory.mktemp("modes")
    models = {"int8": int8_model}
    for mode in ("float32", "float16", "dynamic", "edgetpu"):
        path = out / f"tiny-{mode}.tflite"
        report = out / f"{mode}.json"
        extra = ("--io", "uint8", "--calibration-size", "70", "--json", str(report))
        assert calibrate_cli(trained_run / "model.keras", fer_csv, mode, path, *extra) == 0
        models[mode] = path
    return models


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8", "edgetpu"])
def test_every_mode_loads_and_carries_metadata(converted: dict[str, Path], mode: str) -> None:
    model = EmotionModel(converted[mode])
    meta = json.loads(converted[mode].with_suffix(".json").read_text())
    assert meta["quantization"]["mode"] == mode
    assert meta["labels"] == list(model.labels) and meta["input_shape"] == [48, 48, 1]
    assert {"accuracy", "float_accuracy", "split", "per_face_ms_1thread"} <= set(meta["metrics"])
    probs = model.predict(scale_pixels(synthetic_faces(5)[0], model.metadata.input_spec()))
    assert probs.shape == (5, 7) and np.allclose(probs.sum(axis=1), 1.0, atol=0.05)


def test_full_integer_models_have_no_float_ops(converted: dict[str, Path]) -> None:
    for mode in ("int8", "edgetpu"):
        ops = read_ops(converted[mode])
        assert ops and not float_ops(converted[mode]), [o for o in ops if o.is_float]
    assert EmotionModel(converted["int8"]).input_dtype == np.int8
    assert EmotionModel(converted["edgetpu"]).input_dtype == np.uint8
    # and the checker does see floats where there are some
    assert float_ops(converted["float32"])
    assert {op.name for op in read_ops(converted["float32"])} >= {"CONV_2D", "FULLY_CONNECTED"}


def test_int8_agrees_with_float(converted: dict[str, Path]) -> None:
    faces, _ = synthetic_faces(280, seed=42)
    float_model, int8_model = EmotionModel(converted["float32"]), EmotionModel(converted["int8"])
    spec = float_model.metadata.input_spec()
    agree = (
        float_model.predict(scale_pixels(faces, spec)).argmax(1)
        == int8_model.predict(scale_pixels(faces, spec)).argmax(1)
    ).mean()
    assert agree >= 0.95


def test_corrupt_model_is_a_data_error(tmp_path: Path, int8_model: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 100)
    shutil.copy(int8_model.with_suffix(".json"), bad.with_suffix(".json"))
    with pytest.raises(DataError, match="not a loadable TFLite model"):
        EmotionModel(bad)
    with pytest.raises(DataError, match=r"not a valid \.tflite"):
        read_ops(bad)


def test_missing_model_and_missing_metadata(tmp_path: Path, int8_model: Path) -> None:
    with pytest.raises(MissingInputError):
        EmotionModel(tmp_path / "none.tflite")
    lonely = tmp_path / "lonely.tflite"
    shutil.copy(int8_model, lonely)
    with pytest.raises(DataError, match="metadata is missing"):
        EmotionModel(lonely)


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("labels", ["happy", "sad"], "2 labels"),
        ("input_shape", [64, 64, 1], "does not match"),
    ],
)
def test_metadata_mismatch_is_a_data_error(
    tmp_path: Path, int8_model: Path, field: str, value: object, needle: str
) -> None:
    model = tmp_path / "m.tflite"
    shutil.copy(int8_model, model)
    meta = json.loads(int8_model.with_suffix(".json").read_text())
    meta[field] = value
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=needle):
        EmotionModel(model)


def test_runtime_fallback_order() -> None:
    assert find_runtime().name == "ai_edge_litert.interpreter"
    missing = ("no_such_runtime.interpreter", "Interpreter", "load_delegate")
    assert find_runtime((missing, *RUNTIMES[1:])).name in (
        "tflite_runtime.interpreter",
        "tensorflow",
    )
    assert find_runtime((missing, RUNTIMES[2])).name == "tensorflow"
    with pytest.raises(RuntimeUnavailableError, match="no TFLite runtime"):
        find_runtime((missing,))


def test_delegate_falls_back_to_cpu_and_says_so(int8_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        model = EmotionModel(int8_model, RuntimeOptions(delegate="/nonexistent/libdelegate.so"))
    assert model.delegate == "cpu" and "falling back to the CPU" in caplog.text
    with caplog.at_level(logging.WARNING):
        assert EmotionModel(int8_model, RuntimeOptions(delegate="edgetpu")).delegate == "cpu"


def test_delegate_without_fallback_is_an_error(int8_model: Path) -> None:
    with pytest.raises(RuntimeUnavailableError, match="edgetpu") as info:
        EmotionModel(int8_model, RuntimeOptions(delegate="edgetpu", fallback_to_cpu=False))
    assert info.value.exit_code == 69


def test_calibrate_rejects_bad_arguments(
    tmp_path: Path, trained_run: Path, fer_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert calibrate_cli(tmp_path / "x.keras", fer_csv, "int8", tmp_path / "x.tflite") == 66
    assert calibrate_cli(trained_run / "model.keras", fer_csv, "int8", tmp_path / "x.onnx") == 2
    assert not list(tmp_path.glob("*.tflite")) and not list(tmp_path.glob(".*"))
    assert "Traceback" not in capsys.readouterr().err


def test_edgetpu_refuses_a_flatbuffer_with_float_ops(
    monkeypatch: pytest.MonkeyPatch,
    converted: dict[str, Path],
    trained_run: Path,
    fer_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """If the converter ever leaves a float op in, the check on the bytes catches it."""
    import fer_edge.quantize.calibrate as calibrate_module

    float_bytes = converted["float32"].read_bytes()
    monkeypatch.setattr(calibrate_module, "convert", lambda *_a, **_k: float_bytes)
    out = tmp_path / "tpu.tflite"
    code = calibrate_cli(trained_run / "model.keras", fer_csv, "edgetpu", out, "--calibration-size", "14")
    assert code == 65
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not quantised" in err[0] and "CONV_2D" in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("name", ["fer-edge-int8.json", "fer-edge-float16.json"])
def test_bundled_metadata_names_no_path_of_the_machine_that_made_it(name: str) -> None:
    """Provenance travels with the model: names, relative paths and content hashes, never an
    absolute path or a home directory that means nothing on a camera box."""
    from fer_edge.models import BUNDLED_MODEL

    meta = json.loads((BUNDLED_MODEL.parent / name).read_text())
    words = [w for s in _strings(meta) for w in s.replace("=", " ").split()]
    assert words, "no provenance at all"
    assert [w for w in words if w.startswith(("/", "~"))] == []
    assert any("@sha256:" in w for w in words)  # the dataset, named by its content
