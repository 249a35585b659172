"""The loopback servers the integration tests start (they live in the package, where the stream
benchmarks use them too)."""

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

__all__ = [
    "Mosquitto",
    "MqttCollector",
    "RtspServer",
    "daemon_command",
    "free_port",
    "have_mosquitto",
    "have_rtsp_server",
    "port_open",
    "stop_process",
    "wait_for",
]
