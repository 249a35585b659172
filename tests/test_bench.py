"""``fer-edge bench --quick`` reports every figure it promises, each a positive number."""

from __future__ import annotations

import json
import subprocess
import sys


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
    # key-frame-only decoding must be the cheaper way to analyse at 1 Hz
    cpu = report["stream_1080p25"]["cpu_s_per_s"]
    assert cpu["decode_keyframes"] < cpu["decode_all"]
