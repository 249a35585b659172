"""User-facing errors and the exit codes the CLI contract fixes (sysexits.h values).

Library code raises :class:`FerEdgeError` subclasses with one clear line that names the file, line
or field at fault; only ``fer_edge.cli`` turns them into a message and an exit code.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_DATA = 65  # EX_DATAERR: the input exists but is malformed
EXIT_NO_INPUT = 66  # EX_NOINPUT: an input file or folder is missing
EXIT_SOFTWARE = 70  # EX_SOFTWARE: an internal failure (a bug); logged with its traceback
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: a runtime, delegate or optional extra is not installed
EXIT_CANT_CREATE = 73  # EX_CANTCREAT: an output or state file cannot be created
EXIT_CONFIG = 78  # EX_CONFIG: the daemon's configuration is invalid


class FerEdgeError(Exception):
    """An error a user can fix; ``exit_code`` is what the CLI returns for it."""

    exit_code: int = EXIT_DATA


class DataError(FerEdgeError):
    """Input data (CSV rows, images, models) is malformed."""

    exit_code = EXIT_DATA


class MissingInputError(FerEdgeError):
    """An input file or folder does not exist or cannot be read."""

    exit_code = EXIT_NO_INPUT


class UsageError(FerEdgeError):
    """Arguments are inconsistent in a way argparse cannot see."""

    exit_code = EXIT_USAGE


class CannotCreateError(FerEdgeError):
    """An output or state file or folder cannot be created where the user asked."""

    exit_code = EXIT_CANT_CREATE


class ConfigError(FerEdgeError):
    """The daemon configuration is invalid."""

    exit_code = EXIT_CONFIG


class MissingExtraError(FerEdgeError):
    """A command needs an optional extra that is not installed; the message names it."""

    exit_code = EXIT_UNAVAILABLE


def require_extra(extra: str, module: str) -> None:
    """Raise :class:`MissingExtraError` (exit 69) unless ``module`` imports: the command needs
    ``fer-edge[extra]``. Checked before the command starts, not at its first use of the module,
    and the module is imported here with native stderr silenced: TensorFlow's libraries print
    CUDA probes and an absl notice as they load, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, and a
    command's error must stay one line."""
    import importlib
    import importlib.util
    import os
    import sys

    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"needs the [{extra}] extra ({module} is not installed): pip install 'fer-edge[{extra}]'"
        )
    if module in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            importlib.import_module(module)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
