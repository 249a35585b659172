"""``fer-edge recover``: a trainable member of an int8 ensemble."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_edge.cli.common import add_cache_dir, add_common, cache_dir
from fer_edge.errors import MissingInputError, UsageError, require_extra


def register(sub: Any) -> None:
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
    add_cache_dir(p)
    p.set_defaults(handler=_recover)


def _recover(args: argparse.Namespace) -> int:
    require_extra("train", "keras")
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
    dataset = load_dataset(args.data, 48, cache_dir(args))
    split = next((v for k, v in dataset.splits.items() if k.lower() in ("training", "train")), None)
    split = split or next(iter(dataset.splits.values()))
    pick = np.random.default_rng(args.seed).permutation(len(split))[: args.faces]
    model = recover_member(args.model, args.member, split.images[pick])
    with atomic_path(args.out) as tmp:
        model.save(tmp)
    print(f"{args.out}: member {args.member} of {Path(args.model).name}, {model.count_params():,} parameters")
    return 0
