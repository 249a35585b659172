"""The real daemon on one clip: served over a loopback RTSP server, its results collected from a
loopback mosquitto, every emotions document it published returned for scoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def run_daemon(
    clip: Path,
    seconds: float,
    detector: dict[str, Any],
    workdir: Path,
    model: str | None = None,
    decode: str = "auto",
    fps: int = 15,
) -> list[dict[str, Any]]:
    """Serve ``clip`` over RTSP, run ``fer-edge run`` on it against mosquitto for ``seconds`` of
    stream, and return every emotions document it published."""
    import subprocess

    import yaml

    from fer_edge.bench.loopback import (
        Mosquitto,
        MqttCollector,
        RtspServer,
        daemon_command,
        stop_process,
        wait_for,
    )

    with Mosquitto(workdir) as broker, RtspServer(None, workdir, fps=fps, h264=clip) as rtsp:
        collector = MqttCollector(broker.port, "fer-edge/#")
        config = {
            "device_id": "bench",
            "state_dir": str(workdir / f"state-{rtsp.port}"),
            "mqtt": {"host": "127.0.0.1", "port": broker.port, "discovery": False},
            "detector": detector,
            "cameras": {"cam": {"url": f"rtsp://127.0.0.1:{rtsp.port}/cam", "decode": decode}},
        }
        if model:
            config["model"] = {"path": model}
        path = workdir / f"config-{rtsp.port}.yaml"
        path.write_text(yaml.safe_dump(config))
        log = (workdir / f"daemon-{rtsp.port}.log").open("wb")
        proc = subprocess.Popen(
            daemon_command(path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(
                lambda: collector.payloads("/cam/emotions") or proc.poll() is not None,
                120,
                "the first result",
            )
            if proc.poll() is not None:
                raise RuntimeError(f"the daemon exited with {proc.returncode}; see {log.name}")
            first = len(collector.payloads("/cam/emotions"))
            wait_for(
                lambda: (
                    len(collector.payloads("/cam/emotions")) >= first + seconds or proc.poll() is not None
                ),
                seconds * 3 + 60,
                "a full pass over the clip",
                interval=0.5,
            )
        finally:
            stop_process(proc)
            log.close()
            collector.close()
        return collector.documents("/cam/emotions")
