"""``fer-edge calibrate``: quantise a trained model to TFLite."""

from __future__ import annotations

import argparse
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.cli.common import add_cache_dir, cache_dir
from fer_edge.errors import require_extra


def register(sub: Any) -> None:
    p = sub.add_parser(
        "calibrate",
        help="quantise a trained .keras model to TFLite, or fit a .tflite model's score scale anew",
    )
    p.add_argument(
        "--model",
        required=True,
        help="trained .keras model; or a .tflite model, whose scores alone are fitted again (no converter)",
    )
    p.add_argument("--data", required=True, help="dataset for calibration faces and the accuracy check")
    p.add_argument("--split", help="split for the accuracy check (default: PrivateTest, else PublicTest)")
    p.add_argument(
        "--mode",
        choices=["float32", "float16", "dynamic", "int8", "edgetpu"],
        help="quantisation (required for a .keras model; a .tflite keeps its own)",
    )
    p.add_argument("--out", required=True, help="output .tflite path (metadata goes beside it)")
    p.add_argument(
        "--calibration-size",
        type=int,
        default=500,
        help="representative faces, class-balanced, from the training split",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--io",
        choices=["int8", "uint8"],
        default="int8",
        dest="io_type",
        help="input/output type of full-integer models (EdgeTPU accepts both)",
    )
    p.add_argument(
        "--prior-shift",
        default="auto",
        help="move scores towards the taggers' class shares: auto (chosen on the selection split: the "
        "best FER+ majority accuracy that loses no macro-F1), a strength, or 0 for none (default auto)",
    )
    add_cache_dir(p)
    p.add_argument("--json", help="write the report here ('-' for stdout)")
    p.set_defaults(handler=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    if not args.model.endswith(".tflite"):
        require_extra("train", "tensorflow")  # TensorFlow's converter
    from fer_edge.quantize.calibrate import CalibrateConfig, calibrate

    cache = cache_dir(args)
    report = calibrate(
        CalibrateConfig(
            model=args.model,
            data=args.data,
            mode=args.mode,
            out=args.out,
            split=args.split,
            calibration_size=args.calibration_size,
            seed=args.seed,
            io_type=args.io_type,
            cache_dir=cache,
            prior_shift=args.prior_shift,
        )
    )
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(_summary(report))
    return 0


def _summary(report: dict[str, Any]) -> str:
    """One line: the file, its accuracy (against the float model's when there is one), its cost."""
    accuracy = f"{report['accuracy']:.4f}"
    if report["accuracy_change"] is not None:
        accuracy = (
            f"float {report['float_accuracy']:.4f} -> {accuracy} "
            f"({100 * report['accuracy_change']:+.2f} points)"
        )
    return (
        f"{report['model']}: {report['mode']}, {report['size_bytes'] / 1024:.1f} KiB; "
        f"{report['split']} accuracy {accuracy}; score temperature {report['temperature']:.3f}"
        f"{', prior shift' if report['score_bias'] else ''}; "
        f"per face p50 {report['per_face_ms']['p50']:.3f} ms (1 thread)"
    )
