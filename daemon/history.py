"""What each camera saw, per minute, kept on disk for ``history_days``: the page's charts,
``/api/history`` and ``/api/tracks`` read it, and it survives a restart.

One row per camera and analysed minute: ticks and seconds analysed, people (visits that arrived in
the minute, and those already there), person-seconds, the ticks of each emotion, and attention.
A minute without a row was not analysed (the daemon or the camera was down): charts show "no data"
there, not 0%. The same counts are added up per hour too (60 times fewer rows for the queries
over days and weeks), and ended visits are kept beside them, as the tracks topic carried them.

Ticks add to an in-memory minute per camera; :meth:`HistoryStore.flush` writes what was added
since the last flush (an upsert that adds, so a restart within a minute adds to its row), every
few seconds and on stop: a crash loses at most those seconds. Bounded twice: rows older than
``days`` go, and while the file's pages in use exceed ``max_mb`` the oldest day goes; the freed
pages go back to the file system (incremental vacuum).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
import time
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fer_edge.daemon.payloads import iso_ms
from fer_edge.daemon.pipeline import FaceResult
from fer_edge.daemon.sqlite_db import open_database, set_aside
from fer_edge.labels import LABELS

logger = logging.getLogger(__name__)

Step = Literal["minute", "hour", "day"]
STEPS: tuple[Step, ...] = ("minute", "hour", "day")
MAX_BUCKETS = 50_000  # one query's buckets at most (30 days of minutes is 43,200)
PRUNE_EVERY_S = 3600.0
PENDING_LIMIT = 100_000  # rows kept in memory while the disk refuses writes

_COUNTS = ("ticks", "analysed_ms", "person_ms", "arrivals", "carried", "looked", "judged")
_EMOTION_COLUMNS = tuple(f"e_{label}" for label in LABELS)
_COLUMNS = _COUNTS + _EMOTION_COLUMNS


def _counts_table(name: str) -> str:
    """``minutes`` (a row per analysed minute) and ``hours`` (the same counts added up per hour,
    keyed by the hour's first minute, for queries over days)."""
    return f"""CREATE TABLE IF NOT EXISTS {name} (
    camera INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    {", ".join(f"{c} INTEGER NOT NULL" for c in _COLUMNS)},
    PRIMARY KEY (camera, minute)
) WITHOUT ROWID;"""


_FIRST = "PRAGMA auto_vacuum=INCREMENTAL;"  # takes effect on a new file only: set before the tables
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS cameras (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL);
{_counts_table("minutes")}
{_counts_table("hours")}
CREATE TABLE IF NOT EXISTS visits (
    camera INTEGER NOT NULL,
    last_seen REAL NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS visits_by_time ON visits(camera, last_seen);
"""


def _upsert(table: str) -> str:
    """Add a row's counts to the row of its key (a new row if none)."""
    return (
        f"INSERT INTO {table}(camera, minute, {', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))}) ON CONFLICT(camera, minute) DO UPDATE SET "
        + ", ".join(f"{c} = {c} + excluded.{c}" for c in _COLUMNS)
    )


# an hour's carried people are those its first analysed minute carried in
_HOUR_CARRIED = (
    "UPDATE hours SET carried = (SELECT carried FROM minutes WHERE minutes.camera = hours.camera "
    "AND minutes.minute >= hours.minute AND minutes.minute < hours.minute + 60 ORDER BY minute LIMIT 1) "
    "WHERE camera = ? AND minute = ?"
)


@dataclass
class _Minute:
    """One camera's minute as ticks add to it; :meth:`row` is its counts in column order."""

    minute: int
    ticks: int = 0
    analysed_ms: int = 0
    person_ms: int = 0
    arrived: set[int] = field(default_factory=set)  # ids whose visit started in this minute
    carried: set[int] = field(default_factory=set)  # ids seen here whose visit started before
    looked: int = 0
    judged: int = 0
    emotions: Counter[str] = field(default_factory=Counter)

    def row(self) -> tuple[int, ...]:
        people = (len(self.arrived), len(self.carried))
        emotions = (self.emotions[label] for label in LABELS)
        return (self.ticks, self.analysed_ms, self.person_ms, *people, self.looked, self.judged, *emotions)


@dataclass
class _Open:
    """A camera's minute in memory and what of it is already on disk."""

    minute: _Minute
    written: tuple[int, ...] = (0,) * len(_COLUMNS)

    def delta(self) -> tuple[int, ...]:
        return tuple(now - before for now, before in zip(self.minute.row(), self.written, strict=True))


def bucket_starts(start: float, end: float, step: Step) -> list[float]:
    """The starts of the buckets that cover ``[start, end)``, on the box's local clock (an hour
    starts at :00, a day at local midnight, also across daylight-saving changes)."""
    if step == "day":
        day = datetime.fromtimestamp(start).date()
        starts = []
        while (moment := _midnight(day)) < end:
            starts.append(moment)
            day += timedelta(days=1)
            if len(starts) > MAX_BUCKETS:
                break
        return starts
    size = 60 if step == "minute" else 3600
    local = datetime.fromtimestamp(start).replace(second=0, microsecond=0)
    first = (local if step == "minute" else local.replace(minute=0)).timestamp()
    count = max(0, int((end - first + size - 1) // size))
    return [first + i * size for i in range(min(count, MAX_BUCKETS + 1))]


def _midnight(day: date) -> float:
    return datetime(day.year, day.month, day.day).timestamp()


class HistoryStore:
    """Thread-safe: the analysis loop records and flushes, the web page's threads query."""

    def __init__(self, path: Path, days: int = 30, max_mb: float = 256.0) -> None:
        self.path, self.days, self.max_bytes = path, days, int(max_mb * 1024 * 1024)
        self.write_failures = 0
        self.pruned_days = 0  # oldest days deleted to stay under max_mb
        self._lock = threading.Lock()
        self._open: dict[str, _Open] = {}
        self._pending: list[tuple[Any, ...]] = []  # closed minutes' deltas not yet on disk
        self._pending_visits: list[tuple[str, float, str]] = []
        self._camera_ids: dict[str, int] = {}
        self._people_today: dict[str, tuple[date, int]] = {}
        self._next_prune = 0.0
        try:
            self._db = open_database(path, _SCHEMA, first=_FIRST)
        except sqlite3.DatabaseError as e:
            aside = set_aside(path)
            logger.error("history %s was corrupt (%s): kept aside as %s; started anew", path, e, aside.name)
            self._db = open_database(path, _SCHEMA, first=_FIRST)

    # -- writing --------------------------------------------------------------------------------
    def record(
        self, camera: str, ts: float, faces: list[FaceResult], interval_s: float, started: set[int]
    ) -> None:
        """One tick of ``camera`` at stream time ``ts``; ``started``: the ids whose visit began on it."""
        minute = int(ts // 60)
        with self._lock:
            current = self._open.get(camera)
            if current is None or current.minute.minute != minute:
                if current is not None:
                    self._queue(camera, current)
                current = self._open[camera] = _Open(_Minute(minute))
            m = current.minute
            m.ticks += 1
            m.analysed_ms += round(interval_s * 1000)
            m.person_ms += round(interval_s * 1000 * len(faces))
            ids = {face.id for face in faces}
            m.arrived |= started & ids
            m.carried |= ids - m.arrived
            for face in faces:
                if face.emotion is not None:
                    m.emotions[face.emotion] += 1
                if face.attention is not None:
                    m.judged += 1
                    m.looked += int(face.attention)
            self._count_today(camera, ts, ids, started)

    def record_visit(self, camera: str, document: dict[str, Any]) -> None:
        """An ended visit (a tracks ``end`` document), kept for ``/api/tracks``."""
        last_seen = datetime.fromisoformat(document["last_seen"].replace("Z", "+00:00")).timestamp()
        with self._lock:
            self._pending_visits.append((camera, last_seen, json.dumps(document, separators=(",", ":"))))

    def _queue(self, camera: str, current: _Open) -> None:
        delta = current.delta()
        if any(delta):
            self._pending.append((camera, current.minute.minute, *delta))
        current.written = current.minute.row()
        del self._pending[:-PENDING_LIMIT]

    def _count_today(self, camera: str, ts: float, ids: set[int], started: set[int]) -> None:
        """People today: those there at the day's first tick, then every visit that starts."""
        today = datetime.fromtimestamp(ts).date()
        day, count = self._people_today.get(camera, (None, 0))
        if day != today:
            stored = self._stored_people(camera, _midnight(today), ts)
            day, count = today, stored if stored is not None else len(ids - started)
        self._people_today[camera] = (day, count + len(started))

    def people_today(self, camera: str) -> int:
        with self._lock:
            day, count = self._people_today.get(camera, (None, 0))
        return count if day == date.today() else 0

    def flush(self, now: float | None = None) -> None:
        """Write what was added since the last flush; prune when due or over the size bound."""
        now = time.time() if now is None else now
        with self._lock:
            for camera, current in self._open.items():
                self._queue(camera, current)
            rows, visits = self._pending, self._pending_visits
            try:
                with self._db:
                    keyed = [(self._camera_id(r[0]), *r[1:]) for r in rows]
                    self._db.executemany(_upsert("minutes"), keyed)
                    hourly = [(r[0], r[1] - r[1] % 60, *r[2:]) for r in keyed]
                    self._db.executemany(_upsert("hours"), hourly)
                    self._db.executemany(_HOUR_CARRIED, sorted({r[:2] for r in hourly}))
                    self._db.executemany(
                        "INSERT INTO visits(camera, last_seen, document) VALUES (?, ?, ?)",
                        [(self._camera_id(c), ts, doc) for c, ts, doc in visits],
                    )
            except sqlite3.Error as e:
                self.write_failures += 1
                logger.warning("history: cannot write %s (%s); kept in memory, tried again", self.path, e)
                return
            self._pending, self._pending_visits = [], []
            if now >= self._next_prune or self._used_bytes() > self.max_bytes:
                self._prune(now)
                self._next_prune = now + PRUNE_EVERY_S

    def _camera_id(self, name: str) -> int:
        if name not in self._camera_ids:
            self._db.execute("INSERT OR IGNORE INTO cameras(name) VALUES (?)", (name,))
            row = self._db.execute("SELECT id FROM cameras WHERE name = ?", (name,)).fetchone()
            self._camera_ids[name] = int(row[0])
        return self._camera_ids[name]

    def _used_bytes(self) -> int:
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * self._db.execute("PRAGMA page_size").fetchone()[0]

    def _prune(self, now: float) -> None:
        """Rows older than ``days`` go; then, while over ``max_mb``, the oldest day."""
        cutoff = int(now // 60) - self.days * 1440
        with self._db:
            self._delete_before(cutoff)
        deleted, oldest = 0, None
        while self._used_bytes() > self.max_bytes:
            oldest = self._db.execute("SELECT MIN(minute) FROM minutes").fetchone()[0]
            if oldest is None:
                break
            with self._db:
                self._delete_before(oldest + 1440)
            deleted += 1
        if deleted:
            self.pruned_days += deleted
            first = self._db.execute("SELECT MIN(minute) FROM minutes").fetchone()[0]
            logger.warning(
                "history: over history_max_mb (%.0f MB): deleted the oldest %d day(s); it now starts %s",
                self.max_bytes / 2**20,
                deleted,
                iso_ms(first * 60) if first is not None else "empty",
            )
        self._db.execute("PRAGMA incremental_vacuum")

    def _delete_before(self, minute: int) -> None:
        for table in ("minutes", "hours"):
            self._db.execute(f"DELETE FROM {table} WHERE minute < ?", (minute,))
        self._db.execute("DELETE FROM visits WHERE last_seen < ?", (minute * 60,))

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._db.close()

    # -- reading --------------------------------------------------------------------------------
    def cameras(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT name FROM cameras ORDER BY name")]

    def series(self, camera: str, start: float, end: float, step: Step) -> list[dict[str, Any]]:
        """Every bucket of ``[start, end)``, oldest first; a bucket nothing was analysed in has
        ``analysed_s`` 0 and nulls. People in a bucket: the visits that arrived in it, plus those
        already there at its first analysed minute."""
        starts = bucket_starts(start, end, step)
        if len(starts) > MAX_BUCKETS:
            raise ValueError(f"over {MAX_BUCKETS} buckets: ask for a shorter range or a longer step")
        bounds = [int(s // 60) for s in starts]
        rows: dict[int, tuple[Any, ...]] = {}
        with self._lock:
            camera_id = self._camera_ids.get(camera) or self._lookup_camera(camera)
            if camera_id is not None and starts:
                # hours and days add up hours (60 times fewer rows) where the box's clock keeps
                # whole hours from UTC, as nearly every zone does
                table = "minutes" if step == "minute" or any(b % 60 for b in bounds) else "hours"
                sums = ", ".join(f"SUM({c})" for c in _COLUMNS if c != "carried")
                query = (
                    f"SELECT {self._bucket_expression(bounds, step)} AS b, MIN(minute), carried, {sums} "
                    f"FROM {table} WHERE camera = ? AND minute >= ? AND minute < ? GROUP BY b"
                )
                for row in self._db.execute(query, (camera_id, bounds[0], math.ceil(end / 60))):
                    rows[row[0]] = row[2:]
        return [_bucket(s, rows.get(i)) for i, s in enumerate(starts)]

    def _bucket_expression(self, bounds: list[int], step: Step) -> str:
        """SQL for a minute's bucket index: arithmetic for minutes and hours (evenly spaced), a
        lookup in ``bounds`` for days (daylight saving makes them uneven)."""
        if step != "day":
            return f"(minute - {bounds[0]}) / {1 if step == 'minute' else 60}"
        self._db.create_function("bucket_of", 1, lambda m: bisect_right(bounds, m) - 1, deterministic=True)
        return "bucket_of(minute)"

    def _lookup_camera(self, camera: str) -> int | None:
        row = self._db.execute("SELECT id FROM cameras WHERE name = ?", (camera,)).fetchone()
        return None if row is None else int(row[0])

    def _stored_people(self, camera: str, start: float, end: float) -> int | None:
        """People already on disk for ``camera`` in ``[start, end)`` (today, after a restart)."""
        camera_id = self._lookup_camera(camera)
        if camera_id is None:
            return None
        row = self._db.execute(
            "SELECT MIN(minute), carried, SUM(arrivals) FROM minutes WHERE camera = ? "
            "AND minute >= ? AND minute < ?",
            (camera_id, int(start // 60), math.ceil(end / 60)),
        ).fetchone()
        return None if row[0] is None else int(row[1] + row[2])

    def visits(self, camera: str, start: float, end: float, limit: int) -> list[dict[str, Any]]:
        """Ended visits of ``camera`` whose last sighting is in ``[start, end)``, newest first."""
        with self._lock:
            camera_id = self._lookup_camera(camera)
            if camera_id is None:
                return []
            rows = self._db.execute(
                "SELECT document FROM visits WHERE camera = ? AND last_seen >= ? AND last_seen < ? "
                "ORDER BY last_seen DESC LIMIT ?",
                (camera_id, start, end, limit),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]


_NO_DATA = dict.fromkeys(("people", "person_s", "attention", "emotions"))


def _iso_start(start: float) -> str:
    """A bucket's start (a whole second) as the contract writes times; a week of minutes is
    10,080 of them, so without the general formatter's cost."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(start))


def _bucket(start: float, row: tuple[Any, ...] | None) -> dict[str, Any]:
    """One bucket as the API gives it, from ``carried, ticks, analysed_ms, person_ms, arrivals,
    looked, judged, angry..neutral`` (None: nothing analysed)."""
    if row is None:
        return {"start": _iso_start(start), "analysed_s": 0, "ticks": 0, **_NO_DATA}
    carried, ticks, analysed_ms, person_ms, arrivals, looked, judged, *counts = row
    classified = sum(counts)
    return {
        "start": _iso_start(start),
        "analysed_s": round(analysed_ms / 1000, 1),
        "ticks": ticks,
        "people": carried + arrivals,
        "person_s": round(person_ms / 1000, 1),
        "attention": round(looked / judged, 4) if judged else None,
        "emotions": (
            {label: round(n / classified, 4) for label, n in zip(LABELS, counts, strict=True)}
            if classified
            else None
        ),
    }
