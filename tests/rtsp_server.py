"""A real RTSP server for the tests: GStreamer's gst-rtsp-server, driven through python3-gi.

Runs under Debian's system Python (where python3-gi lives), not the project's: it takes raw BGR
frames from a file the test rendered, loops them at the given rate, encodes H.264 with x264 and
serves them at rtsp://127.0.0.1:PORT/cam. Usage:
    /usr/bin/python3 rtsp_server.py PORT FRAMES.raw WIDTH HEIGHT FPS
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path, width, height, fps = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
    frame_size = width * height * 3
    with open(path, "rb") as fh:
        data = fh.read()
    frames = [data[i : i + frame_size] for i in range(0, len(data) - frame_size + 1, frame_size)]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        "( appsrc name=src is-live=true format=time do-timestamp=false "
        f"caps=video/x-raw,format=BGR,width={width},height={height},framerate={fps}/1 "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} bitrate=1500 "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    state = {"i": 0}
    duration = Gst.SECOND // fps

    def need_data(src: Gst.Element, _length: int) -> None:
        i = state["i"]
        buf = Gst.Buffer.new_wrapped(frames[i % len(frames)])
        buf.pts = buf.dts = i * duration
        buf.duration = duration
        state["i"] = i + 1
        src.emit("push-buffer", buf)

    def configure(_factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        state["i"] = 0
        src = media.get_element().get_by_name_recurse_up("src")
        src.connect("need-data", need_data)

    factory.connect("media-configure", configure)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print("rtsp_server: cannot bind", port, file=sys.stderr, flush=True)
        sys.exit(1)
    print("rtsp_server: ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
