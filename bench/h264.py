"""Encode frames as an H.264 Annex-B file a camera could send, with its access-unit index.

The RTSP server (``rtsp_serve.py``) serves such a file as encoded, so a benchmark's daemon decodes
exactly what was encoded once, as from a real camera: ``CLIP.h264`` holds the stream, and
``CLIP.h264.json`` the byte size of each access unit (one frame each) so the server can packetise
it without a parser, and each one's presentation time in frames (with B-frames the stream's order
is not the display order: the server stamps each unit with its own).

Two encodings: ``b_frames=False`` is a low-latency camera's (x264 ``veryfast``, ``zerolatency``:
no B-frames); ``b_frames=True`` is x264's defaults (``medium``: three B-frames, B-pyramid), as NVR
restreams, ffmpeg re-encodes and many cameras send.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from fer_edge.atomic import atomic_path


def write_h264(
    path: str | Path,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    fps: int,
    gop_s: float = 1.0,
    bitrate: int = 2_000_000,
    b_frames: bool = False,
) -> Path:
    """Encode BGR (or gray) frames to ``path`` (Annex-B, in-band SPS/PPS at every key frame,
    a key frame every ``gop_s`` seconds) and write the access-unit index beside it."""
    path = Path(path)
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.bit_rate = bitrate
    gop = max(1, round(fps * gop_s))
    codec.gop_size = gop
    params = f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1"
    codec.options = (
        {"preset": "medium", "x264-params": params}
        if b_frames
        else {"preset": "veryfast", "tune": "zerolatency", "x264-params": params}
    )
    sizes: list[int] = []
    stamps: list[int] = []
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        for i, image in enumerate(frames):
            bgr = image if image.ndim == 3 else np.repeat(image[:, :, np.newaxis], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
            frame.pts = i
            for packet in codec.encode(frame):
                _write_unit(out, packet, sizes, stamps)
        for packet in codec.encode(None):
            _write_unit(out, packet, sizes, stamps)
    with atomic_path(Path(f"{path}.json")) as tmp:
        tmp.write_text(json.dumps({"fps": fps, "access_units": sizes, "pts": stamps}))
    return path


def _write_unit(out: BinaryIO, packet: av.Packet, sizes: list[int], stamps: list[int]) -> None:
    data = bytes(packet)
    out.write(data)
    sizes.append(len(data))
    stamps.append(int(packet.pts if packet.pts is not None else len(stamps)))
