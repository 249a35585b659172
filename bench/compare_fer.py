"""Side by side: fer-edge's pipeline against the `fer` package on the same 1080p25 video.

Builds a 1080p25 H.264 clip (30 s by default: one whole-frame-scan period; 1 s GOP, camera-like
noise) of two moving copies of scikit-image's astronaut portrait, then analyses one frame per
second with
  (a) fer-edge as the daemon runs it by default: `decode: auto` (key frames alone on a 1 s GOP),
      the BlazeFace detector
      over the whole frame on the first tick and around known faces and motion after, the
      bundled int8 model;
  (b) fer (`pip install --no-deps fer 'setuptools<81'`: it still imports pkg_resources), as its
      README uses it: OpenCV decodes every frame, `FER().detect_emotions(frame)` (its Haar
      cascade, its bundled TFLite mini-Xception);
  (c) fer given the decoding a user could give it: PyAV decoding key frames alone (1 Hz on a 1 s
      GOP), each passed to `detect_emotions`, so the ratio to (a) is analysis against analysis.
CPU time is process CPU time (all threads), measured in this one run; each tool's figure is the
median of its passes. Prints both tools' emotions per analysed second and the ratios.
Usage: python bench/compare_fer.py [--seconds N] [--repeats N] [--fer-repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np

from fer_edge.bench.pipeline import analyse_stream, median_stream_cpu, per_face
from fer_edge.daemon.config import DetectorConfig, ModelConfig
from fer_edge.daemon.democlip import Sprite, write_clip
from fer_edge.daemon.detect import create_detector
from fer_edge.daemon.pipeline import FacePipeline
from fer_edge.models import BUNDLED_MODEL
from fer_edge.runtime import EmotionModel, RuntimeOptions

WIDTH, HEIGHT, FPS = 1920, 1080, 25
SPRITES = [
    Sprite(scale=1.4, x=200, y=150, vx=40, vy=30),
    Sprite(scale=1.0, x=1300, y=500, vx=-35, vy=-25),
]


def load_fer() -> object:
    try:
        from fer.fer import FER
    except ImportError:
        sys.exit(
            "compare_fer: the `fer` package is missing: pip install --no-deps fer "
            "(it needs tensorflow, which `pip install -e .[train]` brings)"
        )
    return FER()


def fer_edge_outputs(clip: Path, pipeline: FacePipeline) -> list[list[str]]:
    """fer-edge's emotions per analysed second, as the daemon finds them."""
    return [[f.emotion for f in a.faces] for a in analyse_stream(clip, "auto", pipeline)]


def fer_run(clip: Path, detector: object, seconds: float) -> tuple[float, list[list[str]]]:
    """CPU seconds per stream second for `fer`, and its top emotions per analysed second."""
    capture = cv2.VideoCapture(str(clip))
    start = time.process_time()
    outputs, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % FPS == 0:
            faces = detector.detect_emotions(frame)  # type: ignore[attr-defined]
            outputs.append([max(f["emotions"], key=f["emotions"].get) for f in faces])
        index += 1
    cpu = (time.process_time() - start) / seconds
    capture.release()
    return cpu, outputs


def fer_keyframes_run(clip: Path, detector: object, seconds: float) -> tuple[float, list[list[str]]]:
    """As :func:`fer_run`, but decoding key frames alone (PyAV's ``skip_frame = "NONKEY"``)."""
    import av

    start = time.process_time()
    outputs = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            faces = detector.detect_emotions(frame.to_ndarray(format="bgr24"))  # type: ignore[attr-defined]
            outputs.append([max(f["emotions"], key=f["emotions"].get) for f in faces])
    return (time.process_time() - start) / seconds, outputs


def fer_per_face_ms(runs: int = 300) -> float:
    from fer.fer import FER

    interpreter = FER._tflite_interpreter_cache
    detail = interpreter.get_input_details()[0]
    face = np.random.default_rng(0).random(detail["shape"]).astype(detail["dtype"])
    for _ in range(10):
        interpreter.set_tensor(detail["index"], face)
        interpreter.invoke()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        interpreter.set_tensor(detail["index"], face)
        interpreter.invoke()
        samples.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(samples, 50))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=float(DetectorConfig().full_scan_every),
        help="clip length (default: one whole-frame-scan period, so the start-up scan counts once)",
    )
    parser.add_argument("--repeats", type=int, default=5, help="fer-edge passes (median is reported)")
    parser.add_argument("--fer-repeats", type=int, default=3, help="fer passes (median is reported)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    fer_detector = load_fer()
    model = EmotionModel(BUNDLED_MODEL, RuntimeOptions(num_threads=1))
    pipeline = FacePipeline(create_detector(DetectorConfig()), model, ModelConfig().tta)
    with tempfile.TemporaryDirectory(prefix="fer-edge-compare-") as tmp:
        clip = write_clip(
            Path(tmp) / "clip.mp4",
            SPRITES,
            args.seconds,
            fps=FPS,
            width=WIDTH,
            height=HEIGHT,
            gop_s=1.0,
            noise=4.0,
        )
        every = DetectorConfig().full_scan_every
        passes = {"ours": ("auto", pipeline, every), "floor": ("keyframes", None, every)}
        costs = median_stream_cpu(clip, args.seconds, passes, args.repeats)
        ours_cpu, ours_steady, keyframe_decode = costs["ours"], costs["ours_steady"], costs["floor"]
        ours_out = fer_edge_outputs(clip, pipeline)
        theirs = [fer_run(clip, fer_detector, args.seconds) for _ in range(max(1, args.fer_repeats))]
        theirs_cpu, theirs_out = statistics.median(cpu for cpu, _ in theirs), theirs[0][1]
        keyed = [fer_keyframes_run(clip, fer_detector, args.seconds) for _ in range(max(1, args.fer_repeats))]
        keyed_cpu = statistics.median(cpu for cpu, _ in keyed)
    ours_face = per_face(str(BUNDLED_MODEL), 1, 300)["p50"]
    theirs_face = fer_per_face_ms()
    print(f"video: {args.seconds:.0f} s of 1080p25 H.264, 1 s GOP, 2 faces; analysed at 1 Hz")
    print(f"{'second':>6}  {'fer-edge':<28} fer")
    for i in range(max(len(ours_out), len(theirs_out))):
        ours = ", ".join(ours_out[i]) if i < len(ours_out) else "-"
        theirs = ", ".join(theirs_out[i]) if i < len(theirs_out) else "-"
        print(f"{i:>6}  {ours:<28} {theirs}")
    print(
        f"CPU s per analysed second: fer-edge {ours_cpu:.4f} (key-frame decoding alone "
        f"{keyframe_decode:.4f}, {ours_cpu / keyframe_decode:.2f}x)  fer {theirs_cpu:.4f}  "
        f"-> fer uses {theirs_cpu / ours_cpu:.1f}x the CPU"
    )
    print(
        f"steady state (fer-edge's one start-up whole-frame scan left out; fer has none): fer-edge "
        f"{ours_steady:.4f} ({ours_steady / keyframe_decode:.2f}x key-frame decoding)  "
        f"-> fer uses {theirs_cpu / ours_steady:.1f}x the CPU"
    )
    print(
        f"fer on key frames alone (the decoding a user can give it): {keyed_cpu:.4f}  "
        f"-> {keyed_cpu / ours_cpu:.1f}x fer-edge's CPU ({keyed_cpu / ours_steady:.1f}x its steady state)"
    )
    print(
        f"per face, 1 thread p50: fer-edge {ours_face:.3f} ms  fer {theirs_face:.3f} ms  "
        f"-> ratio {theirs_face / ours_face:.2f}"
    )
    if args.json:
        from fer_edge.atomic import write_json

        write_json(
            args.json,
            {
                "clip": {"seconds": args.seconds, "width": WIDTH, "height": HEIGHT, "fps": FPS, "gop_s": 1.0},
                "cpu_s_per_s": {
                    "fer_edge": round(ours_cpu, 4),
                    "fer_edge_steady": round(ours_steady, 4),
                    "keyframe_decode": round(keyframe_decode, 4),
                    "fer_all_frames": round(theirs_cpu, 4),
                    "fer_keyframes": round(keyed_cpu, 4),
                },
                "ratios": {
                    "fer_all_frames_vs_fer_edge": round(theirs_cpu / ours_cpu, 2),
                    "fer_keyframes_vs_fer_edge": round(keyed_cpu / ours_cpu, 2),
                    "fer_keyframes_vs_fer_edge_steady": round(keyed_cpu / ours_steady, 2),
                    "fer_edge_vs_keyframe_decode": round(ours_cpu / keyframe_decode, 2),
                },
                "per_face_ms_p50": {"fer_edge": ours_face, "fer": round(theirs_face, 4)},
                "outputs": {"fer_edge": ours_out, "fer_all_frames": theirs_out, "fer_keyframes": keyed[0][1]},
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
