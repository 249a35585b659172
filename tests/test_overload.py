"""More cameras than the box can analyse: every camera gets an even share, stats and the log say
so, and SIGTERM still ends the daemon within ``stop_timeout_s`` with nothing lost. Over real RTSP
and mosquitto; the overload is made by asking one worker for ten results a second per camera, each
a whole-frame scan (``full_scan_every: 1``), so it stays an overload on a fast box."""

from __future__ import annotations

import json
import logging
import signal
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from fer_edge.daemon.analysis import OverloadWatch, RunShedding, shard, shedding_worth, worker_count
from fer_edge.daemon.democlip import DEMO_SPRITES, face_image, render_frame
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

CAMERAS = ("a", "b", "c", "d")


def test_cameras_are_dealt_to_workers_in_turn() -> None:
    assert shard(["a", "b", "c", "d", "e"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert worker_count(8, 3) == 3 and worker_count(2, 16) == 2 and worker_count(None, 1) == 1


def test_overload_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = OverloadWatch()
    targets = {"a": 1.0}
    caplog.set_level(logging.INFO, "fer_edge.daemon.analysis")
    watch.update({"a": (0, 0)}, targets)
    for ticks, overtaken in ((5, 3), (9, 6), (12, 9)):
        watch.update({"a": (ticks, overtaken)}, targets)
    assert watch.overloaded and watch.summary()["overloaded"] is True
    for ticks in (20, 30):
        watch.update({"a": (ticks, 9)}, targets)
    assert not watch.overloaded
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("overloaded:") for line in lines) == 1
    assert sum("no longer overloaded" in line for line in lines) == 1


@pytest.mark.integration
@pytest.mark.skipif(
    not (have_mosquitto() and have_rtsp_server()), reason="needs mosquitto and gst-rtsp-server"
)
def test_an_overloaded_box_shares_evenly_says_so_and_stops_in_time(tmp_path: Path, int8_model: Path) -> None:
    face = face_image()
    frames = np.stack([render_frame(face, DEMO_SPRITES, i / 10, 960, 540) for i in range(40)])
    servers = [RtspServer(frames, tmp_path, 10, unshared=True) for _ in CAMERAS]
    state = tmp_path / "state"
    with Mosquitto(tmp_path) as broker:
        for server in servers:
            server.start()
        blocks = "".join(
            f"  {n}: {{url: {s.url}, interval_s: 0.1}}\n" for n, s in zip(CAMERAS, servers, strict=True)
        )
        config = tmp_path / "config.yaml"
        config.write_text(
            f"device_id: busy\nstate_dir: {state}\nanalysis_workers: 1\nstop_timeout_s: 10\nhttp: null\n"
            f"mqtt: {{host: 127.0.0.1, port: {broker.port}, discovery: false, stats_interval_s: 2}}\n"
            f"model: {{path: {int8_model}}}\ndetector: {{full_scan_every: 1}}\ncameras:\n{blocks}"
        )
        collector = MqttCollector(broker.port, "fer-edge/#")
        log = tmp_path / "daemon.log"
        proc = start_daemon(config, log)
        try:
            overloaded = wait_for(
                lambda: [d for d in collector.documents("busy/stats") if d["analysis"]["overloaded"]],
                90,
                "stats saying overloaded",
            )[-1]
            start = {n: len(collector.documents(f"/{n}/emotions")) for n in CAMERAS}

            def more() -> list[int]:
                return [len(collector.documents(f"/{n}/emotions")) - start[n] for n in CAMERAS]

            wait_for(lambda: min(more()) >= 40, 150, "40 more results from every camera")
            counts = more()
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            stopped_s = time.monotonic() - began
        finally:
            if proc.poll() is None:
                stop_process(proc)
            for server in servers:
                server.stop()
        wait_for(lambda: collector.payloads("busy/availability")[-1:] == [b"offline"], 10, "offline")
        received = {(d["camera"], d["seq"]) for n in CAMERAS for d in collector.documents(f"/{n}/emotions")}
        collector.close()
    assert code == 0, log.read_text()[-3000:]
    assert stopped_s <= 10.0, stopped_s
    assert overloaded["analysis"]["workers"] == 1 and overloaded["analysis"]["results_per_s"]["min"] > 0
    # an even share: no camera more than 20% from the others' mean
    mean = sum(counts) / len(counts)
    assert all(abs(c - mean) <= 0.2 * mean for c in counts), counts
    assert "overloaded: the box cannot analyse every camera" in log.read_text()
    # nothing lost: every seq up to each camera's last either reached the broker or waits in the spool
    db = sqlite3.connect(state / "spool.sqlite3")
    spooled = {(d["camera"], d["seq"]) for (p,) in db.execute("SELECT payload FROM messages")
               for d in [json.loads(p)] if "seq" in d}  # fmt: skip
    last = {n: int(v) for k, v in db.execute("SELECT name, value FROM counters") if k.startswith("seq:")
            for n in [k[4:]]}  # fmt: skip
    db.close()
    for name in CAMERAS:
        have = {seq for camera, seq in received | spooled if camera == name}
        assert have == set(range(1, last[name] + 1)), (
            name,
            sorted(set(range(1, last[name] + 1)) - have)[:10],
        )


def test_long_gop_runs_are_shed_under_overload_held_and_taken_back(caplog: pytest.LogCaptureFixture) -> None:
    """Overloaded with cameras whose key frames alone would give more than they get: key frames
    alone, for the hold; the runs come back after it without overload; an overload soon after
    doubles the hold. One log line each way."""
    caplog.set_level(logging.INFO, "fer_edge.daemon.analysis")
    shedding = RunShedding(hold_s=60.0)
    assert not shedding.update(overloaded=True, worth=False, now=0.0)  # analysis-bound: keep the runs
    assert not shedding.update(overloaded=False, worth=True, now=5.0)  # not overloaded: keep them
    assert shedding.update(overloaded=True, worth=True, now=10.0)
    assert shedding.update(overloaded=True, worth=False, now=40.0)  # still overloaded: stays
    assert shedding.update(overloaded=False, worth=False, now=60.0)  # held 60 s from the last overload
    assert not shedding.update(overloaded=False, worth=False, now=101.0)  # the runs come back
    assert shedding.update(overloaded=True, worth=True, now=110.0) and shedding.hold_s == 120.0
    assert shedding.update(overloaded=False, worth=False, now=200.0)
    assert not shedding.update(overloaded=False, worth=False, now=231.0)
    assert not shedding.update(overloaded=False, worth=False, now=600.0)  # the runs were affordable
    assert shedding.hold_s == 60.0 and shedding.summary() == {"shedding_runs": False, "shed_hold_s": 60.0}
    lines = [r.getMessage() for r in caplog.records]
    assert sum(line.startswith("overloaded by decoding long GOPs") for line in lines) == 2
    assert sum(line.startswith("decoding runs again") for line in lines) == 2


def test_runs_are_worth_shedding_only_where_key_frames_alone_would_give_more() -> None:
    assert shedding_worth({"a": 2.0}, {"a": 0.2, "b": 1.0})  # 0.5/s from key frames beats 0.2
    assert not shedding_worth({"a": 2.0}, {"a": 0.7})  # an analysis-bound box gets more from the runs
    assert not shedding_worth({}, {"a": 0.1})  # no camera decodes runs
    assert not shedding_worth({"a": 2.0}, {})  # no window measured yet
