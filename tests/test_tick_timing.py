"""One result per second whatever the camera's GOP, over real RTSP (GStreamer's server, x264)
with the real daemon and a real broker.

Five cameras: a 1 s GOP decoded key frames only (a 1 s tick used to beat against it and lose
up to a quarter of the seconds), a 2 s GOP on ``decode: auto`` (key frames alone cannot give
1 Hz: it must decode a run after each key frame), and the same 2 s GOP forced to key frames
only, which must say in stats that it gives one result per GOP; and x264's default encoding
(B-frames) with a 1 s GOP (key frames alone) and a 2 s GOP (a run after each key frame).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_edge.bench.h264 import write_h264
from fer_edge.daemon.democlip import DEMO_SPRITES, face_image, render_frame
from fer_edge.daemon.payloads import parse_iso
from tests.servers import (
    Mosquitto,
    MqttCollector,
    RtspServer,
    have_mosquitto,
    have_rtsp_server,
    start_daemon,
    stop_process,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (have_mosquitto() and have_rtsp_server()), reason="needs mosquitto and gst-rtsp-server"
    ),
]

FPS, WIDTH, HEIGHT = 10, 320, 180
CAMERA_FPS = 25  # the B-frame streams'
WARM_UP, MEASURED = 3, 16  # results skipped while the GOP is measured; results then timed


@pytest.fixture
def cameras(tmp_path: Path) -> Iterator[dict[str, RtspServer]]:
    face = face_image()
    small = [s.__class__(s.scale * 0.5, s.x / 2, s.y / 2, s.vx / 2, s.vy / 2) for s in DEMO_SPRITES]
    frames = np.stack([render_frame(face, small, i / FPS, WIDTH, HEIGHT) for i in range(4 * FPS)])
    # x264's defaults (three B-frames, B-pyramid) at a camera's 25 fps, served as encoded
    smooth = [render_frame(face, small, i / CAMERA_FPS, WIDTH, HEIGHT) for i in range(4 * CAMERA_FPS)]
    b_frames = {
        gop: write_h264(tmp_path / f"{gop}.h264", smooth, WIDTH, HEIGHT, CAMERA_FPS, gop_s=gop, b_frames=True)
        for gop in (1.0, 2.0)
    }
    servers = {
        "short_gop": RtspServer(frames, tmp_path, FPS, gop_s=1.0),
        "long_gop": RtspServer(frames, tmp_path, FPS, gop_s=2.0),
        "long_gop_keyframes": RtspServer(frames, tmp_path, FPS, gop_s=2.0),
        "bframes_short_gop": RtspServer(None, tmp_path, CAMERA_FPS, h264=b_frames[1.0]),
        "bframes_long_gop": RtspServer(None, tmp_path, CAMERA_FPS, h264=b_frames[2.0]),
    }
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def test_results_keep_time_on_short_and_long_gops(
    tmp_path: Path, cameras: dict[str, RtspServer], int8_model: Path
) -> None:
    decode = {"short_gop": "keyframes", "long_gop": "auto", "long_gop_keyframes": "keyframes"}
    decode |= {"bframes_short_gop": "auto", "bframes_long_gop": "auto"}
    config = tmp_path / "config.yaml"
    blocks = "".join(
        f"  {name}:\n    url: {server.url}\n    decode: {decode[name]}\n" for name, server in cameras.items()
    )
    with Mosquitto(tmp_path) as broker:
        config.write_text(
            f"device_id: timing\nstate_dir: {tmp_path / 'state'}\n"
            f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n  discovery: false\n"
            f"  stats_interval_s: 2\nmodel:\n  path: {int8_model}\ncameras:\n{blocks}"
        )
        collector = MqttCollector(broker.port, "fer-edge/#")
        log = tmp_path / "daemon.log"
        proc = start_daemon(config, log)
        try:
            for name in ("short_gop", "long_gop", "bframes_short_gop", "bframes_long_gop"):
                wait_for(
                    lambda n=name: len(collector.documents(f"/{n}/emotions")) >= WARM_UP + MEASURED,
                    120,
                    f"{WARM_UP + MEASURED} results from {name}",
                )
            stats = wait_for(
                lambda: [
                    d
                    for d in collector.documents("timing/stats")
                    if all(d["cameras"][n]["decode"]["gop_s"] for n in ("long_gop", "bframes_long_gop"))
                ],
                30,
                "stats with the measured GOP",
            )[-1]["cameras"]
            rates = {}
            for name in cameras:
                docs = collector.documents(f"/{name}/emotions")
                seqs = [int(d["seq"]) for d in docs]
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (name, seqs)
                times = [parse_iso(d["frame_ts"]) for d in docs[WARM_UP:]]
                rates[name] = (len(times) - 1) / (times[-1] - times[0])
                gaps = [b - a for a, b in itertools.pairwise(times)]
                if name != "long_gop_keyframes":
                    assert max(gaps) < 1.5, (name, gaps)  # never a second without a result
        finally:
            code = stop_process(proc)
            collector.close()
    assert code == 0, log.read_text()[-2000:]
    assert 0.95 <= rates["short_gop"] <= 1.05, rates
    assert 0.95 <= rates["long_gop"] <= 1.05, rates
    assert 0.95 <= rates["bframes_short_gop"] <= 1.05, rates
    assert 0.95 <= rates["bframes_long_gop"] <= 1.05, rates
    assert 0.4 <= rates["long_gop_keyframes"] <= 0.6, rates  # one result per 2 s GOP, as configured

    assert stats["short_gop"]["decode"]["doing"] == "keyframes"
    assert stats["short_gop"]["decode"]["gop_s"] == pytest.approx(1.0, abs=0.05)
    assert stats["long_gop"]["decode"] == {
        **stats["long_gop"]["decode"],
        "mode": "auto",
        "doing": "partial",
    }
    assert stats["long_gop"]["decode"]["gop_s"] == pytest.approx(2.0, abs=0.05)
    # a run after each key frame, not every frame (nor key frames alone)
    assert 0.3 < stats["long_gop"]["decode"]["decoded_fraction"] < 0.8, stats["long_gop"]
    assert stats["short_gop"]["skipped_ticks"] == 0 and stats["long_gop"]["skipped_ticks"] <= 1
    assert stats["long_gop_keyframes"]["skipped_ticks"] >= 3  # it says it misses seconds
    # B-frames change nothing: a 1 s GOP is analysed from key frames alone, a 2 s GOP from a run
    # after each key frame, and the pictures are whole (both faces found in nearly every result)
    bframes = stats["bframes_short_gop"]["decode"]
    assert bframes["mode"] == "auto" and bframes["doing"] == "keyframes", bframes
    assert bframes["decoded_fraction"] <= 0.05 and "key frames alone" in bframes["why"], bframes
    assert stats["bframes_long_gop"]["decode"]["doing"] == "partial"
    assert 0.3 < stats["bframes_long_gop"]["decode"]["decoded_fraction"] < 0.8
    for name in ("bframes_short_gop", "bframes_long_gop"):
        docs = collector.documents(f"/{name}/emotions")[WARM_UP:]
        assert sum(len(d["faces"]) == 2 for d in docs) >= 0.8 * len(docs), name
