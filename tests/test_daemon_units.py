"""Daemon parts that need no server: config validation, secrets, spool, tracker, notify, masking."""

from __future__ import annotations

import json
import logging
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_edge.cli import main
from fer_edge.daemon.config_file import load_config
from fer_edge.daemon.payloads import Topics, discovery_payload, iso_ms, state_payload
from fer_edge.daemon.pipeline import Analysis, FaceResult
from fer_edge.daemon.redact import mask_url
from fer_edge.daemon.service import MaskSecrets, Watchdog, sd_notify
from fer_edge.daemon.spool import Spool
from fer_edge.daemon.track import FaceTracker, iou
from fer_edge.errors import ConfigError

GOOD = """\
mqtt:
  host: 127.0.0.1
cameras:
  door:
    url: rtsp://viewer:${CAM_PASSWORD}@192.0.2.10/stream1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_good_config_gets_defaults_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "pa55")
    config = load_config(_write(tmp_path, GOOD))
    assert config.cameras["door"].url == "rtsp://viewer:pa55@192.0.2.10/stream1"
    assert config.mqtt.port == 1883 and config.mqtt.base_topic == "fer-edge"
    assert config.detector.kind == "blazeface" and config.model.delegate == "cpu"
    assert config.cameras["door"].interval_s == 1.0


def test_secrets_from_systemd_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAM_PASSWORD", raising=False)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "CAM_PASSWORD").write_text("from-credential\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert "from-credential@" in load_config(_write(tmp_path, GOOD)).cameras["door"].url


BAD_CONFIGS = [
    (GOOD + "    enabled: false\n", r"config\.yaml:\d+: cameras: .*every camera has enabled: false"),
    (
        GOOD.replace("rtsp://viewer:${CAM_PASSWORD}@192.0.2.10/stream1", '""'),
        r"cameras\.door\.url: .*at least 1",
    ),
    (
        GOOD + "  door:\n    url: rtsp://192.0.2.11/other\n",
        r"config\.yaml:6: duplicate key 'door' \(first at line 4\)",
    ),
    (GOOD + "mqtt:\n  host: other\n", r"config\.yaml:6: duplicate key 'mqtt' \(first at line 1\)"),
    (GOOD + "    colour: blue\n", r"config\.yaml:6: cameras\.door\.colour: unknown key"),
    (
        GOOD.replace("host: 127.0.0.1", "host: 127.0.0.1\n  port: many"),
        r"config\.yaml:3: mqtt\.port: .*integer.*'many'",
    ),
    (
        "mqtt:\n  host: h\ncameras:\n  door:\n    interval_s: 1\n",
        r"config\.yaml:5: cameras\.door\.url: required key is missing",
    ),
    (
        GOOD + "model:\n  path: /nonexistent/model.tflite\n",
        r"config\.yaml:7: model: model file /nonexistent/model\.tflite does not exist",
    ),
    ("mqtt:\n  host: h\ncameras: {}\n", r"cameras: .*at least 1"),
    ("mqtt: [\n", r"config\.yaml:\d+: invalid YAML"),
    (
        GOOD.replace("${CAM_PASSWORD}", "${NOT_SET_ANYWHERE}"),
        r"config\.yaml:5: cameras\.door\.url: \$\{NOT_SET_ANYWHERE\} is not set",
    ),
    (
        GOOD + "detector:\n  kind: blazeface\n  model_path: /nowhere/face.tflite\n",
        r"detector: model_path /nowhere/face.tflite does not exist",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_configs_name_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, text))


@pytest.mark.parametrize("text", [BAD_CONFIGS[0][0], BAD_CONFIGS[1][0], BAD_CONFIGS[2][0], BAD_CONFIGS[3][0]])
def test_cli_bad_config_exits_78_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    assert main(["run", "--config", str(_write(tmp_path, text))]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config.yaml:" in err[0]


def test_cli_corrupt_model_exits_78(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"junk")
    model.with_suffix(".json").write_text(json.dumps({"labels": ["happy", "sad"]}))
    config = _write(tmp_path, GOOD + f"model:\n  path: {model}\nstate_dir: {tmp_path}/s\n")
    assert main(["run", "--config", str(config)]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.path" in err[0] and "not a loadable TFLite model" in err[0]


def test_a_config_that_is_not_utf8_is_one_line_exit_78(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(bytes(range(128, 256)) * 4)
    for extra in ([], ["--check"]):
        assert main(["run", "--config", str(path), *extra]) == 78
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "not a UTF-8 text file" in err[0]


def test_a_state_dir_that_cannot_be_made_is_one_line_exit_73(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = _write(tmp_path, GOOD + f"state_dir: {blocker}/state\n")
    for extra in (["--check"], ["--duration", "1"]):
        assert main(["run", "--config", str(config), *extra]) == 73
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "state_dir" in err[0] and str(blocker) in err[0]
    assert blocker.read_text() == "not a folder"


def test_a_delegate_that_cannot_load_without_fallback_exits_69(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The documented code for a missing runtime or delegate, not 78, through the command line."""
    monkeypatch.setenv("CAM_PASSWORD", "x")
    config = _write(tmp_path, GOOD + "model:\n  delegate: edgetpu\n  fallback_to_cpu: false\n")
    for extra in (["--check"], ["--duration", "1"]):
        assert main(["run", "--config", str(config), *extra]) == 69
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "model.delegate" in err[0]


def test_check_validates_and_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAM_PASSWORD", "x")
    assert main(["run", "--config", str(_write(tmp_path, GOOD)), "--check"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["run", "--config", str(tmp_path / "missing.yaml")]) == 66


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ("model:\n  path: {junk}\n", "model.path"),
        ("detector:\n  framing_path: {junk}\n", "detector"),
        ("detector:\n  model_path: {junk}\n", "detector"),
    ],
)
def test_check_loads_the_model_and_detector_files_as_run_does(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    section: str,
    key: str,
) -> None:
    """A file that exists but does not load fails ``--check`` (the unit's ExecStartPre), with one
    line naming the key, instead of passing it and failing the start."""
    monkeypatch.setenv("CAM_PASSWORD", "x")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00not a model or framing file")
    config = _write(tmp_path, GOOD + section.format(junk=junk))
    assert main(["run", "--config", str(config), "--check"]) == 78
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"error: {key}" in err[0]


def test_spool_is_fifo_bounded_and_survives_reopen(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_messages=10)
    ids = [spool.append("t", f"m{i}".encode()) for i in range(15)]
    assert spool.depth == 10 and spool.dropped == 5
    pending = spool.pending()
    assert [m.payload for m in pending] == [f"m{i}".encode() for i in range(5, 15)]
    spool.ack(ids[5])
    assert spool.pending(limit=1)[0].payload == b"m6"
    assert [spool.next_seq("door") for _ in range(3)] == [1, 2, 3]
    spool.close()
    reopened = Spool(tmp_path / "s.db", max_messages=10)
    assert reopened.depth == 9 and reopened.dropped == 5 and reopened.next_seq("door") == 4
    assert reopened.next_seq("hall") == 1


def test_a_spool_of_random_bytes_is_set_aside_and_a_fresh_one_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.sqlite3"
    junk = np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    path.write_bytes(junk)
    with caplog.at_level(logging.ERROR):
        spool = Spool(path)
    assert spool.recovered == 1 and spool.salvaged == 0 and spool.depth == 0
    aside = list(tmp_path.glob("spool.sqlite3.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == junk  # kept, untouched
    spool.append("t", b"x")
    assert spool.pending(limit=1)[0].payload == b"x"
    assert sum("corrupt" in r.getMessage() for r in caplog.records) == 1


def test_a_damaged_spool_gives_back_what_still_reads(tmp_path: Path) -> None:
    """A real spool with a page overwritten in the middle: the rows before the damage come back
    in order, the daemon's counters too where they read, and the spool works on."""
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    payloads = [f"{i:04d}".encode() * 256 for i in range(60)]  # 1 KiB each: many pages
    for p in payloads:
        spool.append("fer-edge/box/door/emotions", p)
    assert [spool.next_seq("door") for _ in range(3)] == [1, 2, 3]
    spool.close()
    data = bytearray(path.read_bytes())
    page = 4096
    assert len(data) > 12 * page
    data[8 * page : 9 * page] = np.random.default_rng(1).integers(0, 256, page, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    reopened = Spool(path)
    assert reopened.recovered == 1 and 0 < reopened.salvaged < len(payloads)
    got = [m.payload for m in reopened.pending(limit=1000)]
    assert got == payloads[: len(got)]  # a prefix, in order
    reopened.append("t", b"after")
    assert reopened.pending(after_id=0, limit=1000)[-1].payload == b"after"
    assert reopened.next_seq("door") in (1, 4)  # continues if its page read, else starts over


def test_tracker_keeps_ids_for_moving_faces_and_smooths() -> None:
    tracker = FaceTracker(smoothing=0.5)
    one_hot = np.eye(7, dtype=np.float32)
    first = tracker.update([(100, 100, 80, 80), (400, 100, 60, 60)], one_hot[[3, 4]])
    # a second later each face moved most of a box width: same ids, not swapped
    second = tracker.update([(410, 130, 60, 60), (160, 120, 80, 80)], one_hot[[4, 0]])
    assert [t.id for t in second] == [first[1].id, first[0].id]
    assert np.allclose(second[1].scores, 0.5 * one_hot[3] + 0.5 * one_hot[0])
    third = tracker.update([(900, 600, 80, 80)], one_hot[[6]])
    assert third[0].id not in {first[0].id, first[1].id}


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rtsp://admin:hunter2@10.0.0.1/s", "rtsp://admin:***@10.0.0.1/s"),
        ("open rtsp://u:p@h:554/a failed", "open rtsp://u:***@h:554/a failed"),
        ("rtsp://10.0.0.1/s", "rtsp://10.0.0.1/s"),
        ("rtsp://user:p@ss5@host:554/s", "rtsp://user:***@host:554/s"),  # '@' in the password
        ("rtsp://user:a:b@host/s", "rtsp://user:***@host/s"),
    ],
)
def test_mask_url(text: str, expected: str) -> None:
    assert mask_url(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "mqtt:\n  host: h\ncameras:\n  door: rtsp://viewer:S3cr3tPw@192.0.2.10/s\n",  # a plain URL
        "mqtt:\n  host: h\n  password: 73519264\ncameras:\n  door:\n    url: rtsp://h/s\n",  # a number
        "mqtt:\n  host: h\n  password: [S3cr3tPw]\ncameras:\n  door:\n    url: rtsp://h/s\n",
    ],
)
def test_config_errors_never_show_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    assert main(["run", "--config", str(_write(tmp_path, text)), "--check"]) == 78
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "S3cr3tPw" not in err and "73519264" not in err


def test_log_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("fer_edge.test_mask")
    logger.addFilter(MaskSecrets())
    with caplog.at_level(logging.INFO):
        logger.info("opening %s", "rtsp://u:topsecret@h/s")
    assert "topsecret" not in caplog.text and "u:***@h" in caplog.text


@pytest.mark.skipif(sys.platform != "linux", reason="unix datagram sockets")
def test_sd_notify_and_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2)
        monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
        assert sd_notify("READY=1") is False
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert sd_notify("READY=1") is True
        assert sock.recv(100) == b"READY=1"
        monkeypatch.setenv("WATCHDOG_USEC", "1000000")
        watchdog = Watchdog()
        assert watchdog.interval_s == 0.5
        watchdog.progress()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_payloads_follow_the_contract() -> None:
    topics = Topics("fer-edge", "box-1")
    assert topics.emotions("door") == "fer-edge/box-1/door/emotions"
    assert topics.discovery_topics("door")[0] == "homeassistant/sensor/box-1_door_emotion/config"
    assert iso_ms(0.1234) == "1970-01-01T00:00:00.123Z"
    scores = {"happy": 0.9, "sad": 0.1}
    analysis = Analysis(
        [
            FaceResult(1, (0, 0, 9, 9), "happy", 0.9, scores),
            FaceResult(2, (20, 0, 9, 9), "sad", 0.6, scores),
            FaceResult(3, (40, 0, 9, 9), "happy", 0.7, scores),
        ]
    )
    state = state_payload(analysis, 0.0)
    assert state["faces"] == 3 and state["dominant"] == "happy"
    assert state_payload(Analysis([]), 0.0)["dominant"] is None
    assert state_payload(Analysis([]), 0.0, people_today=4)["people_today"] == 4
    discovery = discovery_payload(topics, "door")
    assert discovery["availability_topic"] == "fer-edge/box-1/availability"
    assert discovery["unique_id"] == "fer_edge_box-1_door_emotion"


def test_the_example_dashboard_names_entities_that_discovery_creates() -> None:
    """deploy/home-assistant-dashboard.yaml is written for device box-1 and camera door: every
    entity it shows is one that discovery makes (HA turns object_id into the entity id, '-'->'_')."""
    import re

    import yaml

    from fer_edge.daemon.payloads import box_discovery_payload, discovery_payloads

    topics = Topics("fer-edge", "box-1")
    made = {
        f"{topic.split('/')[1]}.{re.sub(r'[^a-z0-9_]', '_', doc['object_id'])}"
        for topic, doc in [
            *discovery_payloads(topics, "door").items(),
            (topics.box_discovery_topic, box_discovery_payload(topics)),
        ]
    }
    dashboard = yaml.safe_load(
        (Path(__file__).parents[1] / "deploy" / "home-assistant-dashboard.yaml").read_text()
    )
    shown = set()
    for view in dashboard["views"]:
        for card in view["cards"]:
            for entity in card["entities"]:
                shown.add(entity["entity"] if isinstance(entity, dict) else entity)
    assert shown and shown <= made, shown - made


def test_the_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_edge.daemon.config_file import load_config

    monkeypatch.setenv("CAM_PASSWORD", "example")
    config = load_config(Path(__file__).parents[1] / "deploy" / "config.example.yaml")
    assert config.cameras["door"].decode == "auto"
    assert config.http is not None and config.http.host == "127.0.0.1"


def test_keyframes_only_still_loads_as_decode(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fer_edge.daemon.config_file import load_config
    from fer_edge.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("mqtt: {host: h}\ncameras: {a: {url: x.mp4, keyframes_only: true}}\n")
    with caplog.at_level(logging.WARNING):
        assert load_config(path).cameras["a"].decode == "auto"
    assert "keyframes_only: true is replaced by decode: auto" in caplog.text
    path.write_text("mqtt: {host: h}\ncameras: {a: {url: x.mp4, keyframes_only: false}}\n")
    assert load_config(path).cameras["a"].decode == "all"
    path.write_text("mqtt: {host: h}\ncameras: {a: {url: x.mp4, keyframes_only: true, decode: all}}\n")
    with pytest.raises(ConfigError, match="remove keyframes_only"):
        load_config(path)
