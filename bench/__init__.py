"""The benchmarks and what they need: synthetic camera scenes, H.264 clips, loopback RTSP and MQTT
servers, and the harnesses behind ``fer-edge bench`` and ``fer-edge fit-framing`` (extra: ``[bench]``).
Nothing here runs on a camera box; the daemon imports none of it."""
