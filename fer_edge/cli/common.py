"""What several commands share, declared once: the model/data/split/JSON options, the dataset
cache, and the one-line report summary."""

from __future__ import annotations

import argparse
from typing import Any

from fer_edge.errors import UsageError
from fer_edge.models import BUNDLED_MODEL


def add_common(p: argparse.ArgumentParser, *, model: bool = True, data: bool = True) -> None:
    if model:
        p.add_argument(
            "--model",
            default=str(BUNDLED_MODEL),
            help="model file (.tflite or .keras); default: the bundled int8 model",
        )
    if data:
        p.add_argument("--data", help="FER2013 .csv/.csv.gz or an image folder")
        p.add_argument(
            "--split",
            help="split to use (default: PrivateTest, else PublicTest, else the whole set)",
        )
    p.add_argument("--json", help="write the JSON report here ('-' for stdout)")


def add_cache_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        help="where decoded datasets are cached (default ~/.cache/fer-edge; 'none' disables)",
    )


def require_data(args: argparse.Namespace) -> str:
    if not args.data:
        raise UsageError("--data is required (a FER2013 .csv/.csv.gz or an image folder)")
    return args.data


def cache_dir(args: argparse.Namespace) -> str | None:
    """Where decoded datasets are cached: ``--cache-dir``, the default, or nowhere for 'none'."""
    if args.cache_dir == "none":
        return None
    from fer_edge.training.data import DEFAULT_CACHE

    return args.cache_dir or str(DEFAULT_CACHE)


def print_summary(report: dict[str, Any]) -> None:
    against = " (FER+ majority)" if report.get("labels") == "ferplus-majority" else ""
    print(
        f"{report['split']}: n={report['n']} accuracy={report['accuracy']:.4f}{against} "
        f"macro_f1={report['macro_f1']:.4f}"
    )
    if "fer2013" in report:
        old = report["fer2013"]
        print(f"  FER2013 labels: n={old['n']} accuracy={old['accuracy']:.4f} macro_f1={old['macro_f1']:.4f}")
    if "agreement" in report:
        agreement = report["agreement"]
        print(
            f"  against the taggers' shares: cross-entropy={agreement['cross_entropy']:.4f} "
            f"ECE={agreement['ece']:.4f}"
        )
    if "clearly_shown" in report:
        clear = report["clearly_shown"]
        rows = clear["per_class"].items()
        recalls = " ".join(f"{name}={row['recall']:.2f}" for name, row in rows if row["recall"] is not None)
        called = clear.get("emotions_called_neutral")
        print(
            f"  shown clearly (>= {clear['share']:.0%} of taggers agree, n={clear['n']}): recall {recalls}"
            + (f"; emotions called neutral {called:.3f}" if called is not None else "")
        )
    for name, row in report.get("robustness", {}).items():
        print(f"  {name:<14} accuracy={row['accuracy']:.4f} ({row['delta']:+.4f})")
