"""A real RTSP server: GStreamer's gst-rtsp-server, driven through python3-gi.

Runs under Debian's system Python (where python3-gi lives), not the project's, so it imports
nothing of fer-edge. It loops one of two sources at rtsp://127.0.0.1:PORT/cam:
  * raw BGR frames from a file (``FRAMES.raw WIDTH HEIGHT FPS``), encoded live with x264;
  * an H.264 Annex-B file (``CLIP.h264 0 0 FPS``) with its access-unit sizes in ``CLIP.h264.json``,
    served as it was encoded, as a camera serves its own stream.
Usage:
    /usr/bin/python3 rtsp_serve.py PORT SOURCE WIDTH HEIGHT FPS [GOP_SECONDS] [unshared]
GOP_SECONDS (raw frames only, default 1): seconds between the encoder's key frames.
unshared: every client gets its own stream, starting at a random frame, as separate cameras
would (not in step with each other, nor starting on a key frame); default: one stream for all.
"""

import json
import random
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def raw_source(path, width, height, fps, gop_s):
    frame_size = width * height * 3
    with open(path, "rb") as fh:
        data = fh.read()
    units = [data[i : i + frame_size] for i in range(0, len(data) - frame_size + 1, frame_size)]
    launch = (
        "( appsrc name=src is-live=true format=time do-timestamp=false "
        f"caps=video/x-raw,format=BGR,width={width},height={height},framerate={fps}/1 "
        "! videoconvert ! video/x-raw,format=I420 "
        "! x264enc tune=zerolatency speed-preset=ultrafast "
        f"key-int-max={max(1, round(fps * gop_s))} bitrate=1500 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    return units, launch


def h264_source(path, fps):
    with open(path + ".json") as fh:
        index = json.load(fh)
    sizes = index["access_units"]
    with open(path, "rb") as fh:
        data = fh.read()
    units, offset = [], 0
    for size in sizes:
        units.append(data[offset : offset + size])
        offset += size
    launch = (
        "( appsrc name=src is-live=true format=time do-timestamp=false "
        f"caps=video/x-h264,stream-format=byte-stream,alignment=au,framerate={fps}/1 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    # each unit's presentation time minus its place in the stream (B-frames: a few frames either way)
    shifts = [pts - i for i, pts in enumerate(index.get("pts", range(len(units))))]
    return units, launch, shifts


REORDER_DELAY = 4  # frames: a presentation time never comes before its unit is sent


def main() -> None:
    port, path, width, height, fps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    gop_s = float(sys.argv[6]) if len(sys.argv) > 6 else 1.0
    shifts = None
    if path.endswith(".h264"):
        units, launch, shifts = h264_source(path, fps)
    else:
        units, launch = raw_source(path, width, height, fps, gop_s)
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    unshared = len(sys.argv) > 7 and sys.argv[7] == "unshared"
    factory.set_shared(not unshared)
    duration = Gst.SECOND // fps

    def need_data(src, _length, state):
        i = state["i"]
        unit = (i + state["offset"]) % len(units)
        buf = Gst.Buffer.new_wrapped(units[unit])
        buf.dts = i * duration
        buf.pts = (i + REORDER_DELAY + shifts[unit]) * duration if shifts else buf.dts
        buf.duration = duration
        state["i"] = i + 1
        src.emit("push-buffer", buf)

    def configure(_factory, media):
        state = {"i": 0, "offset": random.randrange(len(units)) if unshared else 0}
        src = media.get_element().get_by_name_recurse_up("src")
        src.connect("need-data", need_data, state)

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("rtsp_serve: cannot bind", port, file=sys.stderr, flush=True)
        sys.exit(1)
    print("rtsp_serve: ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
