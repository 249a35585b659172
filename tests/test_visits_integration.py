"""Visits on the real daemon over real RTSP and mosquitto: two faces enter, stay 5 s and 8 s and
leave; their ``end`` documents carry the dwell and the emotion shares of the per-tick results,
and visits that end during a broker outage and a daemon restart still arrive, once each. The
per-minute history counts every tick, survives a restart, and a browser shows it (24 h, 7 d)."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fer_edge.daemon.democlip import Sprite, face_image, render_frame
from fer_edge.daemon.history import HistoryStore
from fer_edge.daemon.payloads import parse_iso
from fer_edge.models import BUNDLED_MODEL
from tests import servers
from tests.browser import chromium, rendered_dom, screenshot
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
    http_port = servers.free_port()
    config = tmp_path / "config.yaml"
    config.write_text(f"""
device_id: visits-box
state_dir: {state}
mqtt: {{host: 127.0.0.1, port: {broker.port}, stats_interval_s: 2, ready_timeout_s: 3}}
model: {{path: {model}}}
http: {{port: {http_port}}}
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
        yield {
            "broker": broker,
            "collector": collector,
            "state": state,
            "start": start,
            "log": log,
            "http_port": http_port,
        }
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


def _get(port: int, path: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        assert response.status == 200, (path, response.status, body[:300])
        return json.loads(body)
    finally:
        connection.close()


def _visit_keys(document: dict[str, Any]) -> set[tuple[int, str]]:
    return {(v["id"], v["first_seen"]) for v in document["cameras"]["door"]}


@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)")
def test_history_counts_every_tick_survives_a_restart_and_the_page_shows_it(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    collector: MqttCollector = stack["collector"]
    port: int = stack["http_port"]
    daemon = stack["start"]()
    empty_tick = wait_for(lambda: _first_empty_tick(collector), 60, "a tick with nobody in view")
    wait_for(lambda: len(_complete(_ends(collector), empty_tick)) >= 2, 80, "two complete visits")
    wait_for(lambda: len(_get(port, "/api/tracks?camera=door")["cameras"]["door"]) >= 2, 30, "visits kept")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    # on disk, after the first run: one tick per result the emotions topic carried, and people
    # at least as many as the visits that started
    store = HistoryStore(stack["state"] / "history.sqlite3")
    first_run = [b for b in store.series("door", time.time() - 3600, time.time(), "minute") if b["ticks"]]
    store.close()
    results = {d["seq"] for d in collector.documents("/door/emotions")}
    starts = {d["id"] for d in collector.documents("/door/tracks") if d["event_type"] == "start"}
    assert sum(b["ticks"] for b in first_run) == len(results)
    assert sum(b["person_s"] for b in first_run) == sum(
        len(d["faces"]) for d in {d["seq"]: d for d in collector.documents("/door/emotions")}.values()
    )
    visits_before = _ends(collector)

    stack["start"]()
    wait_for(lambda: servers.port_open(port), 60, "the restarted daemon's page")
    after = _get(port, "/api/history?camera=door&from=-1h&step=minute")["cameras"]["door"]
    by_start = {b["start"]: b for b in after}
    for bucket in first_run:  # every minute of the first run is still there (a restart only adds)
        assert by_start[bucket["start"]]["ticks"] >= bucket["ticks"], bucket
    days = [
        b for b in _get(port, "/api/history?camera=door&from=-1h&step=day")["cameras"]["door"] if b["ticks"]
    ]
    assert sum(d["people"] for d in days) >= len(starts) and all(d["emotions"] for d in days)
    kept = _visit_keys(_get(port, "/api/tracks?camera=door&from=-1h&limit=1000"))
    assert {(e["id"], e["first_seen"]) for e in visits_before} <= kept

    # a person's view of it: the 24 h and 7 d charts, with the hours nothing ran marked
    for chosen in ("24h", "7d"):
        url = f"http://127.0.0.1:{port}/?range={chosen}"
        dom = rendered_dom(url, tmp_path / "profile")
        assert 'aria-pressed="true">' + {"24h": "24 h", "7d": "7 d"}[chosen] in dom
        assert re.search(r'<rect[^>]*data-emotion="happy"', dom), dom[-3000:]
        assert 'class="nodata"' in dom and ">no data<" in dom
        assert re.search(r'<ol class="visits"><li data-emotion="\w+"', dom)
        shot = screenshot(url, tmp_path / f"page-{chosen}.png", tmp_path / "profile")
        assert cv2.imread(str(shot)) is not None
        if os.environ.get("FER_EDGE_SCREENSHOTS"):  # docs/: kept for the README
            shutil.copy(shot, Path(os.environ["FER_EDGE_SCREENSHOTS"]) / f"page-{chosen}.png")
