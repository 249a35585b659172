"""``fer-edge train``, ``teach`` and ``distill``: one training loop, three spellings."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.cli.common import add_cache_dir, cache_dir, print_summary
from fer_edge.errors import UsageError, require_extra

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
    add_cache_dir(p)
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


def register(sub: Any) -> None:
    for name in TRAIN_PRESETS:
        _add_training(sub, name)


def _train(args: argparse.Namespace) -> int:
    require_extra("train", "keras")
    from fer_edge.training.archs import get_arch
    from fer_edge.training.train import TrainConfig, train

    get_arch(args.arch)  # an unknown --arch is a usage error before any data is read
    cache = cache_dir(args)
    given = (
        f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("arch", "data", "out", "cache_dir")
    )
    fields = {k: getattr(args, k) for k in given if getattr(args, k, None) is not None}
    for name in ("distill_weight", "distill_temperature"):
        if name in fields and not args.teachers:
            raise UsageError(f"--{name.replace('_', '-')} needs --teacher")
    report = train(TrainConfig(arch=args.arch, data=args.data, out=args.out, cache_dir=cache, **fields))
    print_summary(report)
    if args.json:
        write_json(args.json, report)
    return 0
