"""One reader thread per camera: PyAV decode, newest frame only, reconnect with backoff.

Analysis wants the newest frame about once a second, never a backlog, so the reader keeps only
the latest decoded frame (as PyAV's frame object: pixels are converted only when analysis takes
it). RTSP goes over TCP with open/read timeouts; a failed or ended stream is reopened with capped
exponential backoff and jitter. Files are paced to real time and loop, so a clip behaves like a
camera. Status changes (``streaming``/``reconnecting``/``stalled``) go to a callback.
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

from fer_edge.daemon.config import CameraConfig
from fer_edge.daemon.redact import mask_url

logger = logging.getLogger(__name__)

StatusCallback = Callable[[str, str], None]


@dataclass
class Frame:
    """The newest decoded frame of a camera."""

    image: np.ndarray  # gray (H x W) uint8: the Y plane, no colour conversion needed
    wall_time: float  # time.time() when it was decoded
    number: int  # frames decoded since the reader started
    decode_ms: float  # decoding this frame's packet plus taking its luma plane
    video_range: bool = False  # luma in 16..235 (most H.264 cameras): crops are expanded to 0..255


class CameraReader(threading.Thread):
    """Decode one camera in the background; :meth:`latest` returns the newest frame."""

    def __init__(
        self,
        name: str,
        config: CameraConfig,
        on_status: StatusCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(name=f"reader-{name}", daemon=True)
        self.camera = name
        self.config = config
        self._on_status = on_status or (lambda _camera, _status: None)
        self._rng = rng or random.Random()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self._frame: av.VideoFrame | None = None
        self._frame_time = 0.0
        self._decoded = 0
        self._status = ""
        self.reconnects = 0
        self.decode_ms = 0.0  # decode time of the newest frame
        self.last_frame_monotonic = 0.0

    # -- public -----------------------------------------------------------------------------
    @property
    def status(self) -> str:
        return self._status

    @property
    def frames_decoded(self) -> int:
        return self._decoded

    def latest(self, newer_than: int = 0) -> Frame | None:
        """The newest frame if its number is above ``newer_than``; converts it to gray once."""
        with self._lock:
            frame, wall, number, decode_ms = (
                self._frame,
                self._frame_time,
                self._decoded,
                self.decode_ms,
            )
        if frame is None or number <= newer_than:
            return None
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
        read_timeout = max(1.0, self.config.stall_timeout_s)
        return av.open(url, options=options, timeout=(self.config.open_timeout_s, read_timeout))

    def _stream_once(self) -> bool:
        """Decode until the stream ends, fails or the reader stops; True if any frame arrived."""
        got = False
        with self._open() as container:
            stream = container.streams.video[0]
            configure_decoder(stream, self.config.keyframes_only)
            pace = _Pacer() if self._is_file() else None
            for frame, decode_ms in _decode_timed(container, stream):
                if self._stop_event.is_set():
                    break
                if pace is not None:
                    pace.wait(frame, self._stop_event)
                with self._lock:
                    self._frame, self._frame_time = frame, time.time()
                    self._decoded += 1
                    self.decode_ms = decode_ms
                self.last_frame_monotonic = time.monotonic()
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

    def _set_status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self._on_status(self.camera, status)


def _decode_timed(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> Iterator[tuple[av.VideoFrame, float]]:
    """Frames with the time their packet took to decode (network waits excluded)."""
    for packet in container.demux(stream):
        start = time.perf_counter()
        frames = packet.decode()
        elapsed = (time.perf_counter() - start) * 1000.0
        for frame in frames:
            yield frame, elapsed


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


def configure_decoder(stream: av.video.stream.VideoStream, keyframes_only: bool) -> None:
    """Key frames only: skip the rest inside the decoder, on one thread, since a key frame a
    second needs no parallelism and decoder threads cost ~15% more CPU per frame. Every frame:
    let FFmpeg pick frame/slice threads so a 25 fps stream keeps up."""
    if keyframes_only:
        stream.codec_context.skip_frame = "NONKEY"
        stream.thread_count = 1
    else:
        stream.thread_type = "AUTO"


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
