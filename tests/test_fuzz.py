"""Fuzzing the two readers of user files: the daemon's config loader and the model-metadata
reader. Whatever the bytes, the answer is a config or a one-line error with a documented exit
code, in bounded time: never a traceback, never a hang."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_edge.daemon.config_file import load_config
from fer_edge.errors import FerEdgeError
from fer_edge.metadata import load_metadata

DOCUMENTED = {2, 65, 66, 69, 73, 78}
KEYS = [
    "mqtt", "host", "port", "password", "cameras", "door", "url", "detector", "kind", "model", "path",
    "state_dir", "spool", "max_messages", "interval_s", "enabled", "labels", "input_shape",
    "normalization", "scale", "crop_margin", "framing_path", "min_face_px", "tls", "device_id",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=20),
    st.sampled_from(["rtsp://u:p@h/s", "${NOT_SET}", "${HOME}", "blazeface", "haar", "/nonexistent"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=25,
)
# the 'billion laughs': nine levels of nine aliases each
BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)
FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _one_line_error(error: FerEdgeError) -> None:
    assert error.exit_code in DOCUMENTED
    assert "\n" not in str(error) and str(error)


@FUZZ
@given(document=values)
def test_config_loader_on_structured_garbage(tmp_path: Path, document: object) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        load_config(path)
    except FerEdgeError as e:
        _one_line_error(e)


@FUZZ
@given(data=st.binary(max_size=400))
def test_config_loader_on_random_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(data)
    try:
        load_config(path)
    except FerEdgeError as e:
        _one_line_error(e)


@pytest.mark.parametrize(
    "text",
    [
        BOMB,
        "[" * 5000 + "]" * 5000,
        "x: " + "{a: " * 3000 + "1" + "}" * 3000,
    ],
    ids=["yaml-bomb", "deep-list", "deep-map"],
)
def test_config_loader_refuses_bombs_quickly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(FerEdgeError) as caught:
        load_config(path)
    _one_line_error(caught.value)


@FUZZ
@given(document=values)
def test_metadata_reader_on_structured_garbage(tmp_path: Path, document: object) -> None:
    (tmp_path / "model.json").write_text(json.dumps(document))
    try:
        load_metadata(tmp_path / "model.tflite")
    except FerEdgeError as e:
        _one_line_error(e)


@FUZZ
@given(data=st.binary(max_size=300))
def test_metadata_reader_on_random_bytes(tmp_path: Path, data: bytes) -> None:
    (tmp_path / "model.json").write_bytes(data)
    try:
        load_metadata(tmp_path / "model.tflite")
    except FerEdgeError as e:
        _one_line_error(e)


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--arch", "edge", "--data", "{missing}", "--out", "{tmp}/run"],
        ["train", "--arch", "edge", "--data", "{garbage}", "--out", "{tmp}/run"],
        ["teach", "--data", "{missing}", "--out", "{tmp}/t", "--epochs", "1"],
        ["distill", "--teacher", "{missing}", "--data", "{garbage}", "--out", "{tmp}/s", "--epochs", "1"],
        ["ensemble", "--model", "{missing}", "--model", "{missing}", "--out", "{tmp}/e.keras"],
        ["evaluate", "--model", "{garbage}", "--data", "{garbage}"],
        [
            "calibrate",
            "--model",
            "{missing}",
            "--data",
            "{garbage}",
            "--mode",
            "int8",
            "--out",
            "{tmp}/x.tflite",
        ],
        ["predict", "{missing}"],
        ["predict", "{garbage}"],
        ["run", "--config", "{missing}"],
        ["run", "--config", "{garbage}", "--check"],
        ["bench", "--accuracy"],
        ["fit-framing", "--data", "{missing}"],
        ["fit-framing", "--data", "{garbage}"],
    ],
    ids=lambda argv: "-".join(a for a in argv[:2] if not a.startswith("{")),
)
def test_no_user_error_is_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """Every command, fed a missing or garbage input, answers with a documented code and one line;
    70 (internal error) is for bugs only."""
    from fer_edge.cli import main

    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\xff not what anything expects \xfe")
    names = {"missing": str(tmp_path / "missing.csv"), "garbage": str(garbage), "tmp": str(tmp_path)}
    code = main(["-q", *(a.format(**names) for a in argv)])
    assert code in DOCUMENTED, code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "Traceback" not in err[0], err


def test_a_bug_exits_70_through_the_command_line(tmp_path: Path) -> None:
    """The one code no user error returns: a bug (here, an injected one) exits 70 from the real
    command, with the traceback logged for the report."""
    import subprocess
    import sys

    program = (
        "import sys\n"
        "import fer_edge.cli.predict as command\n"
        "def broken(args):\n"
        "    raise ZeroDivisionError('an injected bug')\n"
        "command._predict = broken\n"
        "from fer_edge.cli import main\n"
        "sys.exit(main(['predict', 'photo.jpg']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 70, proc.stderr
    assert "fer-edge predict failed unexpectedly" in proc.stderr
    assert "ZeroDivisionError: an injected bug" in proc.stderr
