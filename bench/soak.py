"""Endurance: 8 cameras for an hour, with every RTSP server dropped for 20 s every 10 minutes and
the broker down for 60 s twice; the real daemon, real mosquitto, GStreamer's RTSP server.

Reports, as JSON (``--json``) and a summary: the daemon's RSS over time after the warm-up, results
lost (``seq`` numbers never delivered, and spool drops; must be 0), and for each server outage
the time from the server's return to the camera's next result. Not run in CI (it takes the hour).

Usage: python bench/soak.py [--minutes 60] [--cameras 8] [--json soak.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from fer_edge.bench.loopback import (
    Mosquitto,
    MqttCollector,
    RtspServer,
    daemon_command,
    stop_process,
    wait_for,
)
from fer_edge.bench.multicam import FPS, make_clip, memory_mb
from fer_edge.daemon.payloads import parse_iso

CYCLE_S = 600.0  # each server drops once per cycle
SERVER_OUTAGE_S = 20.0
BROKER_OUTAGE_S = 60.0
WARMUP_S = 300.0  # RSS is judged from here on: models, buffers and caches have settled


def schedule(minutes: float, cameras: int, cycle_s: float = CYCLE_S) -> list[tuple[float, str, int]]:
    """(start second, "server" or "broker", camera index) of every outage, none overlapping:
    the servers drop one after another in the first three quarters of each cycle; the broker
    in the last quarter of the second and the fifth cycles (the first, in a shorter run)."""
    events = []
    cycles = max(1, int(minutes * 60 // cycle_s))
    spacing = (0.75 * cycle_s - 30) / cameras
    for cycle in range(cycles):
        for i in range(cameras):
            events.append((cycle * cycle_s + 30 + spacing * i, "server", i))
    broker_cycles = [c for c in (1, 4) if c < cycles] or [0]
    for cycle in broker_cycles:
        events.append((cycle * cycle_s + 0.75 * cycle_s + 10, "broker", -1))
    return sorted(e for e in events if e[0] + BROKER_OUTAGE_S < minutes * 60)


def soak(minutes: float, cameras: int, workdir: Path, cycle_s: float = CYCLE_S) -> dict[str, Any]:
    clip = make_clip(workdir / "camera.h264")
    names = [f"cam{i}" for i in range(cameras)]
    servers = [RtspServer(None, workdir, fps=FPS, h264=clip) for _ in names]
    broker = Mosquitto(workdir, persistent=True)
    broker.start()
    for server in servers:
        server.start()
    config = {
        "device_id": "soak",
        "state_dir": str(workdir / "state"),
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "discovery": False, "stats_interval_s": 10},
        "cameras": {
            name: {"url": f"rtsp://127.0.0.1:{server.port}/cam"}
            for name, server in zip(names, servers, strict=True)
        },
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    collector = MqttCollector(broker.port, "fer-edge/soak/#", session=f"soak-{broker.port}")
    log = (workdir / "daemon.log").open("wb")
    proc = subprocess.Popen(
        daemon_command(path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    returns: list[tuple[str, float]] = []  # (camera, wall time its server came back)
    rss: list[tuple[float, float]] = []
    began = time.monotonic()
    try:
        wait_for(lambda: all(collector.payloads(f"/{n}/emotions") for n in names), 120, "every camera")
        began = time.monotonic()
        for at, what, index in [*schedule(minutes, cameras, cycle_s), (minutes * 60, "end", -1)]:
            while time.monotonic() - began < at:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited with {proc.returncode}")
                rss.append((time.monotonic() - began, memory_mb(proc.pid)[0]))
                time.sleep(min(10.0, max(0.0, at - (time.monotonic() - began))))
            minute = (time.monotonic() - began) / 60
            print(f"{minute:6.1f} min  {what} {index if index >= 0 else ''}", flush=True)
            if what == "server":
                servers[index].stop()
                time.sleep(SERVER_OUTAGE_S)  # the outage itself: nothing to wait on but time
                servers[index].start()
                returns.append((names[index], time.time()))
            elif what == "broker":
                broker.stop(graceful=True)
                time.sleep(BROKER_OUTAGE_S)
                broker.start()
        # let the spool drain and the last results arrive before counting
        time.sleep(30)
        stats = collector.documents("soak/stats")[-1]
    finally:
        stop_process(proc, timeout=30)
        log.close()
        collector.close()
        for server in servers:
            server.stop()
        broker.stop()
    return summarise(collector, names, returns, rss, stats)


def summarise(
    collector: MqttCollector,
    names: list[str],
    returns: list[tuple[str, float]],
    rss: list[tuple[float, float]],
    stats: dict[str, Any],
) -> dict[str, Any]:
    lost, results, back = {}, {}, []
    stamps: dict[str, list[float]] = {}
    for name in names:
        docs = collector.documents(f"/{name}/emotions")
        seqs = sorted({int(d["seq"]) for d in docs})
        lost[name] = (seqs[-1] - seqs[0] + 1 - len(seqs)) if seqs else 0
        results[name] = len(seqs)
        stamps[name] = sorted(parse_iso(d["frame_ts"]) for d in docs)
    for name, at in returns:
        later = [s for s in stamps[name] if s > at]
        back.append(round(later[0] - at, 1) if later else None)
    settled = [m for t, m in rss if t >= WARMUP_S] or [m for _, m in rss]
    head, tail = settled[: max(1, len(settled) // 10)], settled[-max(1, len(settled) // 10) :]
    known = [b for b in back if b is not None]
    return {
        "results": results,
        "seq_gaps": lost,
        "spool_dropped": stats["spool"]["dropped"],
        "results_lost": sum(lost.values()) + stats["spool"]["dropped"],
        "rss_mb": {
            "after_warmup": round(statistics.median(head), 1),
            "end": round(statistics.median(tail), 1),
            "max": round(max(settled), 1),
            "growth": round(statistics.median(tail) - statistics.median(head), 1),
            "series": [(round(t), round(m, 1)) for t, m in rss[::6]],
        },
        "server_returns": len(returns),
        "back_after_s": {
            "max": max(known) if known else None,
            "median": statistics.median(known) if known else None,
            "never": back.count(None),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--cycle", type=float, default=CYCLE_S, help="seconds between a server's drops")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fer-edge-soak-") as tmp:
        report = soak(args.minutes, args.cameras, Path(tmp), args.cycle)
    report = {"minutes": args.minutes, "cameras": args.cameras, **report}
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text)
    summary = {k: v for k, v in report.items() if k != "rss_mb"}
    print(json.dumps(summary, indent=1))
    print("rss_mb", {k: v for k, v in report["rss_mb"].items() if k != "series"})
    return 0 if report["results_lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
