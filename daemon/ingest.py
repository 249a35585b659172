"""One reader thread per camera: PyAV decode, one tick frame at a time, reconnect with backoff.

Analysis wants one frame per interval, never a backlog: the reader decodes only the packets its
ticks need (:mod:`~fer_edge.daemon.cadence`, :mod:`~fer_edge.daemon.decode`) and keeps only the
newest tick frame (as PyAV's frame object, or a key frame still compressed: pixels are made only
when analysis takes it). RTSP goes over TCP with open/read timeouts; a failed or ended stream is
reopened with capped exponential backoff and jitter. Files are paced to real time and loop, so a
clip behaves like a camera. Status changes (``streaming``/``reconnecting``/``stalled``) go to a
callback.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from fer_edge.daemon.cadence import DecodePlan, TickSampler
from fer_edge.daemon.config import CameraConfig
from fer_edge.daemon.decode import (
    PendingKeyFrame,
    SharedDecoder,
    configure_decoder,
    frame_luma,
    planned_frames,
)
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
        # the newest tick: frame (or key frame still to decode), wall time, number, decode ms
        self._tick: tuple[av.VideoFrame | PendingKeyFrame, float, int, float] | None = None
        self._decoder = SharedDecoder(name)  # a pending key frame is decoded by whoever takes it
        self._decoded = 0
        self._status = ""
        self.plan = DecodePlan(config.decode, config.interval_s)
        self._doing = ""  # what the plan did when last logged
        self._shed = False  # whether the plan was shedding runs then
        self.sampler = TickSampler(config.interval_s)
        self.reconnects = 0
        self.overtaken = 0  # tick frames replaced by a newer one before analysis took them
        self.undecodable = 0  # pending key frames whose decoder had gone (a reconnect) or that failed
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
        analysis fell behind and a newer tick frame replaced one not yet analysed, or a key frame
        kept for analysis could not be decoded when it was taken."""
        return self.sampler.missed + self.overtaken + self.undecodable

    def take(self) -> Frame | None:
        """The tick frame decoded since the last call, converted to gray, or None."""
        with self._lock:
            tick, self._tick = self._tick, None
        if tick is None:
            return None
        frame, wall, number, decode_ms = tick
        if isinstance(frame, PendingKeyFrame):
            decoded = frame.decode()
            if decoded is None:
                self.undecodable += 1
                return None
            frame, decode_ms = decoded
            with self._lock:
                self._decoded += 1
                number = self._decoded
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
            self._decoder.attach(stream)
            try:
                frames = planned_frames(container, stream, self.plan, self._alive, self._decoder)
                for frame, decode_ms in frames:
                    if self._stop_event.is_set():
                        break
                    if pace is not None:
                        pace.wait(frame, self._stop_event)
                    self._offer(frame, decode_ms)
                    if not got:
                        got = True
                        self._set_status("streaming")
                        logger.info(
                            "camera %s: streaming %s from %s",
                            self.camera,
                            _size(stream),
                            mask_url(self.config.url),
                        )
                    elif self._status == "stalled":
                        self._set_status("streaming")
            finally:
                self._decoder.attach(None)  # before the container (and its decoder) closes
        return got

    def _alive(self) -> None:
        self.last_frame_monotonic = time.monotonic()  # a stream that sends packets is not stalled

    def _offer(self, frame: av.VideoFrame | PendingKeyFrame, decode_ms: float) -> None:
        """Count a decoded frame, and keep it (or the key frame still to decode) if it is a tick."""
        if not isinstance(frame, PendingKeyFrame):
            with self._lock:
                self._decoded += 1
        if self.plan.doing != self._doing:
            # the box's shedding says so once for every camera (RunShedding); a stream's own change, here
            shedding, self._shed = self.plan.shed != self._shed, self.plan.shed
            self._doing = self.plan.doing
            if self._doing != "measuring":
                log = logger.debug if shedding else logger.info
                log("camera %s: decoding %s: %s", self.camera, self._doing, self.plan.why)
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


def _size(stream: av.video.stream.VideoStream) -> str:
    """The stream's picture size as its decoder knows it (before a first decode it may not)."""
    width, height = stream.codec_context.width, stream.codec_context.height
    return f"{width}x{height}" if width and height else "video"


class _Pacer:
    """Release file frames at their presentation times, as a live camera would."""

    def __init__(self) -> None:
        self._start: float | None = None
        self._first_pts: float | None = None

    def wait(self, frame: av.VideoFrame | PendingKeyFrame, stop: threading.Event) -> None:
        if frame.time is None:
            return
        now = time.monotonic()
        if self._start is None or self._first_pts is None:
            self._start, self._first_pts = now, frame.time
            return
        due = self._start + (frame.time - self._first_pts)
        if due > now:
            stop.wait(due - now)
