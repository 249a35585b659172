"""One reader thread per camera: PyAV decode, one tick frame at a time, reconnect with backoff.

Analysis wants one frame per interval, never a backlog: the reader decodes only the packets its
ticks need (:mod:`~fer_edge.daemon.cadence`) and keeps only the newest tick frame (as PyAV's frame
object: pixels are converted only when analysis takes it). RTSP goes over TCP with open/read
timeouts; a failed or ended stream is reopened with capped exponential backoff and jitter. Files
are paced to real time and loop, so a clip behaves like a camera. Status changes
(``streaming``/``reconnecting``/``stalled``) go to a callback.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import av
import numpy as np

from fer_edge.daemon.cadence import DecodeMode, DecodePlan, TickSampler
from fer_edge.daemon.config import CameraConfig
from fer_edge.daemon.redact import mask_url

logger = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], None]


@dataclass
class Frame:
    """A decoded frame chosen as a tick."""

    image: np.ndarray  # gray (H x W) uint8: the Y plane, no colour conversion needed
    wall_time: float  # time.time() when it was decoded
    number: int  # frames decoded since the reader started
    decode_ms: float  # decoding this frame's packet plus taking its luma plane
    video_range: bool = False  # luma in 16..235 (most H.264 cameras): crops are expanded to 0..255


class CameraReader(threading.Thread):
    """Decode one camera in the background (only the packets its ticks need) and hand each tick
    frame to :meth:`take`; ``on_tick`` is called when one is ready, from the reader's thread."""

    def __init__(
        self,
        name: str,
        config: CameraConfig,
        on_status: StatusCallback | None = None,
        rng: random.Random | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name=f"reader-{name}", daemon=True)
        self.camera = name
        self.config = config
        self._on_status = on_status or (lambda _camera, _status: None)
        self._on_tick = on_tick or (lambda: None)
        self._rng = rng or random.Random()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._tick: tuple[av.VideoFrame, float, int, float] | None = None  # frame, wall, number, ms
        self._decoded = 0
        self._status = ""
        self.plan = DecodePlan(config.decode, config.interval_s)
        self._doing = ""  # what the plan did when last logged
        self.sampler = TickSampler(config.interval_s)
        self.reconnects = 0
        self.overtaken = 0  # tick frames replaced by a newer one before analysis took them
        self.last_frame_monotonic = 0.0  # the last packet received: a stream that sends is alive

    # -- public -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    @property
    def missed_ticks(self) -> int:
        """Seconds of stream time that gave no result: no decoded frame stood for them, or
        analysis fell behind and a newer tick frame replaced one not yet analysed."""
        return self.sampler.missed + self.overtaken

    def take(self) -> Frame | None:
        """The tick frame decoded since the last call, converted to gray, or None."""
        with self._lock:
            tick, self._tick = self._tick, None
        if tick is None:
            return None
        frame, wall, number, decode_ms = tick
        start = time.perf_counter()
        gray, video_range = frame_luma(frame)
        return Frame(gray, wall, number, decode_ms + (time.perf_counter() - start) * 1000.0, video_range)

    def check_stall(self) -> None:
        """Mark the camera stalled when a connected stream delivered nothing for too long."""
        if (
            self._status == "streaming"
            and time.monotonic() - self.last_frame_monotonic > self.config.stall_timeout_s
        ):
            self._set_status("stalled")

    def stop(self) -> None:
        self._stop_event.set()

    # -- thread -----------------------------------------------------------------------------
    def run(self) -> None:
        delay = self.config.backoff_initial_s
        while not self._stop_event.is_set():
            try:
                got_frames = self._stream_once()
            except (av.error.FFmpegError, OSError, ValueError, StopIteration) as e:
                logger.warning("camera %s: %s", self.camera, mask_url(str(e)) or type(e).__name__)
                got_frames = False
            if self._stop_event.is_set():
                break
            if got_frames and self._is_file():
                delay = self.config.backoff_initial_s
                continue  # a file source loops like a camera that never ends
            delay = self.config.backoff_initial_s if got_frames else delay
            self.reconnects += 1
            self._set_status("reconnecting")
            wait = min(self.config.backoff_max_s, delay) * self._rng.uniform(0.8, 1.2)
            logger.info("camera %s: reconnecting in %.1f s", self.camera, wait)
            self._stop_event.wait(wait)
            delay = min(self.config.backoff_max_s, delay * 2)

    def _is_file(self) -> bool:
        return "://" not in self.config.url and not self.config.url.startswith("/dev/")

    def _open(self) -> av.container.InputContainer:
        url, options = self.config.url, {}
        if url.startswith(("rtsp://", "rtsps://")):
            options["rtsp_transport"] = self.config.rtsp_transport
        elif url.startswith("/dev/video"):
            return av.open(url, format="v4l2", timeout=self.config.open_timeout_s)
        # a silent stream is reported stalled after stall_timeout_s (check_stall) and dropped for
        # a reconnect only after twice that: a camera that pauses briefly is not cut off
        read_timeout = max(1.0, 2 * self.config.stall_timeout_s)
        return av.open(url, options=options, timeout=(self.config.open_timeout_s, read_timeout))

    def _stream_once(self) -> bool:
        """Decode until the stream ends, fails or the reader stops; True if any frame arrived."""
        got = False
        with self._open() as container:
            stream = container.streams.video[0]
            configure_decoder(stream, self.config.decode)
            self.plan.restart()  # stream timestamps start over; the tick schedule (wall clock) need not
            pace = _Pacer() if self._is_file() else None
            for frame, decode_ms in planned_frames(container, stream, self.plan, self._alive):
                if self._stop_event.is_set():
                    break
                if pace is not None:
                    pace.wait(frame, self._stop_event)
                self._offer(frame, decode_ms)
                if not got:
                    got = True
                    self._set_status("streaming")
                    logger.info(
                        "camera %s: streaming %dx%d from %s",
                        self.camera,
                        frame.width,
                        frame.height,
                        mask_url(self.config.url),
                    )
                elif self._status == "stalled":
                    self._set_status("streaming")
        return got

    def _alive(self) -> None:
        self.last_frame_monotonic = time.monotonic()  # a stream that sends packets is not stalled

    def _offer(self, frame: av.VideoFrame, decode_ms: float) -> None:
        """Count a decoded frame, and keep it if it is a tick."""
        self._decoded += 1
        if self.plan.doing != self._doing:
            self._doing = self.plan.doing
            if self._doing != "measuring":
                logger.info("camera %s: decoding %s: %s", self.camera, self._doing, self.plan.why)
        if not self.sampler.take(time.monotonic(), self.plan.spacing_s):
            return
        with self._lock:
            self.overtaken += self._tick is not None
            self._tick = (frame, time.time(), self._decoded, decode_ms)
        self._on_tick()

    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._on_status(self.camera, status)


def planned_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    plan: DecodePlan,
    on_packet: Callable[[], None] | None = None,
) -> Iterator[tuple[av.VideoFrame, float]]:
    """The frames of the packets ``plan`` decodes, each with its packet's decoding time in ms
    (network waits excluded); ``on_packet`` hears of every packet received, decoded or not.

    A stream with B-frames makes the decoder hold frames back to put them in display order: it
    gives a key frame out only once it has been fed the frames after it. When a run of decoded
    packets ends (after a key frame alone, or a partial run), whatever the decoder still holds is
    drained and the decoder reset, so each run's frames come out at once, whatever the stream's
    frame order, and nothing is decoded that the plan did not choose."""
    held = 0  # packets fed to the decoder that gave no frame yet
    for packet in container.demux(stream):
        if on_packet is not None:
            on_packet()
        if packet.size and not plan.decide(packet.is_keyframe, packet_seconds(packet)):
            if held:
                start = time.perf_counter()
                frames = drain_decoder(stream)
                elapsed = (time.perf_counter() - start) * 1000.0
                held = 0
                for frame in frames:
                    yield frame, elapsed
            continue
        start = time.perf_counter()
        frames = packet.decode()
        elapsed = (time.perf_counter() - start) * 1000.0
        held = max(0, held + (1 if packet.size else 0) - len(frames))
        plan.reorder_frames = int(getattr(stream.codec_context, "has_b_frames", 0) or 0)
        for frame in frames:
            yield frame, elapsed


def drain_decoder(stream: av.video.stream.VideoStream) -> list[av.VideoFrame]:
    """The frames the decoder holds back, then a reset so it takes new packets again."""
    context = stream.codec_context
    try:
        frames = list(context.decode(None))
    except av.error.FFmpegError:
        frames = []
    context.flush_buffers()
    return frames


def packet_seconds(packet: av.Packet) -> float | None:
    """A packet's stream time (presentation time; decoding time if it has none)."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return None
    return float(stamp * packet.time_base)


class _Pacer:
    """Release file frames at their presentation times, as a live camera would."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._first_pts: float | None = None

    def wait(self, frame: av.VideoFrame, stop: threading.Event) -> None:
        if frame.time is None:
            return
        now = time.monotonic()
        if self._start is None or self._first_pts is None:
            self._start, self._first_pts = now, frame.time
            return
        due = self._start + (frame.time - self._first_pts)
        if due > now:
            stop.wait(due - now)


_LUMA_FORMATS = {
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "nv12",
    "gray",
}
_AVCOL_RANGE_JPEG = 2


def configure_decoder(stream: av.video.stream.VideoStream, decode: DecodeMode) -> None:
    """``all``: let FFmpeg pick frame/slice threads so a 25 fps stream keeps up. Otherwise one
    thread: a few frames a second need no parallelism, decoder threads cost ~15% more CPU per
    frame, and frame threads would hold the last frames of a partial run inside the decoder
    until the next key frame. ``keyframes`` also skips non-key frames inside the decoder."""
    if decode == "all":
        stream.thread_type = "AUTO"
        return
    stream.thread_count = 1
    if decode == "keyframes":
        stream.codec_context.skip_frame = "NONKEY"


def frame_luma(frame: av.VideoFrame) -> tuple[np.ndarray, bool]:
    """The luma plane as a 2-D array (a copy, no colour conversion) and whether it is video range
    (16..235). Expanding the range is left to the face crops: a table lookup over a whole 1080p
    frame costs more than the copy, and the detector does not need it."""
    name = frame.format.name
    if name not in _LUMA_FORMATS:
        return frame.to_ndarray(format="gray"), False
    plane = frame.planes[0]
    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : frame.width]
    full = name.startswith("yuvj") or name == "gray" or getattr(frame, "color_range", 0) == _AVCOL_RANGE_JPEG
    return np.ascontiguousarray(rows), not full
