"""Decoding a camera's packets: only those its plan chooses, key frames as late as possible.

:func:`planned_frames` turns a demuxed stream into the frames :class:`~fer_edge.daemon.cadence.
DecodePlan` chooses. A key frame that decodes alone (the plan decodes nothing after it) is not
decoded there: it is handed on still compressed, as a :class:`PendingKeyFrame`, and decoded only
if analysis takes it. A box behind on its cameras then decodes the frames it analyses and no
others; decoding every tick frame on arrival spent most of an overloaded box on pictures nobody
looked at. The decoder stays the reader's: :class:`SharedDecoder` is the lock and the
generation that let a pending key frame use it safely from another thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

import av
import numpy as np

from fer_edge.daemon.cadence import DecodeMode, DecodePlan

logger = logging.getLogger(__name__)


class SharedDecoder:
    """A camera's decoder, used by its reader thread and by whoever decodes its pending key
    frames. The generation changes whenever a pending key frame may no longer use the decoder:
    the stream closes, or the reader starts feeding it runs of frames itself (a pending frame's
    reset would cut such a run in the middle)."""

    def __init__(self, camera: str) -> None:
        self.camera = camera
        self.lock = threading.Lock()
        self._generation = 0
        self._stream: av.video.stream.VideoStream | None = None

    def attach(self, stream: av.video.stream.VideoStream | None) -> None:
        """Decode ``stream`` from now on (None: the stream is closing)."""
        with self.lock:
            self._generation += 1
            self._stream = stream

    def retire(self) -> None:
        """No key frame pending now may be decoded any more."""
        with self.lock:
            self._generation += 1

    def pending(self, packet: av.Packet) -> PendingKeyFrame:
        return PendingKeyFrame(packet, self, self._generation)

    def decode(self, packet: av.Packet, generation: int) -> tuple[av.VideoFrame, float] | None:
        """Decode a key frame kept compressed: feed it, drain what the decoder holds back (B-frame
        streams reorder), reset it. The frame and the milliseconds it took, or None when the
        decoder is no longer the packet's or the packet did not decode."""
        with self.lock:
            if generation != self._generation or self._stream is None:
                return None
            start = time.perf_counter()
            try:
                frames = [*packet.decode(), *drain_decoder(self._stream)]
            except av.error.FFmpegError as e:
                logger.debug("camera %s: a key frame did not decode: %s", self.camera, e)
                return None
            elapsed = (time.perf_counter() - start) * 1000.0
        return (frames[-1], elapsed) if frames else None


class PendingKeyFrame:
    """A tick's key frame, not yet decoded: it decodes alone, so it can wait for analysis to take
    it, and one replaced by a newer key frame first costs nothing."""

    def __init__(self, packet: av.Packet, decoder: SharedDecoder, generation: int) -> None:
        self.packet, self._decoder, self._generation = packet, decoder, generation
        self.time = packet_seconds(packet)  # what a file's pacing waits for

    def decode(self) -> tuple[av.VideoFrame, float] | None:
        return self._decoder.decode(self.packet, self._generation)


def planned_frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    plan: DecodePlan,
    on_packet: Callable[[], None] | None = None,
    shared: SharedDecoder | None = None,
) -> Iterator[tuple[av.VideoFrame | PendingKeyFrame, float]]:
    """The frames of the packets ``plan`` decodes, each with its packet's decoding time in ms
    (network waits excluded); ``on_packet`` hears of every packet received, decoded or not.

    A stream with B-frames makes the decoder hold frames back to put them in display order: it
    gives a key frame out only once it has been fed the frames after it. When a run of decoded
    packets ends (after a key frame alone, or a partial run), whatever the decoder still holds is
    drained and the decoder reset, so each run's frames come out at once, whatever the stream's
    frame order, and nothing is decoded that the plan did not choose.

    With ``shared``, a key frame the plan decodes alone (it decodes key frames only) comes out as
    a :class:`PendingKeyFrame`, and decoding here holds the shared lock."""
    lock = shared.lock if shared is not None else threading.Lock()
    held = 0  # packets fed to the decoder that gave no frame yet
    deferred = False  # key frames were handed on since the decoder was last fed here
    for packet in container.demux(stream):
        if on_packet is not None:
            on_packet()
        if packet.size and not plan.decide(packet.is_keyframe, packet_seconds(packet)):
            if held:
                with lock:
                    start = time.perf_counter()
                    frames = drain_decoder(stream)
                    elapsed = (time.perf_counter() - start) * 1000.0
                held = 0
                for frame in frames:
                    yield frame, elapsed
            continue
        if not packet.size and not held:
            continue  # the end of the stream, and the decoder holds nothing
        alone = packet.is_keyframe and not held and plan.doing in ("keyframes", "measuring")
        if shared is not None and alone:
            deferred = True
            yield shared.pending(packet), 0.0
            continue
        if deferred and shared is not None:
            shared.retire()
        deferred = False
        with lock:
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
