"""Which packets a camera decodes, and which frames become ticks (daemon/cadence.py)."""

from __future__ import annotations

import itertools

import pytest

from fer_edge.daemon.cadence import DecodePlan, TickSampler


def _stream(seconds: float, fps: int, gop_s: float) -> list[tuple[bool, float]]:
    """(is key frame, stream time) of each packet of a camera stream."""
    gop = round(fps * gop_s)
    return [(i % gop == 0, i / fps) for i in range(round(seconds * fps))]


def _run(plan: DecodePlan, sampler: TickSampler, packets: list[tuple[bool, float]]) -> list[float]:
    """Feed packets in real time; the stream times of the frames that became ticks."""
    ticks = []
    for is_key, t in packets:
        if plan.decide(is_key, t) and sampler.take(t, plan.spacing_s):
            ticks.append(t)
    return ticks


@pytest.mark.parametrize("gop_s", [0.5, 0.96, 1.0, 2.0, 2.5, 4.0])
def test_auto_keeps_one_tick_per_second_whatever_the_gop(gop_s: float) -> None:
    plan, sampler = DecodePlan("auto", 1.0), TickSampler(1.0)
    ticks = _run(plan, sampler, _stream(60, 25, gop_s))
    # once the second key frame has told the GOP: one result a second, never a second without one
    measured = [t for t in ticks if t >= gop_s]
    rate = (len(measured) - 1) / (measured[-1] - measured[0])
    assert 0.95 <= rate <= 1.05, (gop_s, rate)
    gaps = [b - a for a, b in itertools.pairwise(measured)]
    assert max(gaps) < 2.0, gaps
    assert plan.gop_s == pytest.approx(gop_s, abs=0.05)
    assert sampler.missed <= max(0, round(gop_s) - 1)  # the first GOP: key frames alone


def test_auto_decodes_key_frames_alone_when_they_keep_time() -> None:
    plan = DecodePlan("auto", 1.0)
    _run(plan, TickSampler(1.0), _stream(30, 25, 1.0))
    assert plan.doing == "keyframes"
    assert plan.decoded_fraction < 0.05  # key frames alone, from the start


def test_auto_decodes_only_the_start_of_long_gops() -> None:
    plan = DecodePlan("auto", 1.0)
    _run(plan, TickSampler(1.0), _stream(60, 25, 2.0))
    assert plan.doing == "partial"
    # a run of (2 - 0.85) s of each 2 s GOP: well under all frames, well over key frames alone
    assert 0.5 < plan.decoded_fraction < 0.65, plan.decoded_fraction


def test_ticks_on_a_2s_gop_are_evenly_spaced() -> None:
    plan, sampler = DecodePlan("auto", 1.0), TickSampler(1.0)
    ticks = _run(plan, sampler, _stream(30, 25, 2.0))[3:]  # once the GOP is measured
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) <= 1.05 and min(gaps) >= 0.95, gaps


def test_keyframes_mode_on_a_long_gop_gives_one_tick_per_gop() -> None:
    plan, sampler = DecodePlan("keyframes", 1.0), TickSampler(1.0)
    ticks = _run(plan, sampler, _stream(30, 25, 2.0))
    assert len(ticks) == 15
    assert sampler.missed >= 13  # it says it misses seconds


def test_a_frame_without_its_references_is_never_decoded() -> None:
    """After a skipped packet the chain is broken until the next key frame, whatever the plan."""
    plan = DecodePlan("auto", 1.0)
    for is_key, t in _stream(10, 10, 2.0):
        plan.decide(is_key, t)
    assert plan.doing == "partial"
    plan.restart()  # a reconnect that starts mid-GOP
    assert not plan.decide(False, 100.0)
    assert plan.decide(True, 100.5)
    assert plan.decide(False, 100.6)


def test_only_a_stream_without_timestamps_is_decoded_whole_and_the_plan_says_why() -> None:
    plan = DecodePlan("auto", 1.0)
    decided = [plan.decide(k, None) for k, _t in _stream(10, 25, 1.0)]
    assert plan.doing == "all" and "no timestamps" in plan.why
    assert all(decided[60:])  # key frames alone until it is clear no GOP can be measured
    timed = DecodePlan("auto", 1.0)
    _run(timed, TickSampler(1.0), _stream(10, 25, 2.0))
    assert timed.doing == "partial" and "first 1.15 s after each key frame" in timed.why


def test_all_mode_at_25_fps_ticks_every_25th_frame() -> None:
    plan, sampler = DecodePlan("all", 1.0), TickSampler(1.0)
    ticks = _run(plan, sampler, _stream(20, 25, 2.0))
    assert [round(t, 2) for t in ticks] == [float(i) for i in range(20)]


def test_a_burst_of_buffered_frames_makes_one_tick() -> None:
    """A server that sends its buffered GOP at once at connection: one result, not three."""
    sampler = TickSampler(1.0)
    burst = [sampler.take(100.0 + i * 1e-4) for i in range(70)]
    assert burst.count(True) == 1
    assert sampler.take(101.0)


def test_a_pause_starts_the_schedule_again_without_counting_misses() -> None:
    sampler = TickSampler(1.0)
    for i in range(10):
        sampler.take(float(i), 1.0)
    assert sampler.take(30.0, 1.0)
    assert sampler.missed == 0
    assert not sampler.take(30.3, 1.0) and sampler.take(31.0, 1.0)


def test_a_shed_plan_decodes_a_long_gops_key_frames_alone_says_why_and_takes_the_runs_back() -> None:
    plan, sampler = DecodePlan("auto", 1.0), TickSampler(1.0)
    packets = _stream(90, 25, 2.0)
    _run(plan, sampler, packets[: 30 * 25])
    assert plan.doing == "partial" and plan.runs
    plan.shed = True  # the box is overloaded
    assert plan.doing == "keyframes" and plan.runs and "overloaded" in plan.why
    before = plan.decoded
    ticks = _run(plan, sampler, packets[30 * 25 : 60 * 25])
    assert plan.decoded - before == 15  # the key frames of 30 s of a 2 s GOP, nothing else
    assert len(ticks) == 15  # a result a GOP
    plan.shed = False
    assert plan.doing == "partial"
    ticks = _run(plan, sampler, packets[60 * 25 :])[1:]  # the first GOP waits for its key frame
    assert 28 <= len(ticks) <= 30  # one a second again


def test_a_plan_whose_key_frames_keep_time_has_no_runs_to_shed() -> None:
    plan = DecodePlan("auto", 1.0)
    _run(plan, TickSampler(1.0), _stream(10, 25, 1.0))
    plan.shed = True
    assert not plan.runs and plan.doing == "keyframes" and "overloaded" not in plan.why
    assert not DecodePlan("keyframes", 1.0).runs and not DecodePlan("all", 1.0).runs
