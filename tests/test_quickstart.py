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
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    clone = tmp_path / "fer-edge"
    for name in filter(None, listed.decode().split("\0")):
        source = REPO / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PYTHON"] = str(SYSTEM_PYTHON)
    proc = subprocess.run(
        ["bash", "deploy/quickstart.sh", "--duration", "6"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (clone / ".venv" / "bin" / "python").exists()
    documents = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(documents) >= 3, proc.stdout[-2000:]
    assert all(d["camera"] == "demo" for d in documents)
    assert any(f["emotion"] == "happy" for d in documents for f in d["faces"])
    assert "fer-edge demo: open http://127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr

    # every documented command on this [device] install: the camera-box ones work, the others
    # say which extra they need (exit 69, one line), none fails with a traceback
    fer_edge = str(clone / ".venv" / "bin" / "fer-edge")
    face = clone / "fer_edge" / "assets" / "face.jpg"
    faces = tmp_path / "faces.csv"
    faces.write_text("emotion,pixels,Usage\n0," + " ".join(["128"] * 2304) + ",Training\n")
    works = [["predict", str(face)], ["--help"], *([c, "--help"] for c in COMMANDS)]
    needs = {
        "train": [["train", "--arch", "edge", "--data", str(faces), "--out", str(tmp_path / "run")],
                  ["teach", "--data", str(faces), "--out", str(tmp_path / "t")],
                  ["distill", "--data", str(faces), "--out", str(tmp_path / "d"), "--teacher", str(face)],
                  ["ensemble", "--model", "a.keras", "--out", str(tmp_path / "e.keras")],
                  ["recover", "--data", str(faces), "--out", str(tmp_path / "r.keras")],
                  ["evaluate", "--data", str(faces)],
                  ["calibrate", "--model", "m.keras", "--data", str(faces), "--mode", "int8",
                   "--out", "m.tflite"]],
        "bench": [["bench", "--accuracy", "--data", str(faces)],
                  ["fit-framing", "--data", str(faces), "--out", str(tmp_path / "f.json")]],
    }  # fmt: skip
    for argv in works:
        out = subprocess.run(
            [fer_edge, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, (argv, out.stderr[-1000:])
    for extra, commands in needs.items():
        for argv in commands:
            out = subprocess.run(
                [fer_edge, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
            )
            lines = [line for line in out.stderr.splitlines() if line.strip()]
            assert out.returncode == 69 and len(lines) == 1 and f"[{extra}]" in lines[0], (
                argv,
                out.stderr[-1000:],
            )


COMMANDS = ("train", "teach", "distill", "ensemble", "recover", "evaluate", "calibrate", "run", "predict",
            "bench", "fit-framing")  # fmt: skip
