"""A bounded on-disk FIFO of messages the broker has not acknowledged yet (SQLite, WAL).

Every QoS-1 result goes in here first and leaves only when the broker's PUBACK arrives, so a broker
outage or a daemon restart loses nothing. Past ``max_messages`` the oldest rows are dropped and
counted. The per-camera ``seq`` counters live here too, so numbering continues across restarts.

A spool that is not a sound database (a disk fault, a half-written page, random bytes) must not
stop the daemon from starting: it is renamed aside (``spool.sqlite3.corrupt-<time>``), the rows
and counters that still read are copied into a fresh spool, one error is logged, and the event is
counted in ``recovered``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from fer_edge.daemon.sqlite_db import open_database, set_aside

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class SpoolWriteError(Exception):
    """The spool could not store a message: the disk is full or refuses writes."""


@dataclass(frozen=True)
class SpooledMessage:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool


class Spool:
    """Thread-safe: the analysis thread appends, the MQTT thread reads and acknowledges."""

    def __init__(self, path: Path, max_messages: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
        self.recovered = 0  # corrupt spools set aside since start
        self.salvaged = 0  # messages copied out of them
        self.write_failures = 0  # appends the disk refused (full, read-only)
        self._seqs: dict[str, int] = {}  # the last seq given per camera
        self._lock = threading.Lock()
        try:
            self._db = open_database(path, _SCHEMA)
        except sqlite3.DatabaseError as e:
            self._db = self._recover(path, e)
        # kept in memory: a COUNT(*) per result would scan the whole spool during an outage
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def _recover(self, path: Path, error: sqlite3.DatabaseError) -> sqlite3.Connection:
        """Set the bad spool aside, start a fresh one, copy over what still reads."""
        rows, counters = _salvage(path)
        aside = set_aside(path)
        db = open_database(path, _SCHEMA)
        with db:
            db.executemany("INSERT INTO messages(topic, payload, qos, retain) VALUES (?, ?, ?, ?)", rows)
            db.executemany("INSERT OR REPLACE INTO counters(name, value) VALUES (?, ?)", counters)
        self.recovered, self.salvaged = 1, len(rows)
        logger.error(
            "spool %s was corrupt (%s): kept aside as %s; %d unsent message(s) and %d counter(s) "
            "salvaged into a fresh spool",
            path,
            error,
            aside.name,
            len(rows),
            len(counters),
        )
        return db

    def next_seq(self, camera: str) -> int:
        """The next ``seq`` for ``camera``: 1, 2, ... persisted across restarts. While the disk
        refuses writes the numbering goes on in memory, so subscribers still see no gap."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO counters(name, value) VALUES (?, 1) ON CONFLICT(name) "
                    "DO UPDATE SET value = value + 1",
                    (f"seq:{camera}",),
                )
                row = self._db.execute("SELECT value FROM counters WHERE name = ?", (f"seq:{camera}",))
                value = max(int(row.fetchone()[0]), self._seqs.get(camera, 0) + 1)
            except sqlite3.Error:
                value = self._seqs.get(camera, 0) + 1
            self._seqs[camera] = value
            return value

    def append(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Store a message; returns its id. Drops the oldest beyond the bound (counted).
        Raises :class:`SpoolWriteError` when the disk refuses the write (full, read-only)."""
        try:
            return self._append(topic, payload, qos, retain)
        except sqlite3.Error as e:
            self.write_failures += 1
            raise SpoolWriteError(str(e)) from e

    def _append(self, topic: str, payload: bytes, qos: int, retain: bool) -> int:
        with self._lock, self._db:
            cur = self._db.execute(
                "INSERT INTO messages(topic, payload, qos, retain) VALUES (?, ?, ?, ?)",
                (topic, payload, qos, int(retain)),
            )
            self._depth += 1
            excess = self._depth - self.max_messages
            if excess > 0:
                self._depth -= excess
                self._db.execute(
                    "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._db.execute(
                    "INSERT INTO counters(name, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + ?",
                    (excess, excess),
                )
            return int(cur.lastrowid or 0)

    def pending(self, after_id: int = 0, limit: int = 100) -> list[SpooledMessage]:
        """The oldest unacknowledged messages with ``id > after_id``, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [SpooledMessage(r[0], r[1], bytes(r[2]), r[3], bool(r[4])) for r in rows]

    def ack(self, message_id: int) -> None:
        with self._lock:
            try:
                deleted = self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,)).rowcount
            except sqlite3.Error:
                return  # the disk refuses even this: the row stays and is sent again (at least once)
            self._depth -= max(0, deleted)

    @property
    def depth(self) -> int:
        with self._lock:
            return self._depth

    @property
    def dropped(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _salvage(path: Path) -> tuple[list[tuple[str, bytes, int, int]], list[tuple[str, int]]]:
    """The messages (in order) and counters of a damaged spool that still read, up to the first
    unreadable row of each table; nothing if the file is not a database at all."""
    rows: list[tuple[str, bytes, int, int]] = []
    counters: list[tuple[str, int]] = []
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError:
        return rows, counters
    try:
        for query, out in (
            ("SELECT topic, payload, qos, retain FROM messages ORDER BY id", rows),
            ("SELECT name, value FROM counters", counters),
        ):
            try:
                for row in db.execute(query):
                    out.append(tuple(row))  # type: ignore[arg-type]
            except sqlite3.DatabaseError:
                continue  # the rest of this table is unreadable
    finally:
        db.close()
    return rows, counters
