"""``fer-edge ensemble``: average trained models into one."""

from __future__ import annotations

import argparse
from typing import Any

from fer_edge.errors import require_extra


def register(sub: Any) -> None:
    p = sub.add_parser("ensemble", help="average trained .keras models into one (calibrate it next)")
    p.add_argument(
        "--model", action="append", required=True, dest="models", help="a trained .keras model (repeat)"
    )
    p.add_argument("--out", required=True, help="output .keras path (metadata goes beside it)")
    p.set_defaults(handler=_ensemble)


def _ensemble(args: argparse.Namespace) -> int:
    require_extra("train", "keras")
    from fer_edge.training.ensemble import build_ensemble

    summary = build_ensemble(args.models, args.out)
    print(f"{summary['model']}: mean of {len(summary['members'])} models, {summary['params']:,} parameters")
    return 0
