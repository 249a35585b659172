"""``fer-edge bench --quick`` reports every figure it promises, each a positive number, and the
ratios it exists to show, measured in the one run: bounds about twice the ratios measured on a
2-core box (a regression that doubles the work a ratio measures fails them)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import RtspServer, have_rtsp_server


def _numbers(node: object, path: str = "") -> list[tuple[str, float]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _numbers(value, f"{path}.{key}")]
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return [(path, float(node))]
    return []


def test_bench_quick_json_has_every_field() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fer_edge.cli", "-q", "bench", "--quick", "--json", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"p50", "p95"} <= set(report["per_face_ms"])
    assert report["per_face_ms_n_threads"]["threads"] >= 1
    for detector in ("blazeface", "haar"):
        for resolution in ("720p", "1080p"):
            assert set(report["per_frame_ms"][detector][resolution]) == {"0", "1", "4"}
    assert report["stream_1080p25"]["detector"] == "blazeface"  # the default detector
    analysing = [
        "pipeline_all_frames_1hz",
        "pipeline_keyframes_1hz",
        "pipeline_keyframes_1hz_full_scans",
        "pipeline_keyframes_1hz_haar",
    ]
    # every pass that analyses also reports its steady state (from the end of its first tick)
    assert set(report["stream_1080p25"]["cpu_s_per_s"]) == {
        "decode_all",
        "decode_keyframes",
        *analysing,
        *(f"{name}_steady" for name in analysing),
    }
    assert report["peak_rss_mb"] > 0
    numbers = _numbers(report)
    assert len(numbers) >= 25
    assert all(value > 0 for _, value in numbers), [p for p, v in numbers if v <= 0]
    cpu = report["stream_1080p25"]["cpu_s_per_s"]
    # a 1 s GOP at 25 fps: key frames alone are 1 frame in 25 (plus demuxing every packet);
    # measured 0.11-0.15 of decoding every frame
    assert cpu["decode_keyframes"] <= 0.25 * cpu["decode_all"], cpu
    # the planner searches known faces and motion, not the frame: measured 0.09-0.11 of scanning
    # the whole frame every tick, steady state
    assert cpu["pipeline_keyframes_1hz_steady"] <= 0.2 * cpu["pipeline_keyframes_1hz_full_scans_steady"], cpu
    # analysing key frames at 1 Hz costs less than decoding every frame does alone
    assert cpu["pipeline_keyframes_1hz_steady"] < cpu["decode_all"], cpu


@pytest.mark.skipif(not have_rtsp_server(), reason="needs gst-rtsp-server")
def test_the_keyframe_floor_is_the_median_of_processes_measuring_one_window(tmp_path: Path) -> None:
    """The multi-camera benchmark's baseline: child processes that receive a real RTSP stream
    and decode its key frames alone, over the window given in the shared monotonic clock."""
    from fer_edge.bench.h264 import write_h264
    from fer_edge.bench.multicam import FLOOR_PROCESSES, KeyframeFloor
    from fer_edge.daemon.democlip import DEMO_SPRITES, face_image, render_frame

    face = face_image()
    frames = (render_frame(face, DEMO_SPRITES, i / 10, 640, 360) for i in range(40))
    clip = write_h264(tmp_path / "clip.h264", frames, 640, 360, 10, gop_s=1.0, b_frames=True)
    with RtspServer(None, tmp_path, fps=10, h264=clip, unshared=True) as rtsp:
        started = time.monotonic()
        floor = KeyframeFloor(rtsp.url, started + 2.0, 3.0)
        try:
            median = floor.result()
        finally:
            floor.stop()
    assert len(floor.figures) == FLOOR_PROCESSES
    assert all(0 < figure < 1 for figure in floor.figures), floor.figures  # a fraction of a core
    assert sorted(floor.figures)[FLOOR_PROCESSES // 2] == median
    assert time.monotonic() - started >= 5.0  # it waited for its window to pass
