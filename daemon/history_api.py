"""``/api/history`` and ``/api/tracks``: their query parameters, checked, and their answers.

Times (``from``, ``to``) are seconds since the epoch, ISO 8601 (``2026-12-01T08:00:00Z``; without
an offset, the box's local time) or relative to now (``-90m``, ``-24h``, ``-7d``). By default the
last 24 hours; the step follows the span (up to 6 h: minutes, up to 8 days: hours, beyond: days)
unless ``step`` says. ``format=csv`` gives the history as one row per camera and bucket, for
spreadsheets. A parameter that does not parse is a 400 naming it.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from datetime import datetime
from typing import Any

from fer_edge.daemon.history import STEPS, HistoryStore, Step
from fer_edge.daemon.payloads import iso_ms
from fer_edge.labels import LABELS

DEFAULT_SPAN_S = 86400.0
MAX_VISITS = 1000
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CSV_COLUMNS = ("camera", "start", "analysed_s", "ticks", "people", "person_s", "attention", *LABELS)


class BadQuery(ValueError):
    """A query parameter that cannot be used; its message names it (answered as a 400)."""


def parse_time(name: str, text: str, now: float) -> float:
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative:
        return now - float(relative.group(1)) * _UNIT_S[relative.group(2)]
    try:
        value = float(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise BadQuery(f"{name}={text!r}: use seconds since the epoch, ISO 8601 or -24h") from None
    if not math.isfinite(value):
        raise BadQuery(f"{name}={text!r}: not a time")
    return value


def time_range(query: dict[str, list[str]], now: float) -> tuple[float, float]:
    end = parse_time("to", query["to"][0], now) if "to" in query else now
    start = parse_time("from", query["from"][0], now) if "from" in query else end - DEFAULT_SPAN_S
    if start >= end:
        raise BadQuery("from must be before to")
    return start, end


def pick_step(query: dict[str, list[str]], start: float, end: float) -> Step:
    if "step" in query:
        step = query["step"][0]
        if step not in STEPS:
            raise BadQuery(f"step={step!r}: use one of {', '.join(STEPS)}")
        return step  # type: ignore[return-value]
    span = end - start
    return "minute" if span <= 6 * 3600 else "hour" if span <= 8 * 86400 else "day"


def pick_cameras(query: dict[str, list[str]], known: list[str]) -> list[str]:
    """The ``camera`` parameters (repeatable, or comma-separated); all cameras without one."""
    asked = [name for value in query.get("camera", []) for name in value.split(",") if name]
    for name in asked:
        if name not in known:
            raise LookupError(f"no such camera: {name}")
    return asked or known


def history_document(
    store: HistoryStore, query: dict[str, list[str]], known: list[str], now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    start, end = time_range(query, now)
    step = pick_step(query, start, end)
    cameras = pick_cameras(query, known)
    try:
        series = {name: store.series(name, start, end, step) for name in cameras}
    except ValueError as e:
        raise BadQuery(str(e)) from None
    return {"from": iso_ms(start), "to": iso_ms(end), "step": step, "cameras": series}


def history_csv(document: dict[str, Any]) -> bytes:
    """The history document as CSV: one row per camera and bucket; empty cells where no data."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for camera, buckets in document["cameras"].items():
        for b in buckets:
            shares = b["emotions"] or {}
            fixed = [b[key] for key in CSV_COLUMNS[1:7]]
            writer.writerow(
                [camera, *("" if v is None else v for v in fixed), *(shares.get(e, "") for e in LABELS)]
            )
    return out.getvalue().encode()


def tracks_document(
    store: HistoryStore, query: dict[str, list[str]], known: list[str], now: float | None = None
) -> dict[str, Any]:
    now = time.time() if now is None else now
    start, end = time_range(query, now)
    cameras = pick_cameras(query, known)
    text = query.get("limit", ["50"])[0]
    if not text.isdigit() or not 1 <= int(text) <= MAX_VISITS:
        raise BadQuery(f"limit={text!r}: use 1 to {MAX_VISITS}")
    visits = {name: store.visits(name, start, end, int(text)) for name in cameras}
    return {"from": iso_ms(start), "to": iso_ms(end), "cameras": visits}
