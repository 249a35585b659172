"""systemd integration without a dependency: sd_notify datagrams, watchdog pacing, log masking."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time

from fer_edge.daemon.redact import mask_url

logger = logging.getLogger(__name__)


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to ``$NOTIFY_SOCKET``; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as e:
        logger.warning("sd_notify(%s) failed: %s", state.split("=")[0], e)
        return False
    return True


class Watchdog:
    """Pings systemd's watchdog at half its interval, and only when told progress was made."""

    def __init__(self) -> None:
        usec = os.environ.get("WATCHDOG_USEC", "")
        pid = os.environ.get("WATCHDOG_PID", "")
        enabled = usec.isdigit() and (not pid or pid == str(os.getpid()))
        self.interval_s = int(usec) / 2e6 if enabled else 0.0
        self._last = 0.0

    def progress(self) -> None:
        """Call from the daemon's main loop while it and every analysis worker go round."""
        if not self.interval_s:
            return
        now = time.monotonic()
        if now - self._last >= self.interval_s:
            sd_notify("WATCHDOG=1")
            self._last = now


class MaskSecrets(logging.Filter):
    """Masks ``user:password@`` in every log line, whatever logged it (PyAV, paho, ours)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_url(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``log_format: json``), for log shippers that parse fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(log_format: str = "text") -> None:
    """Mask secrets on every handler; switch the format to JSON lines if asked."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskSecrets())
        if log_format == "json":
            handler.setFormatter(JsonFormatter())


def catch_stop_signals() -> threading.Event:
    """SIGTERM/SIGINT from the process's first moments set the returned event, so a stop that
    arrives while models load still ends in an orderly shutdown (exit 0), not a kill (143).
    Cheap to import: ``fer-edge run`` calls it before loading anything heavy."""
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_args: stop.set())
    return stop
