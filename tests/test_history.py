"""The per-minute history on disk: what it counts, how buckets add up, that it lasts across a
restart, how it stays bounded, and the HTTP API over it (a real server on loopback)."""

from __future__ import annotations

import http.client
import json
import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from fer_edge.daemon.config import HttpConfig
from fer_edge.daemon.history import HistoryStore, bucket_starts
from fer_edge.daemon.history_api import BadQuery, history_csv, history_document, parse_time
from fer_edge.daemon.payloads import iso_ms
from fer_edge.daemon.pipeline import FaceResult
from fer_edge.daemon.web import WebBackend, WebServer
from tests.servers import free_port

T0 = datetime(2026, 11, 30, 10, 0).timestamp()  # a local hour's start


def face(face_id: int, emotion: str | None = "happy", attention: bool | None = True) -> FaceResult:
    return FaceResult(face_id, (0, 0, 40, 40), emotion, 0.9 if emotion else None, {}, attention=attention)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    history = HistoryStore(tmp_path / "history.sqlite3")
    yield history
    history.close()


def test_a_minute_counts_ticks_people_emotions_and_attention(store: HistoryStore) -> None:
    store.record("door", T0 + 1, [face(1)], 1.0, started={1})
    store.record("door", T0 + 2, [face(1), face(2, "sad", attention=False)], 1.0, started={2})
    store.record("door", T0 + 3, [face(1, None, None)], 1.0, started=set())  # too small: no emotion
    store.flush(T0 + 60)
    buckets = store.series("door", T0, T0 + 120, "minute")
    assert [b["start"] for b in buckets] == [iso_ms(T0), iso_ms(T0 + 60)]
    first, second = buckets
    assert first["ticks"] == 3 and first["analysed_s"] == 3.0 and first["people"] == 2
    assert first["person_s"] == 4.0  # 1 + 2 + 1 faces, one second each
    assert first["emotions"] == pytest.approx({"happy": 2 / 3, "sad": 1 / 3} | dict.fromkeys(
        ("angry", "disgust", "fear", "surprise", "neutral"), 0.0), abs=1e-4)  # fmt: skip
    assert first["attention"] == pytest.approx(2 / 3, abs=1e-4)
    # nothing analysed in the second minute: no data, not zero
    assert second == {"start": iso_ms(T0 + 60), "analysed_s": 0, "ticks": 0, "people": None,
                      "person_s": None, "attention": None, "emotions": None}  # fmt: skip


def test_an_empty_analysed_minute_is_zero_people_not_missing(store: HistoryStore) -> None:
    store.record("door", T0 + 5, [], 1.0, started=set())
    store.flush(T0 + 10)
    (bucket,) = store.series("door", T0, T0 + 60, "minute")
    assert bucket["analysed_s"] == 1.0 and bucket["people"] == 0 and bucket["emotions"] is None


def test_someone_who_stays_three_minutes_is_one_person_in_the_hour(store: HistoryStore) -> None:
    for second in range(0, 180, 10):
        store.record("door", T0 + second, [face(7)], 10.0, started={7} if second == 0 else set())
    store.record("door", T0 + 200, [face(7), face(8)], 10.0, started={8})
    store.flush(T0 + 300)
    minutes = store.series("door", T0, T0 + 240, "minute")
    assert [b["people"] for b in minutes] == [1, 1, 1, 2]  # 7 carried on, then 8 arrives
    (hour,) = store.series("door", T0, T0 + 3600, "hour")
    assert hour["people"] == 2 and hour["ticks"] == 19
    # someone there when an hour starts counts in that hour too, once (carried into its first minute)
    for second in range(3590, 3800, 10):
        store.record("door", T0 + second, [face(9)], 10.0, started={9} if second == 3590 else set())
    store.flush(T0 + 3900)
    ten, eleven = store.series("door", T0, T0 + 7200, "hour")
    assert ten["people"] == 3 and eleven["people"] == 1


def test_history_lasts_across_a_restart_and_a_minute_split_by_it_adds_up(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    first = HistoryStore(path)
    first.record("door", T0 + 1, [face(1)], 1.0, started={1})
    first.record_visit("door", {"event_type": "end", "id": 1, "last_seen": iso_ms(T0 + 1), "dwell_s": 1.0})
    first.close()
    second = HistoryStore(path)
    second.record("door", T0 + 30, [face(1, "sad")], 1.0, started={1})  # ids start again
    second.flush(T0 + 40)
    (bucket,) = second.series("door", T0, T0 + 60, "minute")
    assert bucket["ticks"] == 2 and bucket["people"] == 2
    assert bucket["emotions"]["happy"] == 0.5 and bucket["emotions"]["sad"] == 0.5
    assert [v["id"] for v in second.visits("door", T0, T0 + 60, 10)] == [1]
    second.close()


def test_flushing_twice_does_not_count_twice(store: HistoryStore) -> None:
    store.record("door", T0 + 1, [face(1)], 1.0, started={1})
    store.flush(T0 + 2)
    store.record("door", T0 + 2, [face(1)], 1.0, started=set())
    store.flush(T0 + 3)
    store.flush(T0 + 4)
    (bucket,) = store.series("door", T0, T0 + 60, "minute")
    assert bucket["ticks"] == 2 and bucket["people"] == 1


def test_visits_come_newest_first_per_camera(store: HistoryStore) -> None:
    for i in range(5):
        store.record_visit("door", {"event_type": "end", "id": i, "last_seen": iso_ms(T0 + i)})
    store.record_visit("hall", {"event_type": "end", "id": 99, "last_seen": iso_ms(T0)})
    store.flush(T0 + 10)
    assert [v["id"] for v in store.visits("door", T0, T0 + 60, 3)] == [4, 3, 2]
    assert [v["id"] for v in store.visits("door", T0 + 2, T0 + 4, 10)] == [3, 2]
    assert store.visits("nowhere", T0, T0 + 60, 3) == []


def test_people_today_starts_again_at_midnight_and_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    now = time.time()
    store = HistoryStore(path)
    store.record("door", now - 2, [face(1)], 1.0, started={1})
    store.record("door", now - 1, [face(1), face(2)], 1.0, started={2})
    assert store.people_today("door") == 2
    store.close()
    again = HistoryStore(path)
    assert again.people_today("door") == 0  # nothing this run yet ...
    again.record("door", now, [face(1)], 1.0, started={1})
    assert again.people_today("door") == 3  # ... then today's two from disk, and the new one
    yesterday = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0).timestamp() - 10
    other = HistoryStore(tmp_path / "other.sqlite3")
    other.record("door", yesterday, [face(5)], 1.0, started={5})
    assert other.people_today("door") == 0  # counted for yesterday
    again.close()
    other.close()


def test_old_rows_go_after_history_days(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "history.sqlite3", days=2)
    for day in range(5):
        store.record("door", T0 + day * 86400, [face(1)], 1.0, started={1})
        store.record_visit("door", {"event_type": "end", "id": day, "last_seen": iso_ms(T0 + day * 86400)})
    store.flush(T0 + 4 * 86400 + 60)
    kept = [b for b in store.series("door", T0 - 86400, T0 + 5 * 86400, "day") if b["ticks"]]
    assert [b["start"][:10] for b in kept] == [
        datetime.fromtimestamp(T0 + d * 86400).strftime("%Y-%m-%d") for d in (3, 4)
    ]
    assert [v["id"] for v in store.visits("door", 0, T0 + 5 * 86400, 10)] == [4, 3]
    store.close()


def test_the_size_bound_deletes_the_oldest_days_and_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path, days=3650, max_mb=0.25)
    for minute in range(20 * 1440):  # 20 days of one camera, a face every minute
        store.record("door", T0 + minute * 60, [face(minute % 3)], 60.0, started={minute % 3})
        if minute % 1440 == 1439:
            store.flush(T0 + minute * 60)
    store.flush(T0 + 20 * 86400)
    assert store.pruned_days > 0
    assert store._used_bytes() <= 0.25 * 1024 * 1024
    assert path.stat().st_size <= 0.35 * 1024 * 1024  # the freed pages went back (plus the WAL's share)
    days = [b for b in store.series("door", T0, T0 + 20 * 86400, "day") if b["ticks"]]
    last = datetime.fromtimestamp(T0 + (20 * 1440 - 1) * 60).strftime("%Y-%m-%d")
    assert days[-1]["start"][:10] == last
    assert len(days) < 20 and days[-2]["ticks"] == 1440  # the newest kept whole, the oldest gone
    store.close()


def test_a_corrupt_history_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    store = HistoryStore(path)
    store.record("door", T0, [face(1)], 1.0, started={1})
    store.flush(T0 + 1)
    assert store.series("door", T0, T0 + 60, "minute")[0]["people"] == 1
    assert len(list(tmp_path.glob("history.sqlite3.corrupt-*"))) == 1
    store.close()


def test_days_follow_the_local_clock_across_daylight_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        start = datetime(2026, 10, 24, 12, 0).timestamp()
        starts = bucket_starts(start, start + 3 * 86400, "day")
        assert [datetime.fromtimestamp(s).strftime("%d %H:%M") for s in starts] == [
            "24 00:00", "25 00:00", "26 00:00", "27 00:00"]  # fmt: skip
        assert starts[2] - starts[1] == 25 * 3600  # the clocks went back on the 25th
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_query_times_and_their_refusals() -> None:
    now = 1_800_000_000.0
    assert parse_time("from", "-24h", now) == now - 86400
    assert parse_time("from", "-90m", now) == now - 5400
    assert parse_time("from", "1799990000", now) == 1799990000
    assert (
        parse_time("to", "2027-01-15T08:00:00Z", now)
        == datetime.fromisoformat("2027-01-15T08:00:00+00:00").timestamp()
    )
    for bad in ("yesterday", "nan", "-3w"):
        with pytest.raises(BadQuery, match="from"):
            parse_time("from", bad, now)


def test_the_document_and_its_csv(store: HistoryStore) -> None:
    store.record("door", T0 + 1, [face(1)], 1.0, started={1})
    store.flush(T0 + 2)
    query = {"from": [str(T0)], "to": [str(T0 + 120)], "camera": ["door"]}
    document = history_document(store, query, ["door", "hall"], now=T0 + 200)
    assert document["step"] == "minute" and len(document["cameras"]["door"]) == 2
    rows = history_csv(document).decode().splitlines()
    assert rows[0].startswith("camera,start,analysed_s,ticks,people,person_s,attention,angry,")
    assert rows[1].split(",")[:5] == ["door", iso_ms(T0), "1.0", "1", "1"]
    assert rows[2] == f"door,{iso_ms(T0 + 60)},0,0,,,,,,,,,,"  # no data: empty cells
    with pytest.raises(BadQuery, match="step"):
        history_document(store, {**query, "step": ["week"]}, ["door"])
    with pytest.raises(BadQuery, match="before"):
        history_document(store, {"from": [str(T0)], "to": [str(T0)]}, ["door"])
    with pytest.raises(BadQuery, match="buckets"):
        history_document(store, {"from": ["0"], "to": [str(T0)], "step": ["minute"]}, ["door"])
    with pytest.raises(LookupError, match="nowhere"):
        history_document(store, {"camera": ["nowhere"]}, ["door"])


def test_the_http_api_answers_json_csv_and_refuses_bad_queries(store: HistoryStore) -> None:
    now = time.time()
    store.record("door", now - 30, [face(1)], 1.0, started={1})
    store.record_visit("door", {"event_type": "end", "id": 1, "last_seen": iso_ms(now - 30), "dwell_s": 1.0})
    store.flush(now)
    backend = WebBackend(
        state=dict, snapshot=lambda _c: None, cameras=lambda: ["door"], analyze=lambda _i: {},
        healthy=lambda: True, metrics=None, history=store,
    )  # fmt: skip
    server = WebServer(HttpConfig(port=free_port(), token="a-token-of-twenty-chars"), backend)
    server.start()

    def get(path: str, token: bool = True) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        connection.request(
            "GET", path, headers={"Authorization": "Bearer a-token-of-twenty-chars"} if token else {}
        )
        response = connection.getresponse()
        answer = response.status, dict(response.getheaders()), response.read()
        connection.close()
        return answer

    try:
        status, _, body = get("/api/history?from=-1h")
        document = json.loads(body)
        assert status == 200 and document["step"] == "minute" and len(document["cameras"]["door"]) in (60, 61)
        assert sum(b["people"] or 0 for b in document["cameras"]["door"]) == 1
        status, headers, body = get("/api/history?from=-1h&format=csv&camera=door")
        assert status == 200 and headers["Content-Type"].startswith("text/csv")
        assert body.decode().count("\n") == len(document["cameras"]["door"]) + 1
        status, _, body = get("/api/tracks?camera=door")
        assert status == 200 and [v["id"] for v in json.loads(body)["cameras"]["door"]] == [1]
        for path, code in [
            ("/api/history?from=soon", 400), ("/api/history?step=week", 400),
            ("/api/history?format=xml", 400), ("/api/tracks?limit=0", 400),
            ("/api/history?camera=nowhere", 404),
        ]:  # fmt: skip
            status, _, body = get(path)
            assert status == code and json.loads(body)["error"], path
        status, headers, _ = get("/api/history", token=False)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"]
        assert headers["X-Content-Type-Options"] == "nosniff"  # the refusal carries them too
    finally:
        server.stop()
