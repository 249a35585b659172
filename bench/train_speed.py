"""Epoch time of ``fer-edge train --arch edge`` on this machine: this tree against a baseline commit.

Both trainers run the same command, one after the other, in this run: the baseline from a
``git archive`` of ``--baseline`` laid out as an importable package, this tree from the installed
package, in interleaved rounds. The figures are medians over the rounds of the last epoch's time
as Keras reports it (the first includes tracing and compiling) and of the whole command's wall
time (data loading, every epoch with its selection scoring and checkpoint, the final report);
the ratios are this tree over the baseline.

    python bench/train_speed.py --data ../shared/data/fer2013.csv.gz --baseline 1acf2ba \\
        --json docs/bench/train-speed.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where each package of the distribution lives in the source tree (pyproject's package-dir).
PACKAGE_DIRS = {"fer_edge": "fer_edge", "training": "fer_edge/training", "quantize": "fer_edge/quantize"}
PACKAGE_DIRS["daemon"] = "fer_edge/daemon"
EPOCH_LINE = re.compile(r"^\s*(\d+)/(\d+) - (\d+)s - ")


def _baseline_tree(rev: str, into: Path) -> Path:
    """The baseline's sources laid out as the installed package is: ``into/fer_edge/...``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            top, _, rest = member.name.partition("/")
            if top in PACKAGE_DIRS and member.isfile():
                member.name = f"{PACKAGE_DIRS[top]}/{rest}"
                tar.extract(member, into, filter="data")
    return into


def _run(label: str, args: list[str], pythonpath: str | None, cwd: str) -> dict[str, object]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    code = "import sys, fer_edge.cli as c; print('source', c.__file__, flush=True); "
    code += "sys.exit(c.main(sys.argv[1:]))"
    started = time.monotonic()
    done = subprocess.run(  # cwd: ``-c`` puts it first on sys.path, and this tree's sources are there
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, cwd=cwd
    )
    wall = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{label}: exit {done.returncode}: {done.stderr[-1500:]}")
    epochs = [int(m.group(3)) for m in map(EPOCH_LINE.match, done.stdout.splitlines()) if m]
    source = next(line.split(" ", 1)[1] for line in done.stdout.splitlines() if line.startswith("source "))
    print(f"{label}: epochs {epochs} s, wall {wall:.0f} s ({source})", flush=True)
    return {"epoch_seconds": epochs, "steady_epoch_s": epochs[-1], "wall_s": round(wall, 1), "source": source}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--baseline", required=True, help="git revision of the trainer to compare with")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="baseline/current pairs, interleaved")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = _baseline_tree(args.baseline, Path(tmp) / "baseline")
        common = ["train", "--arch", "edge", "--data", args.data, "--epochs", str(args.epochs), "--seed", "1"]
        data = str(Path(args.data).resolve())
        common[common.index(args.data)] = data
        runs: dict[str, list[dict[str, object]]] = {"baseline": [], "current": []}
        for round_ in range(args.rounds):  # interleaved: a slow spell of the machine hits both
            runs["baseline"].append(_run("baseline", [*common, "--out", f"{tmp}/b{round_}"], str(base), tmp))
            runs["current"].append(_run("this tree", [*common, "--out", f"{tmp}/c{round_}"], None, tmp))
        common[common.index(data)] = Path(args.data).name
    report = {
        "command": "fer-edge " + " ".join(common),
        "baseline_rev": args.baseline,
        "baseline": runs["baseline"],
        "current": runs["current"],
        "steady_epoch_s": {k: statistics.median(r["steady_epoch_s"] for r in v) for k, v in runs.items()},
        "wall_s": {k: statistics.median(r["wall_s"] for r in v) for k, v in runs.items()},
        "cpu": os.cpu_count(),
    }
    steady = report["steady_epoch_s"]
    report["steady_epoch_ratio"] = round(steady["current"] / steady["baseline"], 3)
    report["wall_ratio"] = round(report["wall_s"]["current"] / report["wall_s"]["baseline"], 3)
    print(json.dumps(report, indent=2))
    if args.json:
        from fer_edge.atomic import write_json

        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
