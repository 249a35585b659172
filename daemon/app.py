"""The daemon's wiring and main loop: ingest -> detect -> classify -> track -> publish.

Analysis workers (one per core, :mod:`~fer_edge.daemon.analysis`) serve the cameras at their own
intervals, always on the newest frame; readers, the MQTT network loop and the spool sender run in
their own threads, and the main thread keeps house (readiness, stalls, stats, the history's
flushes, the watchdog). SIGTERM/SIGINT stop the workers, flush what the broker will take within
``stop_timeout_s``, publish ``offline`` and exit 0.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fer_edge import __version__
from fer_edge.atomic import write_json
from fer_edge.daemon.analysis import (
    AnalysisWorker,
    OverloadWatch,
    RunShedding,
    shard,
    shedding_worth,
    worker_count,
)
from fer_edge.daemon.config import DaemonConfig
from fer_edge.daemon.dashboard import Snapshots
from fer_edge.daemon.history import HistoryStore
from fer_edge.daemon.ingest import CameraReader, Frame
from fer_edge.daemon.metrics import CameraStats, PrometheusMetrics
from fer_edge.daemon.payloads import (
    Topics,
    box_discovery_payload,
    discovery_payloads,
    emotions_payload,
    prediction_document,
    state_payload,
)
from fer_edge.daemon.pipeline import FacePipeline
from fer_edge.daemon.publish import MqttPublisher
from fer_edge.daemon.scan import ScanPlanner
from fer_edge.daemon.service import Watchdog, sd_notify
from fer_edge.daemon.spool import Spool
from fer_edge.daemon.startup import check_state_dir, load_pipeline
from fer_edge.daemon.stats import camera_stats
from fer_edge.daemon.track import FaceTracker
from fer_edge.daemon.visits import VisitTracker
from fer_edge.daemon.web import WebBackend, WebServer, serve
from fer_edge.preprocess import to_gray

logger = logging.getLogger(__name__)
Sink = Callable[[dict[str, Any]], None]  # where --print and --demo's JSON lines go


@dataclass
class _Camera:
    name: str
    reader: CameraReader
    pipeline: FacePipeline  # its worker's detector and model
    tracker: FaceTracker
    planner: ScanPlanner
    visits: VisitTracker
    stats: CameraStats = field(default_factory=CameraStats)


STOP_RESERVE_S = 3.0  # of stop_timeout_s, kept for the visits, the history and the broker
HISTORY_FLUSH_S = 10.0  # a crash loses at most this long of the per-minute history
CAMERAS_FILE = "cameras.json"  # in state_dir: the cameras whose retained topics this box published


class Daemon:
    """Owns every part of a running daemon; :meth:`run` blocks until stopped."""

    def __init__(
        self,
        config: DaemonConfig,
        default_model: str,
        use_mqtt: bool = True,
        sinks: list[Sink] | None = None,
        duration_s: float | None = None,
        stop_event: threading.Event | None = None,
        any_http_port: bool = False,
    ) -> None:
        self.config = config
        self.any_http_port = any_http_port  # the demo: if the port is taken, take a free one
        self.default_model = default_model
        self.sinks = sinks or []
        self.duration_s = duration_s
        self.stop_event = stop_event or threading.Event()
        self.started = time.monotonic()
        self.topics = Topics(config.mqtt.base_topic, config.device_id, config.mqtt.discovery_prefix)
        self.pipeline = load_pipeline(config, default_model)
        self.model = self.pipeline.model
        check_state_dir(config.state_dir, create=True)
        self.spool = Spool(config.state_dir / "spool.sqlite3", config.spool.max_messages)
        self.publisher = (
            MqttPublisher(
                config.mqtt,
                self.topics,
                self.spool,
                config.mqtt.client_id or f"fer-edge-{config.device_id}",
            )
            if use_mqtt
            else None
        )
        self.metrics = PrometheusMetrics(
            config.metrics_port, config.metrics_host, served_elsewhere=config.http is not None
        )
        self.history = HistoryStore(
            config.state_dir / "history.sqlite3", config.history_days, config.history_max_mb
        )
        self.snapshots = Snapshots()
        self._last_documents: dict[str, dict[str, Any]] = {}
        self._analyzer: FacePipeline | None = None
        self._loop_alive = time.monotonic()
        self.web: WebServer | None = None
        self._snapshots_on = False  # the page is served and may show frames
        self.watchdog = Watchdog()
        self.overload = OverloadWatch()
        self.shedding = RunShedding()
        names = [name for name, cam in config.cameras.items() if cam.enabled]
        shards = shard(names, worker_count(config.analysis_workers, len(names)))
        pipelines = [self.pipeline] + [load_pipeline(config, default_model) for _ in shards[1:]]
        wakes = [threading.Event() for _ in shards]  # a reader has a tick frame for that worker
        worker_of = {name: i for i, names_ in enumerate(shards) for name in names_}
        self.cameras = [self._camera(n, pipelines[worker_of[n]], wakes[worker_of[n]]) for n in names]
        self._by_name = {cam.name: cam for cam in self.cameras}
        self.workers = [
            AnalysisWorker(
                i,
                [AnalysisWorker.serving(n, self._by_name[n].reader.take) for n in names_],
                lambda name, frame: self._tick(self._by_name[name], frame),
                self._idle,
                self.stop_event,
                wakes[i],
            )
            for i, names_ in enumerate(shards)
        ]
        self._ready = False

    def _camera(self, name: str, pipeline: FacePipeline, wake: threading.Event) -> _Camera:
        """One camera's reader and per-camera state, on the detector and model of its worker."""
        cam, full_scan_every = self.config.cameras[name], self.config.detector.full_scan_every
        return _Camera(
            name,
            CameraReader(name, cam, self._on_status, on_tick=wake.set),
            pipeline,
            FaceTracker(smoothing=cam.smoothing),
            ScanPlanner(pipeline.detector, full_scan_every),
            VisitTracker(self.config.device_id, name, cam.interval_s, cam.track_end_s),
        )

    # -- status and signals -------------------------------------------------------------------
    def _on_status(self, camera: str, status: str) -> None:
        logger.info("camera %s: %s", camera, status)
        self.metrics.status(camera, status)
        if self.publisher is not None:
            self.publisher.publish_retained(self.topics.status(camera), status)

    def request_stop(self, *_args: Any) -> None:
        self.stop_event.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request_stop)
            signal.signal(signal.SIGINT, self.request_stop)

    # -- main loop ----------------------------------------------------------------------------
    def _clear_departed_cameras(self) -> None:
        """Retained topics of cameras that left the config would show them forever (a stale
        status, a Home Assistant entity that never updates): clear them, once the broker is
        there, and remember who publishes now."""
        assert self.publisher is not None
        record = self.config.state_dir / CAMERAS_FILE
        try:
            before = set(json.loads(record.read_text()).get("cameras", []))
        except (OSError, ValueError, AttributeError):
            before = set()
        now = {cam.name for cam in self.cameras}
        for name in sorted(before - now):
            logger.info("camera %s left the config: clearing its retained topics", name)
            topics = [self.topics.status(name), self.topics.state(name), *self.topics.discovery_topics(name)]
            for topic in topics:
                self.publisher.publish_retained(topic, "")
        write_json(record, {"cameras": sorted(now)})

    def run(self) -> int:
        # --duration, the ready timeout and uptime count from here, not from before the models
        # loaded: a slow start must not eat into them
        self.started = time.monotonic()
        self._install_signals()
        if self.publisher is not None:
            self._clear_departed_cameras()
            if self.config.mqtt.discovery:
                self.publisher.publish_retained(
                    self.topics.box_discovery_topic, box_discovery_payload(self.topics)
                )
                for cam in self.cameras:
                    for topic, document in discovery_payloads(self.topics, cam.name).items():
                        self.publisher.publish_retained(topic, document)
            self.publisher.start()
        self._start_web()
        for cam in self.cameras:
            cam.reader.start()
        for worker in self.workers:  # readers decide which frames are ticks and wake their worker
            worker.start()
        next_stats = time.monotonic() + min(5.0, self.config.mqtt.stats_interval_s)
        next_flush = time.monotonic() + HISTORY_FLUSH_S
        try:
            while not self.stop_event.wait(0.5):
                now = self._loop_alive = time.monotonic()
                self._maybe_ready(now)
                for cam in self.cameras:
                    cam.reader.check_stall()
                if now >= next_stats:
                    self._publish_stats()
                    self.snapshots.drop_unwatched()
                    next_stats = now + self.config.mqtt.stats_interval_s
                if now >= next_flush:
                    self.history.flush()
                    next_flush = now + HISTORY_FLUSH_S
                if self._healthy():
                    self.watchdog.progress()
                if self.duration_s is not None and now - self.started >= self.duration_s:
                    break
        finally:
            self._shutdown()
        failed = next((w.failed for w in self.workers if w.failed is not None), None)
        if failed is not None:
            raise failed
        return 0

    def _healthy(self) -> bool:
        """Every analysis worker went round within the last 10 s, and so did the main loop."""
        now = time.monotonic()
        return now - self._loop_alive < 10.0 and all(now - w.alive < 10.0 for w in self.workers)

    def _idle(self, name: str) -> None:
        """On the camera's worker, between rounds: a camera that sends no ticks ends its visits
        by the clock."""
        cam = self._by_name[name]
        if cam.reader.status != "streaming":
            self._publish_visits(cam, cam.visits.expire(time.time()))

    def _maybe_ready(self, now: float) -> None:
        if self._ready:
            return
        connected = self.publisher is None or self.publisher.ever_connected.is_set()
        if connected or now - self.started >= self.config.mqtt.ready_timeout_s:
            state = (
                "READY=1\nSTATUS=analysing"
                if connected
                else "READY=1\nSTATUS=broker unreachable; spooling results"
            )
            sd_notify(state)
            self._ready = True

    def _tick(self, cam: _Camera, frame: Frame) -> None:
        analysis = cam.pipeline.analyse(frame.image, cam.tracker, cam.planner, frame.video_range)
        analysis.timing_ms = {"decode": round(frame.decode_ms, 2), **analysis.timing_ms}
        now = time.time()
        seq = self.spool.next_seq(cam.name)
        document = emotions_payload(self.config.device_id, cam.name, seq, now, frame.wall_time, analysis)
        visits = cam.visits.observe(analysis.faces, frame.wall_time)
        started = {v["id"] for v in visits if v["event_type"] == "start"}
        interval = self.config.cameras[cam.name].interval_s
        self.history.record(cam.name, frame.wall_time, analysis.faces, interval, started)
        if self.publisher is not None:
            self.publisher.publish_result(self.topics.emotions(cam.name), document, frame.wall_time)
            state = state_payload(analysis, now, self.history.people_today(cam.name))
            self.publisher.publish_retained(self.topics.state(cam.name), state)
        for sink in self.sinks:
            sink(document)
        self._publish_visits(cam, visits)
        self._last_documents[cam.name] = document
        if self._snapshots_on and self.snapshots.wanted(cam.name):
            self.snapshots.offer(cam.name, frame.image, document["faces"], cam.stats.ticks)
        cam.stats.ticks += 1
        cam.stats.faces += len(analysis.faces)
        cam.stats.record(analysis.timing_ms)
        self.metrics.tick(cam.name, len(analysis.faces), analysis.timing_ms, cam.reader.frames_decoded)

    def _publish_visits(self, cam: _Camera, documents: list[dict[str, Any]]) -> None:
        """Visit documents go the way results go: spooled, QoS 1, in order, none lost; ended
        visits are kept in the history too (``/api/tracks``)."""
        for document in documents:
            if document["event_type"] == "end":
                self.history.record_visit(cam.name, document)
            if self.publisher is not None:
                self.publisher.publish_result(self.topics.tracks(cam.name), document)

    def stats_document(self) -> dict[str, Any]:
        uptime = time.monotonic() - self.started
        return {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "uptime_s": round(uptime, 1),
            "cameras": {
                cam.name: camera_stats(cam.reader, cam.planner.stats, cam.stats, uptime)
                for cam in self.cameras
            },
            "publish_latency_ms": self.publisher.publish_latency_ms() if self.publisher else {},
            "spool": {
                "depth": self.spool.depth,
                "dropped": self.spool.dropped,
                "recovered": self.spool.recovered,
                "salvaged": self.spool.salvaged,
                "write_failures": self.spool.write_failures,
            },
            "analysis": {
                "workers": len(self.workers),
                **self.overload.summary(),
                **self.shedding.summary(),
            },
            "history": {
                "write_failures": self.history.write_failures,
                "pruned_days": self.history.pruned_days,
            },
        }

    # -- the web page and API -------------------------------------------------------------------
    def _start_web(self) -> None:
        """Serve the page and API when ``http`` is set (:func:`~fer_edge.daemon.web.serve`)."""
        if self.config.http is None:
            return
        backend = WebBackend(
            state=self.web_state,
            snapshot=self._snapshot,
            cameras=lambda: [cam.name for cam in self.cameras],
            analyze=self.analyze_image,
            healthy=self._healthy,
            metrics=self.metrics.exposition if self.metrics.enabled else None,
            history=self.history,
        )
        self.web = serve(self.config.http, backend, any_port=self.any_http_port)
        if self.web is None:
            return
        self._snapshots_on = self.config.http.snapshots
        if self.any_http_port:  # the demo: say where to look, on the terminal, not in a log
            sys.stderr.write(f"fer-edge demo: open {self.web.url} to watch (Ctrl-C stops)\n")
            sys.stderr.flush()

    def _snapshot(self, camera: str) -> bytes | None:
        """The camera's last analysed frame drawn; the first ask waits for the next tick."""
        interval = self.config.cameras[camera].interval_s
        return self.snapshots.jpeg(camera, wait_s=min(interval + 1.0, 5.0))

    def web_state(self) -> dict[str, Any]:
        """``/api/state``: the stats document, with each camera's last result and people today."""
        document = self.stats_document()
        for cam in self.cameras:
            entry = document["cameras"][cam.name]
            entry["last"] = self._last_documents.get(cam.name)
            entry["people_today"] = self.history.people_today(cam.name)
        return {
            "device": self.config.device_id,
            "version": __version__,
            "snapshots": bool(self.config.http and self.config.http.snapshots),
            **document,
        }

    def analyze_image(self, image: np.ndarray) -> dict[str, Any]:
        """``POST /api/analyze``: the image's faces, as ``fer-edge predict --json`` gives them.
        Its own detector and model (interpreters are not shared between threads), made on
        first use so a box that never gets an upload never holds them."""
        if self._analyzer is None:
            self._analyzer = load_pipeline(self.config, self.default_model)
        analysis = self._analyzer.analyse(to_gray(image))
        return prediction_document("upload", self._analyzer.model.path, analysis)

    def _publish_stats(self) -> None:
        self.overload.update(
            {cam.name: (cam.stats.ticks, cam.reader.overtaken) for cam in self.cameras},
            {cam.name: 1.0 / self.config.cameras[cam.name].interval_s for cam in self.cameras},
        )
        gops = {cam.name: cam.reader.plan.gop_s or 0.0 for cam in self.cameras if cam.reader.plan.runs}
        worth = shedding_worth(gops, self.overload.rates)
        shed = self.shedding.update(self.overload.overloaded, worth, time.monotonic())
        for cam in self.cameras:
            cam.reader.plan.shed = shed  # read by the camera's reader thread at its next packet
        document = self.stats_document()
        self.metrics.spool(document["spool"]["depth"], document["spool"]["dropped"])
        if self.publisher is not None:
            self.publisher.publish_retained(self.topics.stats, document, qos=0)

    def _shutdown(self) -> None:
        """Within ``stop_timeout_s`` at any load: the workers finish the tick they are on, every
        open visit ends (spooled: a restart delivers what the broker does not take now), the
        history is flushed, the broker gets what it takes in the time left; readers blocked in
        a network read are left to the process's exit."""
        deadline = time.monotonic() + self.config.stop_timeout_s
        sd_notify("STOPPING=1")
        logger.info("stopping: draining results")
        self.stop_event.set()
        if self.web is not None:
            self.web.stop()
        for cam in self.cameras:
            cam.reader.stop()
        for worker in self.workers:
            if worker.is_alive():
                worker.join(timeout=max(0.0, deadline - time.monotonic() - STOP_RESERVE_S))
        for cam in self.cameras:
            self._publish_visits(cam, cam.visits.close_all())
        self.history.close()
        if self.publisher is not None:
            self.publisher.stop(drain_s=max(0.0, min(2.0, deadline - time.monotonic() - 1.0)))
        for cam in self.cameras:
            cam.reader.join(timeout=max(0.0, min(1.0, deadline - time.monotonic() - 0.5)))
        self.spool.close()
        logger.info("stopped")
