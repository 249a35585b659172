"""The models fer-edge ships: the bundled emotion model (int8, and float16 for GPUs) with their
metadata, and the face detectors in ``detectors/``."""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).parent
BUNDLED_MODEL = BUNDLED_DIR / "fer-edge-int8.tflite"
