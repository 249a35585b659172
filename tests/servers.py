"""The loopback servers the integration tests start (they live in the package, where the stream
benchmarks use them too), and the daemon started the way the tests start it."""

import subprocess
from pathlib import Path

from fer_edge.bench.loopback import (
    Mosquitto,
    MqttCollector,
    RtspServer,
    daemon_command,
    free_port,
    have_mosquitto,
    have_rtsp_server,
    port_open,
    stop_process,
    wait_for,
)


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``fer-edge run --config`` in its own process group, its output in ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(daemon_command(config), stdout=out, stderr=out, start_new_session=True)


__all__ = [
    "Mosquitto",
    "MqttCollector",
    "RtspServer",
    "daemon_command",
    "free_port",
    "have_mosquitto",
    "have_rtsp_server",
    "port_open",
    "start_daemon",
    "stop_process",
    "wait_for",
]
