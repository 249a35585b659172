"""The ``fer-edge`` command line: one parser, one module per command (its parser beside its
handler); each handler imports its heavy modules only when it runs, so ``fer-edge run`` never
pulls in TensorFlow and ``fer-edge --help`` starts instantly.

Every user error surfaces here as one line on stderr and a documented exit code (see
``fer_edge.errors``); tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from fer_edge.cli import bench, calibrate, ensemble, evaluate, fit_framing, predict, recover, run, train
from fer_edge.errors import EXIT_SOFTWARE, FerEdgeError

COMMANDS = (train, ensemble, recover, evaluate, calibrate, run, predict, bench, fit_framing)

logger = logging.getLogger("fer_edge")


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for noisy in ("tensorflow", "absl", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-edge", description="Facial emotion recognition for camera boxes."
    )
    parser.add_argument("-v", "--verbose", action="count", default=1, help="more logging (-vv for debug)")
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_const",
        const=0,
        dest="verbose",
        help="warnings and errors only",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fer_edge.metadata import set_command

    parser = build_parser()
    args = parser.parse_args(argv)
    set_command(sys.argv[1:] if argv is None else argv)
    _setup_logging(args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args) or 0
    except FerEdgeError as e:
        print(f"fer-edge {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"fer-edge {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:  # a bug: keep the traceback, but still a documented code
        logger.exception("fer-edge %s failed unexpectedly", args.command)
        return EXIT_SOFTWARE


if __name__ == "__main__":
    sys.exit(main())
