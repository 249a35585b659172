"""The daemon against real components on loopback: mosquitto, GStreamer's RTSP server, LiteRT.

Covers the README's daemon behaviour: ~1 Hz results with contiguous seq, faces where they were
drawn, reconnects, the spool across a broker outage and a restart, systemd notify, SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fer_edge.daemon.democlip import DEMO_SPRITES, face_boxes, face_image, render_frame
from fer_edge.daemon.payloads import parse_iso
from fer_edge.daemon.track import iou
from fer_edge.labels import LABELS
from fer_edge.models import BUNDLED_MODEL
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
    pytest.mark.skipif(not have_mosquitto(), reason="mosquitto is not installed (.ci/run installs it)"),
    pytest.mark.skipif(not have_rtsp_server(), reason="gst-rtsp-server/python3-gi not installed"),
]

FPS, WIDTH, HEIGHT, LOOP_S = 10, 640, 360, 6
TRUTH = [face_boxes(DEMO_SPRITES, i / FPS, WIDTH, HEIGHT) for i in range(LOOP_S * FPS)]


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    face = face_image()
    return np.stack([render_frame(face, DEMO_SPRITES, i / FPS, WIDTH, HEIGHT) for i in range(LOOP_S * FPS)])


@pytest.fixture
def model_path(int8_model: Path) -> Path:
    """The bundled model where it exists (it knows a smile); else the tiny test model."""
    return BUNDLED_MODEL if BUNDLED_MODEL.exists() else int8_model


class NotifySocket:
    """A bound datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def seen(self, needle: str) -> bool:
        return any(needle in m for m in list(self.messages))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class DaemonProcess:
    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.config, self.env, self.log = config, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(daemon_command(self.config), env=self.env, stdout=log, stderr=log)

    def terminate(self, timeout: float = 5.0) -> tuple[int, float]:
        assert self.proc is not None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout + 5)
        return code, time.monotonic() - start

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def stack(tmp_path: Path, frames: np.ndarray, model_path: Path) -> Iterator[dict[str, object]]:
    """mosquitto + two RTSP cameras + a daemon config pointing at them (daemon not started)."""
    broker = Mosquitto(tmp_path, persistent=True)
    cam_a, cam_b = RtspServer(frames, tmp_path, FPS), RtspServer(frames, tmp_path, FPS)
    for server in (broker, cam_a, cam_b):
        server.start()
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(f"""
device_id: test-box
state_dir: {state}
mqtt:
  host: 127.0.0.1
  port: {broker.port}
  stats_interval_s: 2
  ready_timeout_s: 3
model:
  path: {model_path}
cameras:
  door:
    url: rtsp://viewer:${{CAM_PASSWORD}}@127.0.0.1:{cam_a.port}/cam
    interval_s: 1.0
    stall_timeout_s: 3
    backoff_initial_s: 0.5
    backoff_max_s: 2
  hall:
    url: {cam_b.url_as("viewer", "hall-pw")}
    interval_s: 1.0
    keyframes_only: true
""")
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {
        **os.environ,
        "CAM_PASSWORD": "s3cret",
        "NOTIFY_SOCKET": str(notify.path),
        "WATCHDOG_USEC": "2000000",
        "PYTHONUNBUFFERED": "1",
    }
    collector = MqttCollector(broker.port, "#", session=f"collector-{broker.port}")
    wait_for(lambda: collector.client.is_connected(), 10, "the test subscriber to connect")
    daemon = DaemonProcess(config, env, tmp_path / "daemon.log")
    parts = {
        "broker": broker,
        "cam_a": cam_a,
        "cam_b": cam_b,
        "daemon": daemon,
        "collector": collector,
        "notify": notify,
        "state": state,
        "log": tmp_path / "daemon.log",
    }
    try:
        yield parts
    finally:
        daemon.kill()
        collector.close()
        notify.close()
        for server in (cam_a, cam_b, broker):
            server.stop()


def _emotions(collector: MqttCollector, camera: str) -> list[dict[str, object]]:
    return collector.documents(f"/{camera}/emotions")


def _seqs(collector: MqttCollector, camera: str) -> list[int]:
    return [int(d["seq"]) for d in _emotions(collector, camera)]  # type: ignore[arg-type]


def _status(collector: MqttCollector, camera: str) -> list[str]:
    return [p.decode() for p in collector.payloads(f"/{camera}/status")]


def _delivered_seqs(collector: MqttCollector, camera: str) -> list[int]:
    """Each result's ``seq`` once, in order of first delivery. A repeat (at-least-once delivery)
    is the same document again, so it is recognised by ``seq`` *and* ``ts``: a ``seq`` that comes
    back with another ``ts`` (numbering restarted) stays in the list and breaks the run check."""
    seen: set[tuple[int, str]] = set()
    out = []
    for doc in _emotions(collector, camera):
        key = (int(doc["seq"]), str(doc["ts"]))  # type: ignore[arg-type]
        if key not in seen:
            seen.add(key)
            out.append(key[0])
    return out


# Home Assistant's documented MQTT discovery keys (integrations/sensor.mqtt, binary_sensor.mqtt,
# and the shared device/origin blocks): a key outside them is ignored or refused by HA
HA_COMMON = {
    "availability", "availability_mode", "availability_template", "availability_topic", "device",
    "device_class", "enabled_by_default", "encoding", "entity_category", "entity_picture",
    "expire_after", "force_update", "icon", "json_attributes_template", "json_attributes_topic",
    "name", "object_id", "default_entity_id", "origin", "payload_available", "payload_not_available",
    "platform", "qos", "state_topic", "unique_id", "value_template",
}  # fmt: skip
HA_KEYS = {
    "sensor": HA_COMMON | {"last_reset_value_template", "options", "state_class",
                           "suggested_display_precision", "unit_of_measurement"},
    "binary_sensor": HA_COMMON | {"off_delay", "payload_off", "payload_on"},
    "event": (HA_COMMON - {"expire_after", "force_update"}) | {"event_types"},
}  # fmt: skip
HA_DEVICE_KEYS = {
    "configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model",
    "model_id", "name", "serial_number", "suggested_area", "sw_version", "via_device",
}  # fmt: skip
HA_SENSOR_CLASSES = {"enum", None}
HA_STATE_CLASSES = {"measurement", "total", "total_increasing", None}


def check_home_assistant_discovery(collector: MqttCollector, cameras: tuple[str, ...]) -> None:
    """Every discovery document on the broker against HA's documented schema: known keys only,
    an enum with its options, numeric measurements with a unit, one device for the box."""
    documents = {
        topic: json.loads(payload)
        for topic, payload, retained in collector.messages
        if topic.startswith("homeassistant/") and payload
    }
    components = {topic.split("/")[1] for topic in documents}
    assert components == {"sensor", "binary_sensor", "event"}, components
    names = set()
    for topic, doc in documents.items():
        component = topic.split("/")[1]
        assert set(doc) <= HA_KEYS[component], (topic, set(doc) - HA_KEYS[component])
        assert set(doc["device"]) <= HA_DEVICE_KEYS and doc["device"]["identifiers"] == ["fer_edge_test-box"]
        assert doc["availability_topic"] == "fer-edge/test-box/availability"
        assert doc["state_topic"].startswith("fer-edge/test-box/")
        assert doc.get("state_class") in HA_STATE_CLASSES
        if doc.get("device_class") == "enum":
            assert doc["options"] == [*LABELS, "none"]
        if doc.get("state_class") in ("measurement", "total_increasing"):
            assert doc["unit_of_measurement"]
        if component == "binary_sensor":
            assert doc["device_class"] == "connectivity"
        if component == "event":
            assert doc["event_types"] == ["start", "end"] and doc["state_topic"].endswith("/tracks")
        names.add(doc["name"])
    assert len({d["unique_id"] for d in documents.values()}) == len(documents)
    entities = ("emotion", "faces", "stream", "visits", "people today")
    expected = {f"{c} {what}" for c in cameras for what in entities}
    assert names == expected | {"spool depth"}, names


def test_end_to_end_results_notify_and_sigterm(stack: dict[str, object]) -> None:
    daemon, collector = stack["daemon"], stack["collector"]
    notify = stack["notify"]
    assert isinstance(daemon, DaemonProcess) and isinstance(collector, MqttCollector)
    assert isinstance(notify, NotifySocket)
    daemon.start()
    wait_for(lambda: notify.seen("READY=1"), 60, "READY=1 on the notify socket")
    # READY because the broker answered, not because the ready timeout ran out
    assert notify.seen("STATUS=analysing") and not notify.seen("broker unreachable")
    for camera in ("door", "hall"):
        wait_for(lambda c=camera: len(_emotions(collector, c)) >= 6, 60, f"6 results from {camera}")

    for camera in ("door", "hall"):
        docs = _emotions(collector, camera)
        seqs = [int(d["seq"]) for d in docs]  # type: ignore[arg-type]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        period = (parse_iso(docs[-1]["ts"]) - parse_iso(docs[0]["ts"])) / (len(docs) - 1)
        assert 0.8 <= period <= 1.3, period
        for doc in docs:
            assert doc["schema"] == 2 and doc["device"] == "test-box" and doc["camera"] == camera
            assert {"decode", "detect", "classify"} <= set(doc["timing_ms"])  # type: ignore[arg-type]
        faces = [f for d in docs for f in d["faces"]]  # type: ignore[union-attr]
        # both drawn faces are found in most ticks, each where one of them was drawn
        assert sum(len(d["faces"]) == 2 for d in docs) >= len(docs) - 1  # type: ignore[arg-type]
        for face in faces:
            best = max(iou(tuple(face["box"]), truth) for frame in TRUTH for truth in frame)
            assert best > 0.5, face["box"]
            assert abs(sum(face["scores"].values()) - 1.0) < 0.05
        if BUNDLED_MODEL.exists():
            happy = sum(f["emotion"] == "happy" for f in faces)
            assert happy >= 0.7 * len(faces), [f["emotion"] for f in faces]

    assert collector.payloads("/availability")[-1] == b"online"
    assert _status(collector, "door")[-1] == "streaming" and _status(collector, "hall")[-1] == "streaming"
    discovery = collector.documents("homeassistant/sensor/test-box_door_emotion/config")
    assert discovery and discovery[-1]["state_topic"] == "fer-edge/test-box/door/state"
    check_home_assistant_discovery(collector, ("door", "hall"))
    state = collector.documents("/door/state")[-1]
    assert state["faces"] == 2 and state["dominant"]
    assert state["people_today"] >= 2  # both faces' visits, counted since local midnight
    wait_for(lambda: collector.documents("test-box/stats"), 10, "a stats message")
    stats = collector.documents("test-box/stats")[-1]
    assert set(stats["cameras"]) == {"door", "hall"} and stats["spool"]["depth"] >= 0
    assert stats["spool"]["recovered"] == 0 and "scene_changes" in stats["cameras"]["door"]
    door = stats["cameras"]["door"]
    assert 1 <= door["full_scans"] <= door["ticks"]  # the first tick scans the whole frame
    wait_for(lambda: notify.seen("WATCHDOG=1"), 10, "WATCHDOG=1")

    code, took = daemon.terminate()
    assert code == 0 and took < 5.0
    wait_for(lambda: collector.payloads("/availability")[-1] == b"offline", 5, "availability offline")
    assert notify.seen("STOPPING=1")
    assert "connection lost" not in daemon.log.read_text()  # a normal stop is not an outage
    log = Path(str(stack["log"])).read_text()
    assert "s3cret" not in log and "hall-pw" not in log and "viewer:***@" in log  # passwords masked in logs


def test_rtsp_outage_reconnects_and_other_camera_continues(stack: dict[str, object]) -> None:
    daemon, collector, cam_a = stack["daemon"], stack["collector"], stack["cam_a"]
    assert isinstance(daemon, DaemonProcess) and isinstance(collector, MqttCollector)
    assert isinstance(cam_a, RtspServer)
    daemon.start()
    wait_for(
        lambda: len(_emotions(collector, "door")) >= 2 and len(_emotions(collector, "hall")) >= 2,
        60,
        "results from both cameras",
    )
    hall_before = len(_emotions(collector, "hall"))
    cam_a.stop()
    wait_for(lambda: "reconnecting" in _status(collector, "door"), 20, "door status reconnecting")
    door_seen = len(_emotions(collector, "door"))
    outage_start = time.monotonic()
    wait_for(lambda: time.monotonic() - outage_start > 3, 5, "a 3 s outage")
    cam_a.start()
    restarted = time.monotonic()
    wait_for(lambda: _status(collector, "door")[-1] == "streaming", 10, "door streaming again")
    wait_for(
        lambda: any(d["faces"] for d in _emotions(collector, "door")[door_seen:]),
        10,
        "door analysis to resume",
    )
    assert time.monotonic() - restarted < 10
    hall = _seqs(collector, "hall")
    assert hall == list(range(hall[0], hall[0] + len(hall)))
    # the hall camera kept its ~1 Hz pace through the door outage
    assert len(hall) - hall_before >= int(time.monotonic() - outage_start) - 2


def _spool_depth(state: Path) -> int:
    db = state / "spool.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(str(db), timeout=5) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0])


def test_broker_outage_and_restart_lose_nothing(stack: dict[str, object]) -> None:
    daemon, collector, broker = stack["daemon"], stack["collector"], stack["broker"]
    state = Path(str(stack["state"]))
    assert isinstance(daemon, DaemonProcess) and isinstance(collector, MqttCollector)
    assert isinstance(broker, Mosquitto)
    daemon.start()
    wait_for(lambda: len(_emotions(collector, "door")) >= 3, 60, "3 results before the outage")
    broker.stop(graceful=True)  # persistence keeps the test subscriber's session
    down = time.monotonic()
    wait_for(lambda: _spool_depth(state) >= 6, 30, "results to pile up in the spool")
    code, _ = daemon.terminate()
    assert code == 0
    spooled = _spool_depth(state)
    daemon.start()  # restarted while the broker is still down
    wait_for(lambda: _spool_depth(state) > spooled + 2, 60, "the restarted daemon to spool more")
    wait_for(lambda: time.monotonic() - down >= 20, 25, "a 20 s broker outage")
    broker.start()
    wait_for(lambda: _spool_depth(state) <= 2, 60, "the spool to drain")
    last_before = max(_seqs(collector, "door"))
    wait_for(lambda: max(_seqs(collector, "door")) >= last_before + 3, 30, "live results after")
    for camera in ("door", "hall"):
        order = _delivered_seqs(collector, camera)
        assert order == list(range(order[0], order[0] + len(order))), order
    # everything spooled across the outage and the restart arrived: at least what was counted
    assert len(_delivered_seqs(collector, "door")) + len(_delivered_seqs(collector, "hall")) >= spooled
    assert Path(str(stack["log"])).read_text().count("connected to MQTT broker") >= 2
