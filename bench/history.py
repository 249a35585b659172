"""How big the per-minute history grows and how fast it answers: a year of minutes for 16 cameras.

One camera's year is written through the daemon's own path (``HistoryStore.record`` one tick a
minute, flushed a day at a time) with a day's rhythm: nobody at night, one to three people by day,
a new visit every few minutes; the other cameras' rows are copies of it (same sizes, written by
SQL). Then the queries the page and an analyst make, timed as the median of five, in the store
and over HTTP. Prints one JSON document; ``--json`` also writes it.

    python bench/history.py --cameras 16 --days 365 --json docs/bench/history.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fer_edge.atomic import write_json
from fer_edge.daemon.config import HttpConfig
from fer_edge.daemon.history import HistoryStore
from fer_edge.daemon.history_api import history_document
from fer_edge.daemon.pipeline import FaceResult
from fer_edge.daemon.web import WebBackend, WebServer
from fer_edge.labels import LABELS


def _faces(minute: int) -> list[FaceResult]:
    hour = (minute // 60) % 24
    if not 8 <= hour < 20:
        return []
    count = minute % 4  # 0 to 3 people
    return [
        FaceResult(minute // 5 + k, (0, 0, 60, 60), LABELS[(minute + k) % 7], 0.8, {}, attention=k != 1)
        for k in range(count)
    ]


def write_year(store: HistoryStore, days: int, start: float) -> float:
    began = time.perf_counter()
    seen: set[int] = set()
    for minute in range(days * 1440):
        faces = _faces(minute)
        started = {f.id for f in faces} - seen
        seen |= started
        store.record("cam00", start + minute * 60, faces, 60.0, started)
        if minute % 1440 == 1439:
            store.flush(start + minute * 60)
            seen.clear()
    store.flush(start + days * 86400)
    return time.perf_counter() - began


def copy_cameras(store: HistoryStore, cameras: int) -> None:
    db = store._db  # the bench fills the file directly: 15 more cameras of the same rows
    with db:
        for c in range(1, cameras):
            db.execute("INSERT INTO cameras(name) VALUES (?)", (f"cam{c:02d}",))
            new_id = db.execute("SELECT id FROM cameras WHERE name = ?", (f"cam{c:02d}",)).fetchone()[0]
            columns = [r[1] for r in db.execute("PRAGMA table_info(minutes)")][2:]
            db.execute(
                f"INSERT INTO minutes SELECT ?, minute, {', '.join(columns)} FROM minutes WHERE camera = 1",
                (new_id,),
            )
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def median_ms(action: Any, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)
    body = connection.getresponse().read()
    connection.close()
    return len(body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--max-mb", type=float, default=512.0, help="the bound under test (history_max_mb)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    end = time.time()
    start = end - args.days * 86400
    with tempfile.TemporaryDirectory(prefix="fer-edge-history-") as tmp:
        path = Path(tmp) / "history.sqlite3"
        store = HistoryStore(path, days=args.days + 1, max_mb=args.max_mb)
        write_s = write_year(store, args.days, start)
        copy_cameras(store, args.cameras)
        store.flush(end)  # the size check and its pruning, as the daemon's next flush would
        rows = store._db.execute("SELECT COUNT(*) FROM minutes").fetchone()[0]
        names = [f"cam{c:02d}" for c in range(args.cameras)]
        week = {"from": [str(end - 7 * 86400)], "to": [str(end)]}
        queries = {
            "7d_hourly_one_camera": lambda: store.series("cam03", end - 7 * 86400, end, "hour"),
            "7d_hourly_all_cameras": lambda: history_document(store, week, names, now=end),
            "7d_per_minute_one_camera": lambda: store.series("cam03", end - 7 * 86400, end, "minute"),
            "24h_hourly_one_camera": lambda: store.series("cam03", end - 86400, end, "hour"),
            "30d_daily_one_camera": lambda: store.series("cam03", end - 30 * 86400, end, "day"),
            "1y_daily_one_camera": lambda: store.series("cam03", start, end, "day"),
        }
        timings = {name: median_ms(action) for name, action in queries.items()}
        backend = WebBackend(dict, lambda _c: None, lambda: names, lambda _i: {}, lambda: True, None, store)
        server = WebServer(HttpConfig(port=free_port()), backend)
        server.start()
        port = server.server_address[1]
        try:
            for name, path_query in {
                "http_7d_hourly_one_camera": "/api/history?camera=cam03&from=-7d&step=hour",
                "http_7d_hourly_all_cameras": "/api/history?from=-7d&step=hour",
                "http_7d_hourly_all_cameras_csv": "/api/history?from=-7d&step=hour&format=csv",
            }.items():
                timings[name] = median_ms(lambda q=path_query: http_get(port, q))
        finally:
            server.stop()
        size = path.stat().st_size
        store.close()
    report = {
        "cameras": args.cameras,
        "days": args.days,
        "rows": rows,
        "file_mb": round(size / 2**20, 1),
        "bytes_per_row": round(size / max(rows, 1), 1),
        "bound_mb": args.max_mb,
        "under_bound": size <= args.max_mb * 2**20,
        "pruned_days": store.pruned_days,
        "write_one_camera_year_s": round(write_s, 1),
        "query_ms_median_of_5": timings,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
