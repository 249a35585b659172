"""Visits from per-tick faces: start on the first tick, end ``track_end_s`` after the last, and a
summary made of the same per-tick results the emotions topic carries."""

from __future__ import annotations

from fer_edge.daemon.payloads import parse_iso
from fer_edge.daemon.pipeline import FaceResult
from fer_edge.daemon.visits import VisitTracker


def face(id_: int, emotion: str | None, score: float | None = 0.8) -> FaceResult:
    scores = {emotion: score} if emotion and score is not None else {}
    return FaceResult(id_, (10 * id_, 20, 60, 60), emotion, score if emotion else None, scores)


T0 = 1_800_000_000.0


def run(ticks: list[list[FaceResult]], tracker: VisitTracker) -> list[dict]:
    events = []
    for k, faces in enumerate(ticks):
        events += tracker.observe(faces, T0 + k)
    return events


def test_a_visit_starts_on_its_first_tick_and_ends_after_track_end_s() -> None:
    tracker = VisitTracker("box", "door", interval_s=1.0, track_end_s=3.0)
    ticks = [[], [face(4, "happy")], [face(4, "happy")], [face(4, "sad", 0.9)], [], [], [], [], []]
    events = run(ticks, tracker)
    assert [(e["event_type"], e["id"]) for e in events] == [("start", 4), ("end", 4)]
    start, end = events
    assert parse_iso(start["first_seen"]) == T0 + 1 and start["schema"] == 2
    assert parse_iso(end["last_seen"]) == T0 + 3
    assert end["dwell_s"] == 3.0  # ticks 1, 2 and 3, one second each
    assert end["ticks"] == 3 and end["reason"] == "left"
    assert end["emotions"] == {"happy": 0.6667, "sad": 0.3333} and end["dominant"] == "happy"
    assert end["strongest"]["emotion"] == "sad" and parse_iso(end["strongest"]["ts"]) == T0 + 3
    assert end["attention"] is None  # no tick could tell
    assert not tracker.open


def test_a_face_missed_for_less_than_track_end_s_stays_one_visit() -> None:
    tracker = VisitTracker("box", "door", interval_s=1.0, track_end_s=3.0)
    ticks = [[face(1, "neutral")], [], [], [face(1, "neutral")], [], [], [], []]
    events = run(ticks, tracker)
    assert [e["event_type"] for e in events] == ["start", "end"]
    assert events[1]["ticks"] == 2 and events[1]["dwell_s"] == 4.0


def test_two_faces_are_two_visits_and_too_small_ticks_count_for_dwell_not_for_emotions() -> None:
    tracker = VisitTracker("box", "hall", interval_s=1.0, track_end_s=2.0)
    a, b = 1, 2
    ticks = [[face(a, "angry")], [face(a, None), face(b, "surprise")], [face(b, "surprise")], [], [], []]
    events = run(ticks, tracker)
    ends = {e["id"]: e for e in events if e["event_type"] == "end"}
    assert set(ends) == {a, b}
    assert ends[a]["ticks"] == 2 and ends[a]["emotions"] == {"angry": 1.0} and ends[a]["dwell_s"] == 2.0
    assert ends[b]["dominant"] == "surprise" and ends[b]["dwell_s"] == 2.0


def test_a_visit_of_only_too_small_ticks_has_no_emotion() -> None:
    tracker = VisitTracker("box", "hall", interval_s=1.0, track_end_s=1.0)
    events = run([[face(9, None)], [], [], []], tracker)
    end = events[-1]
    assert end["event_type"] == "end" and end["emotions"] == {} and end["dominant"] is None
    assert end["strongest"] is None


def test_stopping_ends_every_open_visit() -> None:
    tracker = VisitTracker("box", "door", interval_s=0.5, track_end_s=3.0)
    run([[face(1, "happy"), face(2, "fear")]], tracker)
    ends = tracker.close_all()
    assert sorted(e["id"] for e in ends) == [1, 2] and all(e["reason"] == "shutdown" for e in ends)
    assert all(e["dwell_s"] == 0.5 for e in ends) and not tracker.open
