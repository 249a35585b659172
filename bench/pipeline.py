"""``fer-edge bench``: what one camera box can carry, measured on this machine.

Per-face classification latency (1 and N threads), per-frame pipeline latency at 720p/1080p with
0, 1 and 4 faces for each detector, and the CPU that one 1080p25 H.264 stream costs at 1 Hz with
all-frame versus key-frame-only decoding, beside what decoding alone costs in the same run.
"""

from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import av

from fer_edge.daemon.cadence import DecodeMode, DecodePlan, TickSampler
from fer_edge.daemon.config import DetectorConfig, ModelConfig
from fer_edge.daemon.decode import configure_decoder, frame_luma, planned_frames
from fer_edge.daemon.democlip import Sprite, face_image, render_frame, write_clip
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.pipeline import Analysis, FacePipeline
from fer_edge.daemon.scan import ScanPlanner
from fer_edge.daemon.track import FaceTracker
from fer_edge.latency import per_face_latency_ms, percentiles_ms, time_calls_ms
from fer_edge.preprocess import to_gray
from fer_edge.runtime import EmotionModel, RuntimeOptions

RESOLUTIONS = {"720p": (1280, 720), "1080p": (1920, 1080)}
DEFAULT_FULL_SCAN_EVERY: int = DetectorConfig.model_fields["full_scan_every"].default
FACE_COUNTS = (0, 1, 4)


@dataclass
class BenchOptions:
    model: str
    quick: bool = False
    threads: int = os.cpu_count() or 1
    tta: str = ModelConfig.model_fields["tta"].default  # what the daemon does by default


def per_face(model_path: str, threads: int, runs: int) -> dict[str, float]:
    return per_face_latency_ms(EmotionModel(model_path, RuntimeOptions(num_threads=threads)), runs)


def _sprites(count: int, width: int, height: int) -> list[Sprite]:
    """``count`` non-overlapping faces about a fifth of the frame height."""
    scale = height / 5 / 95
    side = 210 * scale
    return [
        Sprite(scale=scale, x=(i + 0.2) * (width - side) / max(1, count), y=height * 0.3)
        for i in range(count)
    ]


def per_frame(pipeline: FacePipeline, runs: int) -> dict[str, dict[str, dict[str, float]]]:
    face = face_image()
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name, (width, height) in RESOLUTIONS.items():
        table[name] = {}
        for count in FACE_COUNTS:
            frame = render_frame(face, _sprites(count, width, height), 0.0, width, height)
            luma = to_gray(frame)
            table[name][str(count)] = percentiles_ms(
                time_calls_ms(lambda lu=luma: pipeline.analyse(lu), runs, warmup=2)
            )
    return table


def analyse_stream(
    clip: Path,
    decode: DecodeMode,
    pipeline: FacePipeline | None,
    full_scan_every: int = DEFAULT_FULL_SCAN_EVERY,
    marks: list[float] | None = None,
    interval_s: float = 1.0,
) -> list[Analysis]:
    """Decode ``clip`` as a camera reader does (the packets ``decode`` plans for) and analyse its
    tick frames, searching for faces as the daemon does (``full_scan_every`` as in its config);
    no pipeline: decode only. ``marks`` receives the process CPU time after each analysis."""
    planner = ScanPlanner(pipeline.detector, full_scan_every) if pipeline is not None else None
    tracker = FaceTracker()
    plan, sampler = DecodePlan(decode, interval_s), TickSampler(interval_s)
    analyses = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, decode)
        for frame, _ms in planned_frames(container, stream, plan):
            if sampler.take(frame.time or 0.0, plan.spacing_s) and pipeline is not None:
                luma, video_range = frame_luma(frame)
                analyses.append(pipeline.analyse(luma, tracker, planner, video_range))
                if marks is not None:
                    marks.append(time.process_time())
    return analyses


def _stream_cpu(
    clip: Path,
    seconds: float,
    decode: DecodeMode,
    pipeline: FacePipeline | None,
    full_scan_every: int = DEFAULT_FULL_SCAN_EVERY,
) -> tuple[float, float]:
    """CPU seconds per stream second of :func:`analyse_stream`: over the whole clip, and from
    the end of the first analysis on (the steady state a long-running camera is in, without
    its one start-up whole-frame scan)."""
    start = time.process_time()
    marks: list[float] = []
    analyse_stream(clip, decode, pipeline, full_scan_every, marks)
    end = time.process_time()
    steady = (end - marks[0]) / max(1.0, seconds - 1.0) if marks else (end - start) / seconds
    return (end - start) / seconds, steady


# a stream pass: what to decode, the pipeline (None: decode only), full_scan_every
StreamPass = tuple[DecodeMode, FacePipeline | None, int]


def median_stream_cpu(
    clip: Path, seconds: float, passes: dict[str, StreamPass], repeats: int
) -> dict[str, float]:
    """Median CPU seconds per stream second of each named pass, the passes interleaved: one pass
    is a fraction of a CPU second, and the ratios between passes are what the figures are read for.
    A pass with a pipeline also gives ``<name>_steady``: from the end of its first analysis on."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        for name, (decode, pipeline, every) in passes.items():
            total, steady = _stream_cpu(clip, seconds, decode, pipeline, every)
            samples.setdefault(name, []).append(total)
            if pipeline is not None:  # an analysing pass: its steady state too
                samples.setdefault(f"{name}_steady", []).append(steady)
    return {name: statistics.median(values) for name, values in samples.items()}


def stream_costs(pipeline: FacePipeline, quick: bool, haar: FacePipeline | None = None) -> dict[str, Any]:
    """CPU per second of one 1080p25 stream with one face walking across it (a still face would
    flatter the daemon, which does not search again around a face where nothing changed)."""
    # one whole-frame-scan period: the figure is what a camera costs on average, its periodic
    # whole-frame scan included once, as in the daemon's steady state
    seconds = 3.0 if quick else float(DEFAULT_FULL_SCAN_EVERY)
    width, height = RESOLUTIONS["1080p"]
    walker = replace(_sprites(1, width, height)[0], vx=120.0, vy=30.0)
    with tempfile.TemporaryDirectory(prefix="fer-edge-bench-") as tmp:
        clip = write_clip(
            Path(tmp) / "1080p25.mp4",
            [walker],
            seconds,
            fps=25,
            width=width,
            height=height,
            gop_s=1.0,
            noise=4.0,
        )
        passes: dict[str, StreamPass] = {
            "decode_all": ("all", None, 1),
            "decode_keyframes": ("keyframes", None, 1),
            "pipeline_all_frames_1hz": ("all", pipeline, DEFAULT_FULL_SCAN_EVERY),
            "pipeline_keyframes_1hz": ("auto", pipeline, DEFAULT_FULL_SCAN_EVERY),
            "pipeline_keyframes_1hz_full_scans": ("auto", pipeline, 1),
        }
        if haar is not None:
            passes["pipeline_keyframes_1hz_haar"] = ("auto", haar, DEFAULT_FULL_SCAN_EVERY)
        costs = median_stream_cpu(clip, seconds, passes, 1 if quick else 5)
    return {
        "seconds": seconds,
        "detector": pipeline.detector.kind,
        "cpu_s_per_s": {k: round(v, 4) for k, v in costs.items()},
        "ratio_pipeline_keyframes_vs_keyframe_decode": round(
            costs["pipeline_keyframes_1hz"] / costs["decode_keyframes"], 2
        ),
        "ratio_steady_vs_keyframe_decode": round(
            costs["pipeline_keyframes_1hz_steady"] / costs["decode_keyframes"], 2
        ),
        "ratio_all_frames_vs_keyframes": round(
            costs["pipeline_all_frames_1hz"] / costs["pipeline_keyframes_1hz"], 2
        ),
    }


def run_bench(options: BenchOptions) -> dict[str, Any]:
    runs = 50 if options.quick else 300
    frame_runs = 5 if options.quick else 30
    model = EmotionModel(options.model, RuntimeOptions(num_threads=1))
    detectors = {"blazeface": DetectorConfig(kind="blazeface"), "haar": DetectorConfig(kind="haar")}
    pipelines = {
        name: FacePipeline(create_detector(cfg), model, options.tta) for name, cfg in detectors.items()
    }
    return {
        "model": Path(options.model).name,
        "tta": options.tta,
        "per_face_ms": per_face(options.model, 1, runs),
        "per_face_ms_n_threads": {
            "threads": options.threads,
            **per_face(options.model, options.threads, runs),
        },
        "per_frame_ms": {name: per_frame(p, frame_runs) for name, p in pipelines.items()},
        "stream_1080p25": stream_costs(pipelines["blazeface"], options.quick, pipelines["haar"]),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def format_table(report: dict[str, Any]) -> str:
    lines = [
        f"model {report['model']}",
        f"per face (1 thread)   p50 {report['per_face_ms']['p50']:.3f} ms   "
        f"p95 {report['per_face_ms']['p95']:.3f} ms",
        f"per face ({report['per_face_ms_n_threads']['threads']} threads)  "
        f"p50 {report['per_face_ms_n_threads']['p50']:.3f} ms   "
        f"p95 {report['per_face_ms_n_threads']['p95']:.3f} ms",
        "per frame, detect + classify (ms, p50 / p95):",
    ]
    for detector, table in report["per_frame_ms"].items():
        for resolution, rows in table.items():
            cells = "   ".join(f"{n} faces {r['p50']:.1f} / {r['p95']:.1f}" for n, r in rows.items())
            lines.append(f"  {detector:<9} {resolution:<6} {cells}")
    stream = report["stream_1080p25"]
    cpu = stream["cpu_s_per_s"]
    lines += [
        f"one 1080p25 stream (1 s GOP), CPU seconds per second, analysed at 1 Hz "
        f"({stream['seconds']:.0f} s clip, detector {stream['detector']}):",
        f"  decode all frames           {cpu['decode_all']:.3f}",
        f"  decode key frames only      {cpu['decode_keyframes']:.3f}",
        f"  pipeline, all frames        {cpu['pipeline_all_frames_1hz']:.3f}",
        f"  pipeline, key frames only   {cpu['pipeline_keyframes_1hz']:.3f}   "
        f"({stream['ratio_pipeline_keyframes_vs_keyframe_decode']:.2f}x key-frame decoding)",
        f"  ... after the first tick    {cpu['pipeline_keyframes_1hz_steady']:.3f}   "
        f"({stream['ratio_steady_vs_keyframe_decode']:.2f}x; steady state, start-up scan excluded)",
        f"  ... whole frame every tick  {cpu['pipeline_keyframes_1hz_full_scans']:.3f}   "
        f"({cpu['pipeline_keyframes_1hz_full_scans'] / cpu['decode_keyframes']:.2f}x; "
        "detector.full_scan_every: 1)",
        *(
            [
                f"  ... with the haar detector  {cpu['pipeline_keyframes_1hz_haar']:.3f}   "
                f"({cpu['pipeline_keyframes_1hz_haar'] / cpu['decode_keyframes']:.2f}x)"
            ]
            if "pipeline_keyframes_1hz_haar" in cpu
            else []
        ),
        f"peak RSS {report['peak_rss_mb']:.0f} MB",
    ]
    return "\n".join(lines)
