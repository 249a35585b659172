"""MQTT 3.1.1 with username/password against a real mosquitto; a file as the camera source."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from fer_edge.daemon.democlip import DEMO_SPRITES, write_clip
from tests.servers import Mosquitto, MqttCollector, daemon_command, free_port, have_mosquitto, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not have_mosquitto(), reason="mosquitto is not installed"),
]


def _config(tmp_path: Path, port: int, model: Path, clip: Path, metrics_port: int) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"""
device_id: auth-box
state_dir: {tmp_path / "state"}
metrics_port: {metrics_port}
log_format: json
mqtt:
  host: 127.0.0.1
  port: {port}
  protocol: "3.1.1"
  username: fer
  password: ${{FER_MQTT_PASSWORD}}
  discovery: false
model:
  path: {model}
cameras:
  clip:
    url: {clip}
""")
    return path


@pytest.mark.parametrize(("password", "delivered"), [("right-one", True), ("wrong-one", False)])
def test_username_password_over_mqtt_311(
    tmp_path: Path, int8_model: Path, password: str, delivered: bool
) -> None:
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=4)
    with Mosquitto(tmp_path, user=("fer", "right-one")) as broker:
        reader = MqttCollector(broker.port, "#")
        reader.client.username_pw_set("fer", "right-one")
        wait_for(lambda: reader.client.is_connected(), 10, "the test subscriber")
        env = {**os.environ, "FER_MQTT_PASSWORD": password}
        log = tmp_path / "daemon.log"
        metrics_port = free_port()
        config = _config(tmp_path, broker.port, int8_model, clip, metrics_port)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                daemon_command(config),
                env=env,
                stdout=out,
                stderr=out,
            )
        try:
            if delivered:
                wait_for(lambda: len(reader.documents("/clip/emotions")) >= 2, 60, "two results")
                assert reader.payloads("auth-box/availability")[-1] == b"online"
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
                ticks = [
                    line
                    for line in metrics.splitlines()
                    if line.startswith('fer_edge_ticks_total{camera="clip"}')
                ]
                assert ticks and float(ticks[0].split()[-1]) >= 2
                logged = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
                assert any("connected to MQTT broker" in entry["msg"] for entry in logged)
            else:
                wait_for(lambda: "refused the connection" in log.read_text(), 60, "a refusal")
                assert reader.documents("/clip/emotions") == []
        finally:
            proc.terminate()
            assert proc.wait(timeout=10) == 0
            reader.close()


def _daemon_without_broker(
    tmp_path: Path, model: Path, host: str, port: int, *extra: str
) -> tuple[subprocess.Popen[bytes], Path]:
    """The daemon on a clip with a broker address where nothing answers; its log file."""
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=3)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nmqtt:\n  host: {host}\n  port: {port}\n  ready_timeout_s: 0\n"
        f"model:\n  path: {model}\ncameras:\n  clip:\n    url: {clip}\n"
    )
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*daemon_command(config), *extra], stdout=out, stderr=out)
    return proc, log


@pytest.mark.parametrize(
    ("host", "reason"),
    [("127.0.0.1", "refused"), ("no-such-broker.invalid", "cannot resolve no-such-broker.invalid")],
)
def test_an_unreachable_broker_is_named_once_with_its_reason(
    tmp_path: Path, int8_model: Path, host: str, reason: str
) -> None:
    """Not paho's 'Client is not connected' over and over: one line per outage that names the
    broker and why, while results are spooled."""
    port = free_port()  # nothing listens there
    proc, log = _daemon_without_broker(tmp_path, int8_model, host, port, "--duration", "8")
    try:
        assert proc.wait(timeout=90) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [
        line for line in log.read_text().splitlines() if "daemon.publish" in line and "unreachable" in line
    ]
    assert len(lines) == 1, log.read_text()[-2000:]
    assert f"{host}:{port}" in lines[0] and reason in lines[0].lower()
    assert "Client is not connected" not in log.read_text()


def _catches_sigterm(pid: int) -> bool:
    """Whether the process has a SIGTERM handler installed (Linux /proc)."""
    import signal

    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_sigterm_while_models_load_still_exits_0(tmp_path: Path, int8_model: Path) -> None:
    """systemd may stop the unit at any moment: a SIGTERM that arrives before the daemon is up
    (while it imports and loads its models) ends in an orderly stop, exit 0, not a kill."""
    import signal

    proc, log = _daemon_without_broker(tmp_path, int8_model, "127.0.0.1", free_port())
    try:
        wait_for(lambda: _catches_sigterm(proc.pid) or proc.poll() is not None, 30, "a SIGTERM handler")
        started = "analysing" in log.read_text() or "streaming" in log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-1500:]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not started  # the signal did arrive before the cameras were up
    assert "Traceback" not in log.read_text()


def test_retained_topics_of_a_camera_that_left_the_config_are_cleared(
    tmp_path: Path, int8_model: Path
) -> None:
    """A camera removed from the config must not live on in retained status/state/discovery."""
    clip = write_clip(tmp_path / "clip.mp4", DEMO_SPRITES, seconds=3)

    def run(broker_port: int, cameras: list[str]) -> None:
        config = tmp_path / "config.yaml"
        config.write_text(
            f"device_id: box\nstate_dir: {tmp_path / 'state'}\nmqtt:\n  host: 127.0.0.1\n"
            f"  port: {broker_port}\nmodel:\n  path: {int8_model}\ncameras:\n"
            + "".join(f"  {name}:\n    url: {clip}\n" for name in cameras)
        )
        with open(tmp_path / f"daemon-{len(cameras)}.log", "wb") as out:
            proc = subprocess.Popen([*daemon_command(config), "--duration", "5"], stdout=out, stderr=out)
        assert proc.wait(timeout=90) == 0

    def retained(broker_port: int) -> set[str]:
        reader = MqttCollector(broker_port, "#")
        try:
            wait_for(
                lambda: any(t.endswith("/availability") for t, _p, _r in reader.messages), 10, "retained"
            )
            return {t for t, p, r in reader.messages if r and p}
        finally:
            reader.close()

    with Mosquitto(tmp_path) as broker:
        run(broker.port, ["door", "hall"])
        before = retained(broker.port)
        assert {"fer-edge/box/door/status", "fer-edge/box/hall/status"} <= before
        assert {
            "homeassistant/sensor/box_hall_emotion/config",
            "homeassistant/sensor/box_hall_faces/config",
            "homeassistant/binary_sensor/box_hall_stream/config",
        } <= before
        run(broker.port, ["door"])
        after = retained(broker.port)
    assert "fer-edge/box/door/status" in after
    assert not {t for t in after if "hall" in t}, after


def test_a_loopback_server_whose_port_was_taken_starts_on_another(tmp_path: Path) -> None:
    """free_port() is picked before the server binds; if someone takes the port meanwhile the
    first start moves to a fresh one instead of failing the test that needed a broker."""
    import socket

    broker = Mosquitto(tmp_path)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", broker.port))
    squatter.listen(1)
    taken = broker.port
    try:
        broker.start()
        try:
            assert broker.port != taken
            reader = MqttCollector(broker.port, "#")
            wait_for(lambda: reader.client.is_connected(), 10, "a client on the new port")
            reader.close()
        finally:
            broker.stop()
    finally:
        squatter.close()
