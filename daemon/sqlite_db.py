"""The daemon's SQLite files (the spool, the history): opened the same way, set aside the same way.

Both live in ``state_dir`` on a camera box's SD card, where a power cut can leave a half-written
page. A file that is not a sound database must not stop the daemon from starting: it is checked on
open (``quick_check``) and, if bad, renamed aside (``<name>.corrupt-<time>``, with its WAL) for a
person to look at, and a fresh one is made.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path


def open_database(path: Path, schema: str, first: str = "") -> sqlite3.Connection:
    """``path`` in WAL mode (readers never wait for the writer), checked; ``first`` runs before the
    schema (pragmas such as ``auto_vacuum`` that only take effect on a new file). Raises
    :class:`sqlite3.DatabaseError` when the file is not a sound database."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    try:
        if first:
            db.executescript(first)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(schema)
        check = db.execute("PRAGMA quick_check").fetchone()
        if not check or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def set_aside(path: Path) -> Path:
    """Rename a bad database (and its WAL and shared-memory files) out of the way; returns the
    new name of the main file."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{path}{suffix}")
        if part.exists():
            part.rename(Path(f"{aside}{suffix}"))
    return aside
