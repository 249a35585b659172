"""Cameras that misbehave, with the real daemon, a real broker and real sockets: a server that
accepts and never answers, one that answers garbage, one that stalls mid-stream. Each time the
daemon keeps running, says what is happening on the camera's status topic, and the healthy
camera beside it keeps its one result a second with no gap in ``seq``."""

from __future__ import annotations

import contextlib
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


def _run_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(daemon_command(config), stdout=out, stderr=out, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


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
    proc = _run_daemon(
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
        code = _stop(proc)
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
    proc = _run_daemon(_config(tmp_path, broker.port, int8_model, str(clip), camera.url), log)
    try:
        wait_for(lambda: len(collector.documents("/bad/emotions")) >= 2, 60, "results from the camera")
        assert camera.proc is not None
        os.killpg(camera.proc.pid, signal.SIGSTOP)  # the server hangs, its socket stays open
        try:
            wait_for(
                lambda: (
                    "stalled" in [p.decode() for p in collector.payloads("/bad/status")]
                    or "reconnecting" in [p.decode() for p in collector.payloads("/bad/status")]
                ),
                30,
                "the stall to be reported",
            )
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
        code = _stop(proc)
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
    config = tmp_path / "config.yaml"
    config.write_text(
        f"device_id: full\nstate_dir: {tmp_path / 'state'}\nmqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n"
        f"  discovery: false\n  stats_interval_s: 1\nmodel:\n  path: {int8_model}\n"
        f"cameras:\n  cam:\n    url: {clip}\n    interval_s: 0.2\n"
    )

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
        code = _stop(proc)
        reader.join(timeout=5)
        collector.close()
    text = b"".join(output).decode(errors="replace")
    assert code == 0, text[-2000:]
    assert text.count("cannot be written") == 1 and "Traceback" not in text
