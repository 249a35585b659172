"""Visits on the real daemon over real RTSP and mosquitto: two faces enter, stay 5 s and 8 s and
leave; their ``end`` documents carry the dwell and the emotion shares of the per-tick results,
and visits that end during a broker outage and a daemon restart still arrive, once each."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fer_edge.cli import BUNDLED_MODEL
from fer_edge.daemon.democlip import Sprite, face_image, render_frame
from fer_edge.daemon.payloads import parse_iso
from tests import servers
from tests.servers import Mosquitto, MqttCollector, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (servers.have_mosquitto() and servers.have_rtsp_server()),
        reason="needs mosquitto and gst-rtsp-server (.ci/run installs them)",
    ),
]
FPS, WIDTH, HEIGHT, LOOP_S = 10, 640, 360, 16
# (sprite, enters at, leaves at): A stays 5 s, B 8 s, then nobody until the clip loops
VISITORS = [(Sprite(scale=0.8, x=40, y=60), 1.0, 6.0), (Sprite(scale=0.7, x=420, y=120), 2.0, 10.0)]
TRUE_DWELL = sorted(leave - enter for _, enter, leave in VISITORS)


def _frames() -> np.ndarray:
    face = face_image()
    frames = []
    for i in range(LOOP_S * FPS):
        t = i / FPS
        present = [s for s, enter, leave in VISITORS if enter <= t < leave]
        frames.append(render_frame(face, present, t, WIDTH, HEIGHT))
    return np.stack(frames)


@pytest.fixture
def stack(tmp_path: Path, int8_model: Path) -> Iterator[dict[str, Any]]:
    broker = Mosquitto(tmp_path, persistent=True)
    camera = servers.RtspServer(_frames(), tmp_path, FPS)
    for server in (broker, camera):
        server.start()
    state = tmp_path / "state"
    model = BUNDLED_MODEL if BUNDLED_MODEL.exists() else int8_model
    config = tmp_path / "config.yaml"
    config.write_text(f"""
device_id: visits-box
state_dir: {state}
mqtt: {{host: 127.0.0.1, port: {broker.port}, stats_interval_s: 2, ready_timeout_s: 3}}
model: {{path: {model}}}
cameras:
  door: {{url: {camera.url}, interval_s: 1.0, track_end_s: 3.0}}
""")
    collector = MqttCollector(broker.port, "fer-edge/#", session=f"visits-{broker.port}")
    wait_for(lambda: collector.client.is_connected(), 10, "the test subscriber to connect")
    log = tmp_path / "daemon.log"
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                servers.daemon_command(config),
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdout=out,
                stderr=out,
            )
        procs.append(proc)
        return proc

    try:
        yield {"broker": broker, "collector": collector, "state": state, "start": start, "log": log}
    finally:
        for proc in procs:
            if proc.poll() is None:
                servers.stop_process(proc)
        collector.close()
        for server in (camera, broker):
            server.stop()


def _ends(collector: MqttCollector) -> list[dict[str, Any]]:
    return [d for d in collector.documents("/door/tracks") if d["event_type"] == "end"]


def _complete(ends: list[dict[str, Any]], empty_tick: float) -> list[dict[str, Any]]:
    """Visits the daemon saw from their start: those that began after a tick with nobody in
    view (one already under way when the daemon started is seen only in part)."""
    return [e for e in ends if e["reason"] == "left" and parse_iso(e["first_seen"]) > empty_tick]


def _first_empty_tick(collector: MqttCollector) -> float | None:
    """The first tick with nobody in view after one with faces: everyone seen there has left."""
    docs = sorted(collector.documents("/door/emotions"), key=lambda d: parse_iso(d["frame_ts"]))
    for before, after in itertools.pairwise(docs):
        if before["faces"] and not after["faces"]:
            return parse_iso(after["frame_ts"])
    return None


def _spooled_ends(state: Path) -> list[dict[str, Any]]:
    db = sqlite3.connect(state / "spool.sqlite3")
    try:
        rows = db.execute("SELECT payload FROM messages WHERE topic LIKE '%/tracks'").fetchall()
    finally:
        db.close()
    return [d for d in (json.loads(r[0]) for r in rows) if d["event_type"] == "end"]


def _spool_rows(state: Path) -> int:
    db = sqlite3.connect(state / "spool.sqlite3")
    try:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def _shares_of_ticks(collector: MqttCollector, end: dict[str, Any]) -> dict[str, float]:
    """The emotion shares of the per-tick results of ``end``'s face over its visit."""
    start, last = parse_iso(end["first_seen"]), parse_iso(end["last_seen"])
    seen = Counter()
    for doc in {d["seq"]: d for d in collector.documents("/door/emotions")}.values():
        if start <= parse_iso(doc["frame_ts"]) <= last:
            seen.update(f["emotion"] for f in doc["faces"] if f["id"] == end["id"] and f["emotion"])
    total = sum(seen.values())
    return {e: round(n / total, 4) for e, n in seen.items()} if total else {}


def test_two_visits_end_with_their_dwell_and_the_shares_of_their_ticks(stack: dict[str, Any]) -> None:
    collector: MqttCollector = stack["collector"]
    stack["start"]()
    empty_tick = wait_for(lambda: _first_empty_tick(collector), 60, "a tick with nobody in view")
    wait_for(lambda: len(_complete(_ends(collector), empty_tick)) >= 2, 80, "two complete visits")
    ends = sorted(_complete(_ends(collector), empty_tick)[:2], key=lambda e: e["dwell_s"])
    assert ends[0]["id"] != ends[1]["id"]
    for end, truth in zip(ends, TRUE_DWELL, strict=True):
        assert abs(end["dwell_s"] - truth) <= 1.0, (end, truth)
        assert end["ticks"] >= truth - 1 and end["schema"] == 2
        assert end["emotions"] == _shares_of_ticks(collector, end)
        assert end["dominant"] == max(end["emotions"], key=end["emotions"].get)
    starts = [d for d in collector.documents("/door/tracks") if d["event_type"] == "start"]
    assert {e["id"] for e in ends} <= {s["id"] for s in starts}


def test_visits_that_end_in_an_outage_and_a_restart_arrive_once_each(stack: dict[str, Any]) -> None:
    collector: MqttCollector = stack["collector"]
    broker: Mosquitto = stack["broker"]
    state: Path = stack["state"]
    daemon = stack["start"]()
    wait_for(lambda: collector.documents("/door/tracks"), 60, "the first visit to start")
    broker.stop(graceful=True)  # its persistence keeps the test subscriber's queued session
    wait_for(lambda: len(_spooled_ends(state)) >= 2, 90, "two visits to end while the broker is down")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    spooled = {(e["id"], e["first_seen"]) for e in _spooled_ends(state)}
    assert len(spooled) >= 2
    rows = _spool_rows(state)
    stack["start"]()  # restarted while the broker is still down
    wait_for(lambda: _spool_rows(state) > rows, 60, "the restarted daemon to spool results")
    broker.start()
    wait_for(
        lambda: spooled <= {(e["id"], e["first_seen"]) for e in _ends(collector)}, 60, "the spooled visits"
    )
    wait_for(lambda: not _spooled_ends(state), 30, "the spool to drain")
    counts = Counter((e["id"], e["first_seen"]) for e in _ends(collector))
    assert all(counts[key] == 1 for key in spooled), counts
