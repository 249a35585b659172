"""Cameras that misbehave, with the real daemon, a real broker and real sockets: a server that
accepts and never answers, one that answers garbage, one that stalls mid-stream. Each time the
daemon keeps running, says what is happening on the camera's status topic, and the healthy
camera beside it keeps its one result a second with no gap in ``seq``."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_edge.daemon.democlip import DEMO_SPRITES, face_image, render_frame, write_clip
from tests.servers import (
    Mosquitto,
    MqttCollector,
    RtspServer,
    daemon_command,
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


class BadServer:
    """A TCP listener on a free loopback port that accepts and then says nothing, or garbage."""

    def __init__(self, garbage: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = int(self.sock.getsockname()[1])
        self.garbage = garbage
        self.accepted = 0
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        rng = np.random.default_rng(0)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)
            if self.garbage:
                with contextlib.suppress(OSError):
                    conn.sendall(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def _one_camera_config(
    tmp_path: Path,
    device_id: str,
    broker: int,
    model: Path,
    camera: dict[str, object],
    mqtt: dict[str, object] | None = None,
    **top: object,
) -> Path:
    """``config.yaml`` for a daemon with one camera (``camera``: its name and settings)."""
    import yaml

    document = {
        "device_id": device_id,
        "state_dir": str(tmp_path / "state"),
        "mqtt": {"host": "127.0.0.1", "port": broker, **(mqtt or {})},
        "model": {"path": str(model)},
        "cameras": camera,
        **top,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _config(tmp_path: Path, broker: int, model: Path, good: str, bad: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"""
device_id: faults
state_dir: {tmp_path / "state"}
mqtt:
  host: 127.0.0.1
  port: {broker}
  discovery: false
model:
  path: {model}
cameras:
  good:
    url: {good}
  bad:
    url: {bad}
    open_timeout_s: 2
    stall_timeout_s: 2
    backoff_initial_s: 0.5
    backoff_max_s: 1
""")
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path) as server:
        yield server


def _good_camera_keeps_time(collector: MqttCollector, count: int = 6) -> None:
    wait_for(lambda: len(collector.documents("/good/emotions")) >= count, 60, f"{count} results from good")
    seqs = [int(d["seq"]) for d in collector.documents("/good/emotions")]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


@pytest.mark.parametrize("garbage", [False, True], ids=["silent", "garbage"])
def test_a_server_that_never_answers_or_answers_garbage(
    tmp_path: Path, broker: Mosquitto, int8_model: Path, garbage: bool
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=4)
    bad = BadServer(garbage)
    collector = MqttCollector(broker.port, "fer-edge/#")
    log = tmp_path / "daemon.log"
    proc = start_daemon(
        _config(tmp_path, broker.port, int8_model, str(clip), f"rtsp://127.0.0.1:{bad.port}/cam"), log
    )
    try:
        _good_camera_keeps_time(collector)
        wait_for(lambda: bad.accepted >= 2, 60, "the bad camera to be retried")
        assert proc.poll() is None, log.read_text()[-2000:]
        statuses = [p.decode() for p in collector.payloads("/bad/status")]
        assert statuses and statuses[-1] == "reconnecting", statuses
        assert collector.documents("/bad/emotions") == []
    finally:
        code = stop_process(proc)
        bad.close()
        collector.close()
    assert code == 0
    assert "Traceback" not in log.read_text()


def test_a_camera_that_stalls_mid_stream_is_reported_and_comes_back(
    tmp_path: Path, broker: Mosquitto, int8_model: Path
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=4)
    face = face_image()
    frames = np.stack([render_frame(face, DEMO_SPRITES, i / 10, 640, 360) for i in range(20)])
    camera = RtspServer(frames, tmp_path, fps=10)
    camera.start()
    collector = MqttCollector(broker.port, "fer-edge/#")
    log = tmp_path / "daemon.log"
    proc = start_daemon(_config(tmp_path, broker.port, int8_model, str(clip), camera.url), log)
    try:
        wait_for(lambda: len(collector.documents("/bad/emotions")) >= 2, 60, "results from the camera")
        assert camera.proc is not None
        before = len(collector.payloads("/bad/status"))
        os.killpg(camera.proc.pid, signal.SIGSTOP)  # the server hangs, its socket stays open
        try:
            # told as a stall (stall_timeout_s 2) before the read times out (twice that) and the
            # reader reconnects: without the stall check, the first word would be "reconnecting"
            first = wait_for(lambda: collector.payloads("/bad/status")[before:], 30, "a stall reported")
            assert first[0] == b"stalled", first
            _good_camera_keeps_time(collector, count=len(collector.documents("/good/emotions")) + 3)
        finally:
            os.killpg(camera.proc.pid, signal.SIGCONT)
        results = len(collector.documents("/bad/emotions"))
        wait_for(
            lambda: len(collector.documents("/bad/emotions")) > results + 1, 60, "the camera to come back"
        )
        assert [p.decode() for p in collector.payloads("/bad/status")][-1] == "streaming"
        assert proc.poll() is None
    finally:
        code = stop_process(proc)
        camera.stop()
        collector.close()
    assert code == 0


def test_a_full_disk_under_the_spool_does_not_stop_the_results(
    tmp_path: Path, broker: Mosquitto, int8_model: Path
) -> None:
    """The daemon runs with a 96 KiB limit on the size of any file it writes (RLIMIT_FSIZE, what a
    full disk looks like to SQLite): the spool soon fails, and results still reach the broker,
    numbered without a gap, with the failures counted in stats."""
    import resource

    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=4)
    camera = {"cam": {"url": str(clip), "interval_s": 0.2}}
    mqtt = {"discovery": False, "stats_interval_s": 1}
    config = _one_camera_config(tmp_path, "full", broker.port, int8_model, camera, mqtt)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death
        resource.setrlimit(resource.RLIMIT_FSIZE, (96 * 1024, 96 * 1024))

    collector = MqttCollector(broker.port, "fer-edge/#")
    # a pipe, not a file: the limit would cut the daemon's own log short
    proc = subprocess.Popen(
        daemon_command(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=limit_file_size
    )
    output: list[bytes] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or []), daemon=True)
    reader.start()
    try:
        wait_for(
            lambda: any(d["spool"]["write_failures"] > 0 for d in collector.documents("full/stats")),
            120,
            "the spool to hit the limit",
        )
        count = len(collector.documents("/cam/emotions"))
        wait_for(
            lambda: len(collector.documents("/cam/emotions")) >= count + 10, 60, "results after the failure"
        )
        assert proc.poll() is None, b"".join(output)[-2000:]
        seqs = [int(d["seq"]) for d in collector.documents("/cam/emotions")]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    finally:
        code = stop_process(proc)
        reader.join(timeout=5)
        collector.close()
    text = b"".join(output).decode(errors="replace")
    assert code == 0, text[-2000:]
    assert text.count("cannot be written") == 1 and "Traceback" not in text


def test_a_killed_daemon_is_marked_offline_by_its_last_will_and_retained_topics_stay(
    tmp_path: Path, broker: Mosquitto, int8_model: Path
) -> None:
    """SIGKILL leaves no chance to say goodbye: the broker publishes the Last Will (offline).
    A subscriber arriving afterwards gets the retained topics (availability, status, state,
    discovery, stats), flagged retained, and no emotions document (those are not retained)."""
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=3)
    camera = {"door": {"url": str(clip)}}
    mqtt = {"stats_interval_s": 1}
    config = _one_camera_config(tmp_path, "will", broker.port, int8_model, camera, mqtt, http=None)
    live = MqttCollector(broker.port, "fer-edge/#")
    proc = start_daemon(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: len(live.documents("/door/emotions")) >= 2, 60, "results")
        wait_for(lambda: live.documents("will/stats"), 20, "stats")
        assert live.payloads("/availability")[-1] == b"online"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        wait_for(lambda: live.payloads("/availability")[-1] == b"offline", 30, "the Last Will")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        live.close()
    late = MqttCollector(broker.port, "#")
    try:
        wait_for(lambda: any(t.endswith("/availability") for t, _p, _r in late.messages), 10, "retained")
        wait_for(lambda: len({t for t, _p, _r in late.messages}) >= 7, 10, "every retained topic")
        by_topic = {t: (p, r) for t, p, r in late.messages}
    finally:
        late.close()
    assert by_topic["fer-edge/will/availability"] == (b"offline", True)
    assert by_topic["fer-edge/will/door/status"][1] is True
    assert json.loads(by_topic["fer-edge/will/door/state"][0])["faces"] >= 1
    stats = json.loads(by_topic["fer-edge/will/stats"][0])
    assert set(stats) >= {"ts", "uptime_s", "cameras", "spool", "publish_latency_ms"}
    door = stats["cameras"]["door"]
    assert set(door) >= {
        "status", "decode_fps", "ticks", "skipped_ticks", "decode", "faces", "full_scans",
        "scene_changes", "reconnects", "latency_ms",
    }  # fmt: skip
    assert set(stats["spool"]) == {"depth", "dropped", "recovered", "salvaged", "write_failures"}
    assert {t for t in by_topic if t.startswith("homeassistant/")} and all(r for _p, r in by_topic.values())
    assert not [t for t in by_topic if t.endswith("/emotions")]


def test_reconnect_waits_grow_and_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    """A camera whose server refuses: the waits between attempts double from backoff_initial_s
    and stop growing at backoff_max_s (each with +-20% jitter)."""
    import logging
    import random
    import re

    from fer_edge.daemon.config import CameraConfig
    from fer_edge.daemon.ingest import CameraReader
    from tests.servers import free_port

    config = CameraConfig(
        url=f"rtsp://127.0.0.1:{free_port()}/cam",  # nothing listens: refused at once
        backoff_initial_s=0.1,
        backoff_max_s=0.4,
        open_timeout_s=2,
    )
    reader = CameraReader("refused", config, rng=random.Random(0))
    with caplog.at_level(logging.INFO, logger="fer_edge.daemon.ingest"):
        reader.start()
        wait_for(lambda: reader.reconnects >= 6, 30, "six reconnect attempts")
        reader.stop()
        reader.join(timeout=10)
    waits = [float(m) for m in re.findall(r"reconnecting in ([0-9.]+) s", caplog.text)][:6]
    assert len(waits) == 6, caplog.text
    expected = [0.1, 0.2, 0.4, 0.4, 0.4, 0.4]
    for wait, base in zip(waits, expected, strict=True):
        assert 0.8 * base - 0.05 <= wait <= 1.2 * base + 0.05, (waits, expected)
    assert reader.status == "reconnecting"


def test_a_slow_analysis_gets_the_newest_frame_never_a_backlog(tmp_path: Path) -> None:
    """Analysis that takes longer than the interval: each take() gets the newest tick frame, the
    ones it replaced are counted as missed, and nothing queues up."""
    from fer_edge.daemon.config import CameraConfig
    from fer_edge.daemon.ingest import CameraReader

    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=6, fps=10, gop_s=0.2)
    reader = CameraReader("slow", CameraConfig(url=str(clip), interval_s=0.2, decode="all"))
    reader.start()
    try:
        wait_for(lambda: reader.take() is not None, 30, "a first frame")
        numbers = []
        for _ in range(4):
            # a slow analysis: the reader decodes ten more frames (a second, five tick frames)
            # before the next take
            target = reader.frames_decoded + 10
            wait_for(lambda t=target: reader.frames_decoded >= t, 30, "ten more frames")
            frame = reader.take()
            assert frame is not None
            numbers.append(frame.number)
            assert reader.take() is None  # one frame at a time, never a queue
    finally:
        reader.stop()
        reader.join(timeout=10)
    steps = [b - a for a, b in itertools.pairwise(numbers)]
    assert all(8 <= s <= 12 for s in steps), numbers  # 10 fps decoded: the newest, a second on
    assert reader.missed_ticks >= 12  # the replaced tick frames are counted


def test_sigterm_delivers_what_the_broker_has_not_acknowledged(
    tmp_path: Path, broker: Mosquitto, int8_model: Path
) -> None:
    """Results wait unacknowledged while the broker is frozen (SIGSTOP); SIGTERM arrives, and the
    broker thaws only once the daemon has begun to stop: the daemon waits for the acks and
    delivers them before it exits, leaving its spool empty."""
    import sqlite3
    import time

    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=3)
    state = tmp_path / "state"
    camera = {"door": {"url": str(clip)}}
    mqtt = {"discovery": False}
    config = _one_camera_config(tmp_path, "flush", broker.port, int8_model, camera, mqtt, http=None)

    def spooled() -> int:
        with sqlite3.connect(str(state / "spool.sqlite3"), timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    collector = MqttCollector(broker.port, "fer-edge/flush/door/emotions")
    proc = start_daemon(config, tmp_path / "daemon.log")
    try:
        wait_for(lambda: len(collector.documents("/emotions")) >= 2, 60, "results")
        assert broker.proc is not None
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: spooled() >= 3, 30, "results waiting for the frozen broker")
            proc.send_signal(signal.SIGTERM)
            log = tmp_path / "daemon.log"
            wait_for(
                lambda: "stopping: draining results" in log.read_text(), 30, "the daemon to begin stopping"
            )
            stopping = time.monotonic()
            # the fault itself: the broker stays frozen for the first second of the stop
            wait_for(lambda: time.monotonic() - stopping > 1.0, 5, "a second of the stop")
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert spooled() == 0, "SIGTERM left results in the spool"
    wait_for(
        lambda: (
            (seqs := sorted({int(d["seq"]) for d in collector.documents("/emotions")}))
            and seqs == list(range(seqs[0], seqs[-1] + 1))
            and len(seqs) >= 5
        ),
        20,
        "every result, without a gap",
    )
    collector.close()
