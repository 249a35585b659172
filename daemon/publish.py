"""MQTT out (paho-mqtt 2.x): retained availability/state/status, spooled QoS-1 results, discovery.

Results are delivered at least once and in order: they are sent from the spool, oldest first, and
deleted only on PUBACK. Messages in flight when a connection drops are re-sent by paho on
reconnect (with the DUP flag); rows left by a previous process are sent first at start.
Subscribers that must not see a repeat can drop ``(camera, seq)`` pairs they already have.
Retained topics hold the latest value and are re-sent on every connect.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from fer_edge.daemon.config import MqttConfig
from fer_edge.daemon.payloads import Topics
from fer_edge.daemon.spool import Spool, SpoolWriteError

logger = logging.getLogger(__name__)

_MAX_INFLIGHT = 40
_MAX_TIMED = 10_000  # results awaiting their PUBACK whose latency is being timed


def _quiet_retries(record: logging.LogRecord) -> bool:
    """paho logs every failed reconnect as 'Client is not connected'; the publisher says once per
    outage, with the broker and the reason, instead."""
    return not record.getMessage().startswith("Client is not connected")


def _why_unreachable(host: str, port: int) -> str:
    """A short reason a TCP connection to the broker fails: paho's callback does not say."""
    try:
        address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4]
    except socket.gaierror as e:
        return f"cannot resolve {host}: {e.strerror}"
    try:
        with socket.create_connection(address[:2], timeout=3):
            return "it accepted a TCP connection but not the MQTT session"
    except OSError as e:
        return e.strerror or type(e).__name__


class MqttPublisher:
    """Owns the paho client, its network thread and a sender thread draining the spool."""

    def __init__(self, config: MqttConfig, topics: Topics, spool: Spool, client_id: str) -> None:
        self.config = config
        self.topics = topics
        self.spool = spool
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._retained_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self.ever_connected = threading.Event()
        protocol = mqtt.MQTTv5 if config.protocol == "5" else mqtt.MQTTv311
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        paho_logger = logging.getLogger("paho.mqtt")
        paho_logger.addFilter(_quiet_retries)
        self.client.enable_logger(paho_logger)
        self.client.will_set(topics.availability, "offline", qos=1, retain=True)
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        if config.tls is not None:
            self.client.tls_set(
                ca_certs=str(config.tls.ca_certs) if config.tls.ca_certs else None,
                certfile=str(config.tls.certfile) if config.tls.certfile else None,
                keyfile=str(config.tls.keyfile) if config.tls.keyfile else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            self.client.tls_insecure_set(config.tls.insecure)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.max_inflight_messages_set(_MAX_INFLIGHT + 10)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self._unreachable = False  # logged once per outage, not once per retry
        self._spool_failing = False
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._born: dict[int, float] = {}  # spool id -> its frame's decode time
        self._born_lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=500)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        self.client.loop_start()
        self._sender.start()

    def stop(self, drain_s: float = 2.0) -> None:
        """Flush what the broker will take within ``drain_s``, say ``offline``, disconnect."""
        if self.connected.is_set():
            self._wake.set()
            deadline = threading.Event()
            waited = 0.0
            while self.spool.depth and waited < drain_s and self.connected.is_set():
                deadline.wait(0.05)
                waited += 0.05
            info = self.client.publish(self.topics.availability, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=max(0.2, drain_s - waited))
        self._stopping.set()
        self._wake.set()
        self.client.disconnect()
        self.client.loop_stop()
        self._sender.join(timeout=2)

    # -- what the daemon calls --------------------------------------------------------------
    def publish_result(self, topic: str, document: dict[str, Any], frame_time: float | None = None) -> None:
        """Spool a QoS-1 result; the sender delivers it when the broker is there. ``frame_time``
        (``time.time()`` when its frame was decoded) times the result until its PUBACK."""
        payload = json.dumps(document, separators=(",", ":")).encode()
        try:
            spool_id = self.spool.append(topic, payload, qos=1)
        except SpoolWriteError as e:
            # the disk refuses the spool (full, read-only): hand the result to the MQTT client's
            # memory instead, so a connected broker still gets it; say so once per episode
            if not self._spool_failing:
                logger.error("spool %s cannot be written (%s): results go out unspooled", self.spool.path, e)
            self._spool_failing = True
            self.client.publish(topic, payload, qos=1)
            return
        if self._spool_failing:
            logger.warning("spool %s is writable again", self.spool.path)
            self._spool_failing = False
        if frame_time is not None:
            with self._born_lock:
                if len(self._born) < _MAX_TIMED:  # a long outage: time the first ones only
                    self._born[spool_id] = frame_time
        self._wake.set()

    def publish_latency_ms(self) -> dict[str, float]:
        """Frame decoded to PUBACK received, p50/p95 of the last results acked."""
        with self._born_lock:
            recent = list(self._latencies)
        if not recent:
            return {}
        p50, p95 = np.percentile(recent, [50, 95])
        return {"p50": round(float(p50), 1), "p95": round(float(p95), 1)}

    def publish_retained(self, topic: str, payload: str | dict[str, Any], qos: int = 1) -> None:
        """Latest-value topics: remembered and re-sent on every (re)connect."""
        data = (
            payload.encode()
            if isinstance(payload, str)
            else json.dumps(payload, separators=(",", ":")).encode()
        )
        # under the lock, with the connect callback's re-send: a value set while the connection
        # comes up is either in that re-send or published here, never in neither
        with self._retained_lock:
            self._retained[topic] = (data, qos)
            if self.connected.is_set():
                self.client.publish(topic, data, qos=qos, retain=True)

    # -- paho callbacks (network thread) ------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        if reason_code.is_failure:
            logger.error(
                "MQTT broker %s:%d refused the connection: %s",
                self.config.host,
                self.config.port,
                reason_code,
            )
            return
        logger.info("connected to MQTT broker %s:%d", self.config.host, self.config.port)
        self._unreachable = False
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        with self._retained_lock:
            for topic, (data, qos) in self._retained.items():
                client.publish(topic, data, qos=qos, retain=True)
            self.connected.set()
        self.ever_connected.set()
        self._wake.set()

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        if self._unreachable:
            return
        self._unreachable = True
        logger.warning(
            "MQTT broker %s:%d unreachable (%s); retrying with back-off, results are spooled",
            self.config.host,
            self.config.port,
            _why_unreachable(self.config.host, self.config.port),
        )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        if self._stopping.is_set():
            logger.info("disconnected from MQTT broker %s:%d", self.config.host, self.config.port)
        elif self.connected.is_set():
            logger.warning("MQTT connection lost (%s); results are spooled until it is back", reason_code)
        self.connected.clear()

    def _timed(self, spool_id: int) -> None:
        with self._born_lock:
            born = self._born.pop(spool_id, None)
            if born is not None:
                self._latencies.append((time.time() - born) * 1000.0)

    # -- sender thread ------------------------------------------------------------------------
    def _send_loop(self) -> None:
        """Sole owner of the in-flight list: sends spooled rows, acks them once PUBACKed.

        Acks are read from each message's ``is_published()`` rather than ``on_publish``: paho
        runs that callback under its own lock, and publish ids are reused, so polling the
        message handles is both simpler and race-free.
        """
        inflight: deque[tuple[mqtt.MQTTMessageInfo, int]] = deque()
        last_sent = 0  # a new process starts from the oldest row left by the previous one
        while not self._stopping.is_set():
            self._wake.wait(timeout=0.02 if inflight else 0.5)
            self._wake.clear()
            still: deque[tuple[mqtt.MQTTMessageInfo, int]] = deque()
            for info, spool_id in inflight:
                if info.is_published():
                    self.spool.ack(spool_id)
                    self._timed(spool_id)
                else:
                    still.append((info, spool_id))
            inflight = still
            if not self.connected.is_set() or len(inflight) >= _MAX_INFLIGHT:
                continue
            for message in self.spool.pending(last_sent, limit=_MAX_INFLIGHT - len(inflight)):
                info = self.client.publish(
                    message.topic, message.payload, qos=message.qos, retain=message.retain
                )
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    break
                inflight.append((info, message.id))
                last_sent = message.id
