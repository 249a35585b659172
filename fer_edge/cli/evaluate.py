"""``fer-edge evaluate``: accuracy, macro-F1, recall, confusion, agreement with the taggers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.cli.common import add_cache_dir, add_common, cache_dir, print_summary, require_data
from fer_edge.errors import require_extra


def register(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class recall, confusion matrix")
    add_common(p)
    p.add_argument(
        "--tta",
        choices=["none", "flip", "crops"],
        default="none",
        help="test-time augmentation: average over flips or 10 shifted crops",
    )
    p.add_argument(
        "--robustness",
        action="store_true",
        help="add rows for low light, an occluding band and +-20 degree rotation",
    )
    p.add_argument("--confusion-png", help="confusion matrix PNG (default: beside --json)")
    p.add_argument(
        "--reliability-png",
        help="reliability diagram PNG when the data has FER+ votes "
        "(default: beside --json, as .reliability.png)",
    )
    p.add_argument("--delegate", default="cpu", help="cpu | gpu | edgetpu | /path/to/delegate.so")
    p.add_argument("--threads", type=int, default=2)
    add_cache_dir(p)
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    require_extra("train", "matplotlib")  # its plots; .keras models need keras too
    from fer_edge.runtime import RuntimeOptions
    from fer_edge.training.data import load_dataset
    from fer_edge.training.evaluate import evaluate_split, load_classifier
    from fer_edge.training.plots import plot_confusion

    data = require_data(args)
    model = load_classifier(args.model, RuntimeOptions(args.delegate, args.threads))
    cache = cache_dir(args)
    dataset = load_dataset(data, model.metadata.input_spec().size, cache)
    split_name, split = dataset.get(args.split)
    evaluation = evaluate_split(model, split, args.tta, args.robustness)
    report = {
        "model": str(args.model),
        "data": str(data),
        "split": split_name,
        "tta": args.tta,
        **evaluation.report,
    }
    png = args.confusion_png or (
        str(Path(args.json).with_suffix(".png")) if args.json and args.json != "-" else None
    )
    if png:
        plot_confusion(
            report["confusion"],
            evaluation.labels,
            png,
            f"{Path(args.model).name} on {split_name}: {report['accuracy']:.3f}",
        )
    reliability_png = args.reliability_png or (
        str(Path(args.json).with_suffix(".reliability.png")) if args.json and args.json != "-" else None
    )
    if reliability_png and "agreement" in report:
        from fer_edge.training.plots import plot_reliability

        plot_reliability(
            report["agreement"]["bins"],
            reliability_png,
            f"{Path(args.model).name} on {split_name}: ECE {report['agreement']['ece']:.3f}",
        )
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print_summary(report)
    return 0
