"""Real servers on free loopback ports, for the integration tests and the stream benchmarks:
mosquitto, GStreamer's RTSP server, an MQTT collector and the daemon's command line.

Each is a context manager that starts the process, waits until it accepts connections (no fixed
sleeps) and kills it on exit; ``stop()``/``start()`` let a test take it down and bring it back on
the same port.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The RTSP server runs under a Python that has GStreamer's bindings (python3-gi), which a venv
# usually lacks: FER_EDGE_GI_PYTHON names one, else the first of these that imports gi.
GI_PYTHON_CANDIDATES = ("python3", "/usr/bin/python3")
RTSP_SERVE = Path(__file__).resolve().parent / "rtsp_serve.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def port_free(port: int) -> bool:
    """Whether nothing is bound to ``port`` on loopback right now."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def have_mosquitto() -> bool:
    return shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()


_GI_PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
    "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
    "assert Gst.ElementFactory.find('x264enc') and Gst.ElementFactory.find('rtph264pay')"
)
_gi_python: list[str | None] = []  # found once per process


def gi_python() -> str | None:
    """A Python that can run the RTSP server (GStreamer, its RTSP server and x264 through gi), or
    None. ``FER_EDGE_GI_PYTHON`` wins when set; otherwise this Python, then ``python3`` on PATH,
    then Debian's."""
    if not _gi_python:
        named = os.environ.get("FER_EDGE_GI_PYTHON")
        candidates = [named] if named else [sys.executable, *GI_PYTHON_CANDIDATES]
        found = None
        for candidate in candidates:
            path = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
            if path and subprocess.run([path, "-c", _GI_PROBE], capture_output=True).returncode == 0:
                found = path
                break
        _gi_python.append(found)
    return _gi_python[0]


def have_rtsp_server() -> bool:
    return gi_python() is not None


class _Process:
    port: int

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._ever_started = False

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write whatever the command reads that names ``self.port`` (nothing by default)."""

    def start(self, timeout: float = 20.0) -> None:
        """Start and wait until the port accepts connections. The first start tries up to three
        free ports: another process may take a port between :func:`free_port` and the bind.
        A restart keeps its port (tests bring a server back where clients expect it)."""
        attempts = 1 if self._ever_started else 3
        for attempt in range(attempts):
            if not self._ever_started and not port_free(self.port):
                self.port = free_port()  # taken since it was picked: pick again, just before use
            self._prepare()
            proc = self.proc = subprocess.Popen(
                self._command(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            wait_for(
                lambda p=proc: port_open(self.port) or p.poll() is not None,
                timeout,
                f"{type(self).__name__} on port {self.port}",
            )
            if proc.poll() is None:
                self._ever_started = True
                return
            if attempt + 1 < attempts:
                self.port = free_port()
        raise RuntimeError(f"{type(self).__name__} exited with {self.proc.returncode}")

    def stop(self, graceful: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        wait_for(lambda: not port_open(self.port), 10, f"port {self.port} to close")

    def __enter__(self) -> _Process:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class Mosquitto(_Process):
    """mosquitto on 127.0.0.1:port, anonymous; with persistence, sessions survive a graceful stop."""

    def __init__(self, workdir: Path, persistent: bool = False, user: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.port = free_port()
        self.conf = workdir / f"mosquitto-{self.port}.conf"
        lines = [f"allow_anonymous {'false' if user else 'true'}"]
        if os.geteuid() == 0:  # keep root: the test's files are not readable by user mosquitto
            lines.append("user root")
        if user:
            passwords = workdir / f"mosquitto-{self.port}.passwd"
            passwords.touch(mode=0o600)
            tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
            subprocess.run([tool, "-b", str(passwords), *user], check=True, capture_output=True)
            lines.append(f"password_file {passwords}")
        if persistent:
            store = workdir / f"mosquitto-{self.port}"
            store.mkdir(exist_ok=True)
            lines += ["persistence true", f"persistence_location {store}/"]
        else:
            lines.append("persistence false")
        self._settings = lines

    def _prepare(self) -> None:
        self.conf.write_text("\n".join([f"listener {self.port} 127.0.0.1", *self._settings]) + "\n")

    def _command(self) -> list[str]:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        return [binary, "-c", str(self.conf)]


class RtspServer(_Process):
    """GStreamer RTSP server at rtsp://127.0.0.1:port/cam, looping either pre-rendered BGR
    ``frames`` (encoded live with x264) or an H.264 Annex-B file ``h264`` written by
    :func:`~fer_edge.bench.h264.write_h264` (served as encoded, no re-encoding)."""

    def __init__(
        self,
        frames: np.ndarray | None,
        workdir: Path,
        fps: int = 10,
        h264: Path | None = None,
        gop_s: float = 1.0,
        unshared: bool = False,
    ) -> None:
        super().__init__()
        self.port = free_port()
        self.fps = fps
        self.unshared = unshared  # each client its own stream from a random frame (many cameras)
        self.gop_s = gop_s  # raw frames: seconds between key frames (an h264 file has its own)
        if h264 is not None:
            self.source, self.width, self.height = h264, 0, 0
        elif frames is not None:
            self.height, self.width = frames.shape[1:3]
            self.source = workdir / f"frames-{self.port}.raw"
            self.source.write_bytes(np.ascontiguousarray(frames).tobytes())
        else:
            raise ValueError("RtspServer needs frames or an h264 file")

    @property
    def url(self) -> str:
        return self.url_as()

    def url_as(self, user: str | None = None, password: str | None = None) -> str:
        """The stream's URL, with ``user:password@`` when given (the server accepts any: a test
        uses them to see that the daemon masks credentials in its logs)."""
        credentials = f"{user}:{password}@" if user else ""
        return f"rtsp://{credentials}127.0.0.1:{self.port}/cam"

    def _command(self) -> list[str]:
        python = gi_python()
        if python is None:
            raise RuntimeError("no Python with GStreamer's RTSP server (python3-gi); set FER_EDGE_GI_PYTHON")
        return [
            python,
            str(RTSP_SERVE),
            str(self.port),
            str(self.source),
            str(self.width),
            str(self.height),
            str(self.fps),
            str(self.gop_s),
            *(["unshared"] if self.unshared else []),
        ]


class MqttCollector:
    """Subscribes to ``topic`` and keeps every message (topic, payload, retained) in order."""

    def __init__(self, port: int, topic: str, session: str | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        if session:  # a persistent session: the broker queues QoS-1 messages while we are away
            self.client = mqtt.Client(
                mqtt.CallbackAPIVersion.VERSION2,
                client_id=session,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
        else:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))

    def payloads(self, suffix: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(suffix)]

    def documents(self, suffix: str) -> list[dict[str, Any]]:
        return [json.loads(p) for p in self.payloads(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """Stop a daemon as systemd does: SIGTERM, then SIGKILL to its process group if it has not
    exited within ``timeout``; returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=10)


def daemon_command(config: Path) -> list[str]:
    """The daemon as the systemd unit starts it, under this Python."""
    return [sys.executable, "-m", "fer_edge.cli", "run", "--config", str(config)]
