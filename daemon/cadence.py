"""Keeping time: which packets a camera decodes, and which decoded frames become ticks.

A camera promises one result per ``interval_s``. Two things decide whether it keeps that promise
and what it costs:

* :class:`DecodePlan` picks the packets worth decoding. Key frames alone are the cheapest source
  of pictures, and enough when they come at least once per interval. When the GOP is longer, the
  frames after each key frame are decoded only as far as the interval needs (a P frame cannot be
  decoded without every frame since its key frame, so it is a run from the key frame, never a
  frame in the middle), and the rest of the GOP is not decoded at all. ``auto`` measures the GOP
  from the key frames' timestamps and chooses; ``keyframes`` and ``all`` force one way. B-frames
  change nothing here: a key frame decodes alone whether or not the frames after it reorder, and
  the reader drains what the decoder holds back when a run ends (:func:`~fer_edge.daemon.ingest.
  planned_frames`). ``auto`` decodes every frame only when packets carry no timestamps (no GOP
  can be measured), and :attr:`DecodePlan.why` says so. A box too loaded to decode the runs
  sheds them (:attr:`DecodePlan.shed`, set by the daemon's
  :class:`~fer_edge.daemon.analysis.RunShedding`): key frames alone, a result a GOP, which costs
  a twentieth of a run and is more than an overloaded box's share of the runs gave.
* :class:`TickSampler` turns decoded frames into ticks on a fixed schedule: the first frame
  decoded at or after each scheduled time (less half the usual spacing of decoded frames) is
  analysed as soon as it is decoded. A 1 s GOP and a 1 s tick no longer beat against each other
  (a timer that wakes just before the key frame finds nothing new and loses the second), and the
  result leaves as soon as its frame is decoded rather than whenever a timer next fires. The
  schedule is kept on the box's monotonic clock, not in stream time: a server that bursts its
  buffered GOP at connection, or a first key frame without a timestamp, must not make a burst of
  results.
"""

from __future__ import annotations

import statistics
from collections import deque
from typing import Literal

DecodeMode = Literal["auto", "keyframes", "all"]
Doing = Literal["measuring", "keyframes", "partial", "all"]
UNTIMED_PACKETS = 50  # this many packets in a row without a timestamp: no GOP can be measured

KEYFRAMES_ENOUGH = 1.05  # key frames every <= 1.05 intervals: key frames alone keep time
RUN_MARGIN = 0.85  # a partial run stops (GOP - 0.85 interval) after its key frame: gaps < interval
RECENT_GOPS = 8
LONGEST_GOP_S = 60.0  # beyond: a gap in the stream, not a GOP
RESTART_GAP_INTERVALS = 5.0  # no frame for this many intervals: the schedule starts over


class DecodePlan:
    """Decide, packet by packet, whether to decode (see the module docstring)."""

    def __init__(self, mode: DecodeMode, interval_s: float) -> None:
        self.mode = mode
        self.interval_s = interval_s
        self._untimed = 0  # packets in a row without a timestamp
        # frames the decoder holds back to reorder B-frames (its has_b_frames): a run's last
        # frames come out only when it ends, so a run on such a stream goes on that much longer
        self.reorder_frames = 0
        self._gops: deque[float] = deque(maxlen=RECENT_GOPS)
        self._last_key: float | None = None
        self._last_packet: float | None = None
        self._periods: deque[float] = deque(maxlen=16)  # between consecutive packets
        self._chain = False  # every packet since the last key frame was decoded
        self.shed = False  # the box is overloaded: a long GOP's runs are not decoded, its key frames are
        self.packets = 0
        self.decoded = 0

    @property
    def gop_s(self) -> float | None:
        """The longest of the recent GOPs (the one a partial run must cover), if measured."""
        return max(self._gops) if self._gops else None

    @property
    def doing(self) -> Doing:
        """What the plan does now (``auto`` says which of the others it chose)."""
        if self.mode != "auto":
            return self.mode
        if self._untimed >= UNTIMED_PACKETS:
            return "all"
        if self.gop_s is None:
            return "measuring"
        return "partial" if self.runs and not self.shed else "keyframes"

    @property
    def why(self) -> str:
        """What :attr:`doing` does and why, in a line (stats, and the log when it changes)."""
        doing, gop = self.doing, self.gop_s
        if self.mode != "auto":
            return f"decode: {self.mode} (config)"
        if doing == "all":
            return "packets carry no timestamps, so no GOP can be measured: every frame is decoded"
        if doing == "measuring" or gop is None:
            return "measuring the GOP: key frames alone until the second key frame"
        if doing == "keyframes" and self.runs:
            return (
                f"a key frame every {gop:.2f} s, over the {self.interval_s:g} s interval, but the box "
                "is overloaded: key frames alone (a result a GOP) until it has time for the runs"
            )
        if doing == "keyframes":
            return f"a key frame every {gop:.2f} s, at least once per interval: key frames alone"
        return (
            f"a key frame every {gop:.2f} s, over the {self.interval_s:g} s interval: the first "
            f"{self._run_s():.2f} s after each key frame"
        )

    def _run_s(self) -> float:
        """How long after its key frame a partial run goes on (stream seconds)."""
        period = statistics.median(self._periods) if self._periods else 0.0
        held_back = 2 * self.reorder_frames * period  # output late by this, and the packets' times early
        return max(0.0, (self.gop_s or 0.0) - RUN_MARGIN * self.interval_s + held_back)

    @property
    def runs(self) -> bool:
        """Whether the plan decodes runs after key frames now, or would but for shedding."""
        gop = self.gop_s
        timed = self._untimed < UNTIMED_PACKETS
        return self.mode == "auto" and timed and gop is not None and gop > self.interval_s * KEYFRAMES_ENOUGH

    @property
    def spacing_s(self) -> float:
        """The usual time between decoded frames (0 until measured): what a tick may come early
        by, at most half of it, and still stand for its slot."""
        if self.doing == "keyframes":
            return self.gop_s or 0.0
        return statistics.median(self._periods) if self._periods else 0.0

    @property
    def decoded_fraction(self) -> float:
        return self.decoded / self.packets if self.packets else 0.0

    def restart(self) -> None:
        """A new connection: timestamps start over, and so does the chain of references."""
        self._last_key, self._last_packet, self._chain = None, None, False

    def decide(self, is_key: bool, t: float | None) -> bool:
        """Whether to decode the packet with key flag ``is_key`` and stream time ``t`` (s)."""
        self.packets += 1
        self._untimed = 0 if t is not None else self._untimed + 1
        if t is not None:
            if self._last_packet is not None and 0 < t - self._last_packet <= LONGEST_GOP_S:
                self._periods.append(t - self._last_packet)
            self._last_packet = t
        decode = self._decide(is_key, t)
        self._chain = decode if is_key else self._chain and decode
        self.decoded += decode
        return decode

    def _decide(self, is_key: bool, t: float | None) -> bool:
        if is_key:
            if t is not None and self._last_key is not None:
                gop = t - self._last_key
                if 0 < gop <= LONGEST_GOP_S:
                    self._gops.append(gop)
            self._last_key = t
            return True
        if self.mode == "all":
            return True
        if self.mode == "keyframes" or not self._chain:
            return False  # without its references, a P frame decodes to garbage
        doing = self.doing
        if doing == "all":
            return True
        if doing in ("measuring", "keyframes"):
            # until the second key frame tells the GOP, key frames alone: a GOP that turns out
            # long loses a tick or two at start; decoding every frame to find out cost as much
            # as a minute of key frames
            return False
        if t is None or self._last_key is None:
            return True  # a run whose times are unknown goes on to the next key frame
        return t - self._last_key <= self._run_s()


class TickSampler:
    """Pick the decoded frames that become ticks: one per ``interval_s`` (monotonic seconds)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._anchor: float | None = None  # when slot 0 was
        self._next_slot = 0
        self._last_t: float | None = None
        self.missed = 0  # scheduled slots that got no frame (a later frame stood for them)

    def take(self, t: float, spacing_s: float = 0.0) -> bool:
        """Whether the frame decoded at ``t`` (monotonic seconds) is a tick. ``spacing_s``: the
        usual time between decoded frames (:attr:`DecodePlan.spacing_s`); the frame nearest a
        slot may come up to half of it early (a key frame every 0.96 s still keeps time)."""
        last, self._last_t = self._last_t, t
        if last is not None and not 0 <= t - last <= RESTART_GAP_INTERVALS * self.interval_s:
            self._anchor = None  # the stream paused (an outage is told by status, not here)
        if self._anchor is None:
            self._anchor, self._next_slot = t, 1
            return True
        tolerance = min(self.interval_s, spacing_s) / 2.0
        if t < self._anchor + self._next_slot * self.interval_s - tolerance:
            return False
        # the next slot is the first one this frame does not already stand for
        reached = int((t + tolerance - self._anchor) // self.interval_s)
        self.missed += max(0, reached - self._next_slot)
        self._next_slot = reached + 1
        return True
