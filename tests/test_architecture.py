"""The parts and what each may import (the README's "Architecture"): the daemon runs on a camera
box, so it imports neither the training code, TensorFlow, nor the benchmarks; and no module of
fer-edge imports, at load time, a module that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {  # folder -> the package it installs as (pyproject's package-dir)
    "fer_edge": "fer_edge",
    "daemon": "fer_edge.daemon",
    "training": "fer_edge.training",
    "quantize": "fer_edge.quantize",
    "bench": "fer_edge.bench",
}
NOT_IN_THE_DAEMON = ("fer_edge.training", "fer_edge.quantize", "fer_edge.bench", "tensorflow", "keras",
                     "torch", "jax", "skimage", "matplotlib")  # fmt: skip


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            relative = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _imports(path: Path, anywhere: bool) -> set[str]:
    """The modules ``path`` imports: at load time only (module level), or ``anywhere``."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if anywhere else iter(tree.body)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_daemon_imports_neither_training_tensorflow_nor_the_benchmarks() -> None:
    offences = []
    for name, path in _modules().items():
        if name == "fer_edge.daemon" or name.startswith("fer_edge.daemon."):
            for imported in _imports(path, anywhere=True):
                if imported.startswith(NOT_IN_THE_DAEMON):
                    offences.append(f"{name} imports {imported}")
    assert not offences, offences


def test_running_the_daemon_loads_none_of_them() -> None:
    code = (
        "import sys, fer_edge.daemon.app, fer_edge.daemon.web, fer_edge.cli.run, fer_edge.cli.predict; "
        f"print(sorted(m for m in sys.modules if m.startswith({NOT_IN_THE_DAEMON!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_no_module_imports_one_that_imports_it_back() -> None:
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, anywhere=False) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(" -> ".join([*trail[trail.index(nxt) :], nxt]))
            elif len(trail) < 12:
                visit(nxt, [*trail, nxt])

    for name in graph:
        visit(name, [name])
    assert not cycles, sorted(set(cycles))[:5]


def test_commands_that_need_the_bench_extra_name_it_when_it_is_missing(tmp_path: Path) -> None:
    """On an install without ``[bench]`` (scikit-image hidden here): exit 69 and one line."""
    data = tmp_path / "faces.csv"
    data.write_text("emotion,pixels,Usage\n")
    for command in (
        ["bench", "--accuracy", "--data", str(data)],
        ["fit-framing", "--data", str(data), "--out", str(tmp_path / "framing.json")],
    ):
        code = (
            "import sys; sys.modules['skimage'] = None; from fer_edge.cli import main; "
            f"sys.exit(main({command!r}))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 69, (command, out.stderr[-500:])
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "[bench]" in lines[0] and "Traceback" not in out.stderr, out.stderr
