"""Loading what the daemon runs before it runs: the state folder, the emotion model and the face
detector, so that ``run --check`` fails on exactly what would fail the start."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from fer_edge.daemon.config import DaemonConfig
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.pipeline import FacePipeline
from fer_edge.errors import CannotCreateError, ConfigError, FerEdgeError
from fer_edge.runtime import EmotionModel, RuntimeOptions, RuntimeUnavailableError


def print_sink(document: dict[str, Any]) -> None:
    """Write one emotions document as a JSON line (``--demo``)."""
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def check_state_dir(state_dir: Path, create: bool) -> None:
    """``state_dir`` exists as a writable folder, or can be made one (``create``: make it).
    One line naming the path otherwise (exit 73), instead of a traceback at the spool."""
    try:
        if create:
            state_dir.mkdir(parents=True, exist_ok=True)
        existing = state_dir
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(f"{existing} is not writable")
    except OSError as e:
        reason = e.strerror or str(e)
        raise CannotCreateError(f"state_dir {state_dir}: cannot create or write it ({reason})") from None


def load_pipeline(config: DaemonConfig, default_model: str) -> FacePipeline:
    """The emotion model and the face detector, loaded as the daemon runs them (``run --check``
    loads them too, so a model or detector file that cannot load fails the check, not the start).
    A file that does not load is a configuration error naming its key."""
    try:
        model = EmotionModel(
            config.model.path or default_model,
            RuntimeOptions(config.model.delegate, config.model.num_threads, config.model.fallback_to_cpu),
        )
    except RuntimeUnavailableError as e:
        raise RuntimeUnavailableError(f"model.delegate: {e}") from None  # exit 69, as documented
    except FerEdgeError as e:
        raise ConfigError(f"model.path: {e}") from e
    try:
        detector = create_detector(config.detector)
    except FerEdgeError as e:
        raise ConfigError(f"detector: {e}") from e
    return FacePipeline(detector, model, config.model.tta)
