"""The daemon's web page and HTTP API (config ``http``), on the standard library's threaded server.

Routes: ``/`` (the live page) and its two assets, ``/api/state``, ``/api/history`` (JSON or CSV),
``/api/tracks``, ``/api/cameras/<name>/snapshot.jpg``, ``POST /api/analyze``, ``/metrics`` and
``/healthz``. Nothing else answers: files are served from a
fixed table, never from a path taken from the request, so there is nothing to list or traverse.

Off loopback a bearer token is required (``Authorization: Bearer`` or ``?token=`` for the page),
compared in constant time, by every route that shows data; the page's three static files, which
hold none, and ``/healthz`` (ok or not, for probes) are open.
``snapshots: false`` answers 403 on every image endpoint. Analysis of an uploaded image uses its
own detector and model, made on first use, one request at a time: the cameras' ticks never wait
for it.
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from fer_edge.daemon.config import HttpConfig
from fer_edge.daemon.history import HistoryStore
from fer_edge.daemon.history_api import BadQuery, history_csv, history_document, tracks_document

logger = logging.getLogger(__name__)

ASSETS = {  # route -> (file in fer_edge/web, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
IMAGE_TYPES = ("image/jpeg", "image/png")
ANALYZE_WAIT_S = 30.0  # a second upload waits this long for the first before a 503
# What a refused request may still send (and how long it may take) so its client reads the refusal.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_LIMIT_S = 10.0


class ApiError(Exception):
    """An HTTP error status with a one-line reason, answered as JSON."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class WebBackend:
    """What the routes need from the daemon; the daemon passes its own callables in."""

    def __init__(
        self,
        state: Callable[[], dict[str, Any]],
        snapshot: Callable[[str], bytes | None],
        cameras: Callable[[], list[str]],
        analyze: Callable[[np.ndarray], dict[str, Any]],
        healthy: Callable[[], bool],
        metrics: Callable[[], tuple[bytes, str]] | None,
        history: HistoryStore | None = None,
    ) -> None:
        self.state, self.snapshot, self.cameras = state, snapshot, cameras
        self.analyze, self.healthy, self.metrics = analyze, healthy, metrics
        self.history = history
        self.analyze_lock = threading.Lock()


def decode_upload(body: bytes, content_type: str) -> np.ndarray:
    """The image of an upload: a JPEG/PNG body, or the first image part of a multipart form."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        parts = [
            p
            for p in message.iter_parts()
            if p.get_content_type() in (*IMAGE_TYPES, "application/octet-stream")
        ]
        if not parts:
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the form has no JPEG or PNG file part")
        body = parts[0].get_payload(decode=True) or b""
    elif kind not in IMAGE_TYPES:
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            f"Content-Type {kind or 'missing'}: send image/jpeg, image/png or multipart/form-data",
        )
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) if body else None
    if image is None:
        raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "the body is not a readable JPEG or PNG image")
    return image


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class _Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    server_version = "fer-edge"
    timeout = 30  # a client that stops sending mid-request gives its thread back after this

    # -- plumbing ---------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:
        line = _TOKEN_IN_QUERY.sub(r"\1***", format % args)  # the page's token is in its URL
        logger.debug("http %s %s", self.address_string(), line)

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        cache: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Every answer goes out here, so every one carries the security headers."""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "max-age=300" if cache else "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'",
        )
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(
        self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(document, separators=(",", ":")).encode()
        self._send(status, body, "application/json", headers=headers)

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        token = self.server.config.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        offered = (
            header[7:].strip() if header.lower().startswith("bearer ") else (query.get("token") or [""])[0]
        )
        return hmac.compare_digest(offered.encode(), token.encode())

    def _discard_unread_body(self) -> None:
        """Read and drop what the client still sends of a refused request's body, then close.

        Closing on an upload in flight resets the connection before the client reads the
        refusal: a browser then reports a network error instead of the 413 or 401, and HTTP
        libraries raise a broken pipe. Bounded in bytes and in time, so a refused client cannot
        hold the thread."""
        length_text = self.headers.get("Content-Length", "")
        if self._body_read or not length_text.isdigit() or int(length_text) == 0:
            return
        self.close_connection = True
        remaining, deadline = min(int(length_text), DRAIN_LIMIT_BYTES), time.monotonic() + DRAIN_LIMIT_S
        try:
            while remaining > 0 and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                chunk = self.rfile.read1(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
        except OSError:
            pass

    def _route(self, method: str) -> None:
        """Public files first, then the token, then the API; every refusal is one JSON error."""
        self._body_read = False
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        try:
            if method in ("GET", "HEAD") and self._serve_public(path):
                return
            if not self._authorised(query):
                raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong token")
            self._serve_api(method, path, query)
        except ApiError as e:
            self._refuse(e)

    def _serve_public(self, path: str) -> bool:
        """``/healthz`` and the page's own files, which need no token (they hold no data: the page
        asks the API, with the token). False when ``path`` is neither."""
        if path == "/healthz":
            healthy = self.server.backend.healthy()
            status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
            self._json(status, {"status": "ok" if healthy else "stalled"})
            return True
        if path in ASSETS:
            name, content_type = ASSETS[path]
            self._send(HTTPStatus.OK, self.server.asset(name), content_type, cache=path != "/")
            return True
        return False

    def _serve_api(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        """The endpoints behind the token."""
        if method == "POST":
            if path != "/api/analyze":
                raise ApiError(HTTPStatus.NOT_FOUND, "no such endpoint")
            return self._analyze()
        if path == "/api/state":
            return self._json(HTTPStatus.OK, self.server.backend.state())
        if path in ("/api/history", "/api/tracks"):
            return self._history(path, query)
        if path == "/metrics" and self.server.backend.metrics is not None:
            body, content_type = self.server.backend.metrics()
            return self._send(HTTPStatus.OK, body, content_type)
        parts = path.split("/")
        if len(parts) == 5 and parts[:3] == ["", "api", "cameras"] and parts[4] == "snapshot.jpg":
            return self._snapshot(parts[3])
        raise ApiError(HTTPStatus.NOT_FOUND, "no such endpoint")

    def _refuse(self, error: ApiError) -> None:
        """The error as JSON (with the security headers ``_send`` adds to every answer); a 401
        names the scheme; an upload nobody read is drained so the connection stays usable."""
        challenge = {"WWW-Authenticate": 'Bearer realm="fer-edge"'}
        unauthorised = error.status == HTTPStatus.UNAUTHORIZED
        self._json(error.status, {"error": str(error)}, challenge if unauthorised else None)
        self._discard_unread_body()

    def _history(self, path: str, query: dict[str, list[str]]) -> None:
        """``/api/history`` and ``/api/tracks``, from the per-minute history on disk."""
        store = self.server.backend.history
        if store is None:
            raise ApiError(HTTPStatus.NOT_FOUND, "no history on this daemon")
        known = sorted(set(self.server.backend.cameras()) | set(store.cameras()))
        form = query.get("format", ["json"])[0]
        if form not in ("json", "csv") or (form == "csv" and path == "/api/tracks"):
            raise ApiError(HTTPStatus.BAD_REQUEST, f"format={form!r}: use json (or csv for the history)")
        try:
            if path == "/api/tracks":
                return self._json(HTTPStatus.OK, tracks_document(store, query, known))
            document = history_document(store, query, known)
        except BadQuery as e:
            raise ApiError(HTTPStatus.BAD_REQUEST, str(e)) from None
        except LookupError as e:
            raise ApiError(HTTPStatus.NOT_FOUND, str(e)) from None
        if form == "csv":
            return self._send(HTTPStatus.OK, history_csv(document), "text/csv; charset=utf-8")
        self._json(HTTPStatus.OK, document)

    def _snapshot(self, camera: str) -> None:
        if not self.server.config.snapshots:
            raise ApiError(HTTPStatus.FORBIDDEN, "snapshots are off (http.snapshots: false)")
        if camera not in self.server.backend.cameras():
            raise ApiError(HTTPStatus.NOT_FOUND, "no such camera")
        jpeg = self.server.backend.snapshot(camera)
        if jpeg is None:
            raise ApiError(
                HTTPStatus.SERVICE_UNAVAILABLE, "no analysed frame yet; ask again after the next tick"
            )
        self._send(HTTPStatus.OK, jpeg, "image/jpeg")

    def _analyze(self) -> None:
        config = self.server.config
        if not config.snapshots:
            raise ApiError(HTTPStatus.FORBIDDEN, "image endpoints are off (http.snapshots: false)")
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send Content-Length")
        length = int(length_text)
        if length > config.max_upload_mb * 1024 * 1024:
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the image is over {config.max_upload_mb:g} MB"
            )
        body = self.rfile.read(length)
        self._body_read = True
        image = decode_upload(body, self.headers.get("Content-Type", ""))
        backend = self.server.backend
        if not backend.analyze_lock.acquire(timeout=ANALYZE_WAIT_S):
            raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "busy with other uploads; try again")
        try:
            document = backend.analyze(image)
        finally:
            backend.analyze_lock.release()
        self._json(HTTPStatus.OK, document)

    def do_GET(self) -> None:
        self._route("GET")

    def do_HEAD(self) -> None:
        self._route("HEAD")

    def do_POST(self) -> None:
        self._route("POST")


class WebServer(ThreadingHTTPServer):
    """The page and API on ``config.host:config.port``, served from a background thread."""

    daemon_threads = True
    allow_reuse_address = True
    MAX_CONNECTIONS = 32  # a thread each; beyond, new connections are closed at once

    def __init__(self, config: HttpConfig, backend: WebBackend) -> None:
        self.config, self.backend = config, backend
        self._slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)
        self._assets: dict[str, bytes] = {}
        host = config.host.strip("[]")
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, config.port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, up to :attr:`MAX_CONNECTIONS`: a client that opens hundreds
        must not starve the box of threads (each waits up to the handler's timeout)."""
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    @property
    def url(self) -> str:
        host = self.server_address[0]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{self.server_address[1]}/"

    def asset(self, name: str) -> bytes:
        if name not in self._assets:
            self._assets[name] = files("fer_edge.web").joinpath(name).read_bytes()
        return self._assets[name]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def serve(config: HttpConfig, backend: WebBackend, any_port: bool = False) -> WebServer | None:
    """The page and API started on ``config``'s address (``any_port``: a free port if that one is
    taken, for the demo). A port that cannot be had is one error line and no page: the cameras'
    results matter more than the page."""
    try:
        try:
            server = WebServer(config, backend)
        except OSError:
            if not any_port:
                raise
            server = WebServer(config.model_copy(update={"port": 0}), backend)
    except OSError as e:
        logger.error(
            "http: cannot listen on %s:%d (%s); the page and API are off",
            config.host,
            config.port,
            e.strerror or e,
        )
        return None
    server.start()
    logger.info("page and API on %s", server.url)
    return server
