"""``fer-edge fit-framing``: fit a detector's box-to-crop framing."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.cli.common import add_cache_dir, add_common, cache_dir, require_data
from fer_edge.errors import UsageError, require_extra


def register(sub: Any) -> None:
    p = sub.add_parser(
        "fit-framing",
        help="fit a detector's box-to-crop framing from training faces pasted into frames",
    )
    add_common(p, model=False)
    p.add_argument("--detector", choices=["blazeface", "haar"], default="blazeface")
    p.add_argument("--faces", type=int, default=1000, help="faces to paste and detect")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the framing file here (the shipped one: fer_edge/models/detectors/)")
    add_cache_dir(p)
    p.set_defaults(handler=_fit_framing)


def _fit_framing(args: argparse.Namespace) -> int:
    require_extra("bench", "skimage")
    from fer_edge.bench.framing_fit import fit_framing, write_framing
    from fer_edge.daemon.config import DetectorConfig
    from fer_edge.daemon.detect import create_detector
    from fer_edge.errors import DataError
    from fer_edge.training.data import load_dataset

    if args.faces < 10:
        raise UsageError(f"--faces {args.faces}: need at least 10")
    data = require_data(args)
    split, faces = load_dataset(data, cache_dir=cache_dir(args)).get(args.split or "Training")
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
