"""The README's first command on a fresh copy, under Debian's own Python (/usr/bin/python3), as a
newcomer on a Debian 12 / Raspberry Pi OS box runs it: a virtual environment, the install, the
demo with its JSON lines and the page's URL."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _can_make_venvs() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    return (
        subprocess.run([str(SYSTEM_PYTHON), "-c", "import venv, ensurepip"], capture_output=True).returncode
        == 0
    )


@pytest.mark.integration
@pytest.mark.skipif(
    not _can_make_venvs(), reason="needs Debian's python3 with python3-venv (.ci/run installs it)"
)
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to list the project's files")
def test_quickstart_on_debians_system_python(tmp_path: Path) -> None:
    """The quickstart on a camera box's install (``[device]``), then ``[train]`` added to it as a
    retraining box has it (``[device,train]``); on each, every documented command either works
    or names its extra."""
    clone = _copy_of_the_project(tmp_path / "fer-edge")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PYTHON"] = str(SYSTEM_PYTHON)
    proc = _run(["bash", "deploy/quickstart.sh", "--duration", "6"], clone, env, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "python").exists()
    documents = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(documents) >= 3, proc.stdout[-2000:]
    assert all(d["camera"] == "demo" for d in documents)
    assert any(f["emotion"] == "happy" for d in documents for f in d["faces"])
    assert "fer-edge demo: open http://127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr
    _every_command_works_or_names_its_extra(clone, tmp_path, env, {"device"})

    python = str(clone / ".venv" / "bin" / "python")
    pip = [python, "-m", "pip", "install", "--quiet", "-e", ".[device,train]"]
    added = _run(pip, clone, env, timeout=1200)
    assert added.returncode == 0, added.stderr[-3000:]
    _every_command_works_or_names_its_extra(clone, tmp_path, env, {"device", "train"})


def _every_command_works_or_names_its_extra(
    clone: Path, tmp_path: Path, env: dict[str, str], installed: set[str]
) -> None:
    fer_edge = str(clone / ".venv" / "bin" / "fer-edge")
    face = clone / "fer_edge" / "assets" / "face.jpg"
    for argv in [["predict", str(face)], ["--help"], *([c, "--help"] for c in COMMANDS)]:
        out = _run([fer_edge, *argv], tmp_path, env)
        assert out.returncode == 0, (argv, out.stderr[-1000:])
    for extra, commands in _extra_commands(tmp_path, face).items():
        for argv in commands:
            out = _run([fer_edge, *argv], tmp_path, env)
            lines = [line for line in out.stderr.splitlines() if line.strip()]
            if extra in installed:
                # past the extra's check, into the command itself: its missing input is named
                # in one line (exit 66), which takes the command's own modules importing
                assert out.returncode == 66 and len(lines) == 1 and "missing" in lines[0], (
                    installed,
                    argv,
                    out.stderr[-1000:],
                )
            else:
                assert out.returncode == 69 and len(lines) == 1 and f"[{extra}]" in lines[0], (
                    installed,
                    argv,
                    out.stderr[-1000:],
                )


COMMANDS = ("train", "teach", "distill", "ensemble", "recover", "evaluate", "calibrate", "run", "predict",
            "bench", "fit-framing")  # fmt: skip


def _copy_of_the_project(clone: Path) -> Path:
    """The project's files as a fresh clone has them (tracked, plus new ones not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    return clone


def _run(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _extra_commands(tmp_path: Path, face: Path) -> dict[str, list[list[str]]]:
    """The commands each extra serves, each given an input that does not exist: without the
    extra the command names it (69); with it, the command runs far enough to name the input."""
    missing = str(tmp_path / "missing-faces.csv")
    model = str(tmp_path / "missing.keras")
    return {
        "train": [["train", "--arch", "edge", "--data", missing, "--out", str(tmp_path / "run")],
                  ["teach", "--data", missing, "--out", str(tmp_path / "t")],
                  ["distill", "--data", missing, "--out", str(tmp_path / "d"), "--teacher", model],
                  ["ensemble", "--model", model, "--model", model, "--out", str(tmp_path / "e.keras")],
                  ["recover", "--model", model, "--data", missing, "--out", str(tmp_path / "r.keras")],
                  ["evaluate", "--model", model, "--data", missing],
                  ["calibrate", "--model", model, "--data", missing, "--mode", "int8",
                   "--out", str(tmp_path / "m.tflite")]],
        "bench": [["bench", "--accuracy", "--data", missing],
                  ["fit-framing", "--data", missing, "--out", str(tmp_path / "f.json")]],
    }  # fmt: skip
