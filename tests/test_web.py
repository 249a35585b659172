"""The page and the HTTP API of a real daemon on real RTSP streams with faces, and a real browser.

Chromium (headless, Debian's package) loads the page as a person would and the test reads the
rendered DOM: a card per camera, its faces with emotions, the chart drawn; a screenshot is kept.
The API is exercised with real HTTP: state, snapshots, analyze (the astronaut smiles), 401, 413,
415, 403 with snapshots off, and uploads analysed while the cameras keep their one result a second.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from fer_edge.daemon.democlip import DEMO_SPRITES, face_image, render_frame
from fer_edge.daemon.payloads import parse_iso
from fer_edge.daemon.web import ApiError, decode_upload
from fer_edge.models import BUNDLED_MODEL
from tests.browser import chromium, rendered_dom, screenshot
from tests.servers import (
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

TOKEN = "correct-horse-battery-staple"
CAMERAS = ("door", "hall")


needs_stack = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (have_mosquitto() and have_rtsp_server()), reason="needs mosquitto and gst-rtsp-server"
    ),
]


# --- no daemon needed ----------------------------------------------------------------------------


def test_uploads_are_checked_for_type() -> None:
    ok, png = cv2.imencode(".png", np.full((40, 60, 3), 128, np.uint8))
    assert ok
    assert decode_upload(png.tobytes(), "image/png").shape == (40, 60, 3)
    boundary = "xyz"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png.tobytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert decode_upload(form, f"multipart/form-data; boundary={boundary}").shape == (40, 60, 3)
    for body, kind in ((b"hello", "text/plain"), (b"not an image", "image/jpeg"), (png.tobytes(), "")):
        with pytest.raises(ApiError) as raised:
            decode_upload(body, kind)
        assert raised.value.status == 415


def test_listening_off_loopback_needs_a_token(tmp_path: Path) -> None:
    from fer_edge.daemon.config_file import load_config
    from fer_edge.errors import ConfigError

    config = tmp_path / "c.yaml"
    config.write_text(
        "mqtt: {host: 127.0.0.1}\nhttp: {host: 0.0.0.0}\ncameras: {a: {url: rtsp://192.0.2.1/x}}\n"
    )
    with pytest.raises(ConfigError, match=r"http\.token"):
        load_config(config)
    config.write_text(
        f"mqtt: {{host: 127.0.0.1}}\nhttp: {{host: 0.0.0.0, token: {TOKEN}}}\n"
        "cameras: {a: {url: rtsp://192.0.2.1/x}}\n"
    )
    assert load_config(config).http is not None


# --- a real daemon --------------------------------------------------------------------------------


class Stack:
    def __init__(self, http_port: int, collector: MqttCollector, proc: subprocess.Popen[bytes]) -> None:
        self.http_port, self.collector, self.proc = http_port, collector, proc

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def get(self, path: str, authorised: bool = True) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}"} if authorised else {})


def _start_daemon(
    tmp_path: Path, broker: Mosquitto, urls: dict[str, str], model: Path, http: str
) -> tuple[subprocess.Popen[bytes], Path]:
    cameras = "".join(f"  {name}:\n    url: {url}\n" for name, url in urls.items())
    config = tmp_path / "config.yaml"
    config.write_text(
        f"device_id: webbox\nstate_dir: {tmp_path / 'state'}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, discovery: false}}\n"
        f"model: {{path: {model}}}\nhttp: {http}\ncameras:\n{cameras}"
    )
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(daemon_command(config), stdout=out, stderr=out, start_new_session=True)
    return proc, log


@pytest.fixture(scope="module")
def model() -> Path:
    if not BUNDLED_MODEL.exists():
        pytest.skip("the bundled model is missing")
    return BUNDLED_MODEL


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, model: Path) -> Iterator[Stack]:
    if not (have_mosquitto() and have_rtsp_server()):
        pytest.skip("needs mosquitto and gst-rtsp-server")
    tmp_path = tmp_path_factory.mktemp("web")
    face = face_image()
    frames = np.stack([render_frame(face, DEMO_SPRITES, i / 10, 640, 360) for i in range(40)])
    servers = [RtspServer(frames, tmp_path, 10) for _ in CAMERAS]
    with Mosquitto(tmp_path) as broker:
        for server in servers:
            server.start()
        port = free_port()
        urls = {name: s.url for name, s in zip(CAMERAS, servers, strict=True)}
        proc, log = _start_daemon(
            tmp_path, broker, urls, model, f"{{port: {port}, token: {TOKEN}, max_upload_mb: 1}}"
        )
        collector = MqttCollector(broker.port, "fer-edge/webbox/#")
        try:
            wait_for(lambda: port_open(port) or proc.poll() is not None, 60, "the page's port")
            assert proc.poll() is None, log.read_text()[-2000:]
            for name in CAMERAS:
                wait_for(lambda n=name: collector.payloads(f"/{n}/emotions"), 60, f"a result from {name}")
            yield Stack(port, collector, proc)
        finally:
            code = stop_process(proc)
            collector.close()
            for server in servers:
                server.stop()
    assert code == 0
    assert "Traceback" not in log.read_text()


@pytest.mark.integration
def test_state_and_snapshots(stack: Stack) -> None:
    status, _, body = stack.get("/api/state")
    assert status == 200
    state = json.loads(body)
    assert set(state["cameras"]) == set(CAMERAS) and state["device"] == "webbox"
    door = state["cameras"]["door"]
    assert door["status"] == "streaming" and door["last"]["camera"] == "door"
    assert len(door["last"]["faces"]) == 2
    assert door["people_today"] >= 2  # both faces' visits
    status, headers, jpeg = stack.get("/api/cameras/door/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (360, 640, 3)
    # the boxes are drawn in colour on the gray frame: some pixels are far from gray
    spread = image.max(axis=2).astype(int) - image.min(axis=2).astype(int)
    assert (spread > 60).sum() > 500
    assert stack.get("/api/cameras/nowhere/snapshot.jpg")[0] == 404
    status, _, metrics = stack.get("/metrics")
    assert status == 200 and b"fer_edge_ticks_total" in metrics


@pytest.mark.integration
def test_the_token_is_required_and_nothing_else_is_served(stack: Stack) -> None:
    for path in ("/api/state", "/api/cameras/door/snapshot.jpg", "/metrics"):
        status, headers, _ = stack.get(path, authorised=False)
        assert status == 401 and "Bearer" in headers["WWW-Authenticate"], path
    assert stack.get(f"/api/state?token={TOKEN}", authorised=False)[0] == 200
    assert stack.get("/api/state?token=wrong-token-of-some-length", authorised=False)[0] == 401
    # the page's static files hold no data: open, so the browser can load what asks with the token
    assert stack.get("/app.js", authorised=False)[0] == 200
    assert stack.get("/healthz", authorised=False)[0] == 200  # probes need no token
    for path in ("/../../etc/passwd", "/fer_edge/web/", "/app.js/../index.html", "/web/", "/%2e%2e/x"):
        assert stack.get(path)[0] == 404, path


@pytest.mark.integration
def test_analyze_says_the_astronaut_is_happy(stack: Stack) -> None:
    from skimage import data

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    assert ok
    auth = {"Authorization": f"Bearer {TOKEN}"}
    status, _, body = stack.request(
        "POST", "/api/analyze", jpeg.tobytes(), {**auth, "Content-Type": "image/jpeg"}
    )
    assert status == 200, body
    document = json.loads(body)
    assert set(document) == {"path", "model", "faces"}  # as `fer-edge predict --json`
    assert [f["emotion"] for f in document["faces"]] == ["happy"]
    too_big = np.random.default_rng(0).integers(0, 255, 2 * 1024 * 1024, dtype=np.uint8).tobytes()
    for _ in range(5):  # the refusal reaches the client every time, not a reset mid-upload
        status, _, _ = stack.request("POST", "/api/analyze", too_big, {**auth, "Content-Type": "image/png"})
        assert status == 413
    assert stack.request("POST", "/api/analyze", too_big, {"Content-Type": "image/png"})[0] == 401
    status, _, body = stack.request("POST", "/api/analyze", b"hello", {**auth, "Content-Type": "text/plain"})
    assert status == 415 and b"image/jpeg" in body
    assert stack.request("POST", "/api/analyze", jpeg.tobytes(), {"Content-Type": "image/jpeg"})[0] == 401


@pytest.mark.integration
def test_uploads_do_not_hold_up_the_cameras(stack: Stack) -> None:
    """Three clients upload 1080p images back to back for ~12 s; each camera still publishes one
    result a second, numbered without a gap."""
    frame = render_frame(face_image(), DEMO_SPRITES, 0.0, 1920, 1080)
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "image/jpeg"}
    before = {n: len(stack.collector.payloads(f"/{n}/emotions")) for n in CAMERAS}
    answers: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answers.append(stack.request("POST", "/api/analyze", jpeg.tobytes(), headers)[0])

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        wait_for(
            lambda: all(len(stack.collector.payloads(f"/{n}/emotions")) >= before[n] + 12 for n in CAMERAS),
            60,
            "12 more results from each camera",
        )
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
    assert answers and set(answers) == {200}, answers
    for name in CAMERAS:
        docs = stack.collector.documents(f"/{name}/emotions")[before[name] :]
        seqs = [int(d["seq"]) for d in docs]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        stamps = [parse_iso(d["frame_ts"]) for d in docs]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        assert 0.9 <= rate <= 1.1, (name, rate)


@pytest.mark.integration
@pytest.mark.skipif(chromium() is None, reason="chromium is not installed (.ci/run installs it)")
def test_a_browser_sees_the_cameras_faces_and_chart(stack: Stack, tmp_path: Path) -> None:
    def history_has_faces() -> bool:
        buckets = json.loads(stack.get("/api/history?from=-1h&camera=door")[2])["cameras"]["door"]
        return any(b["emotions"] for b in buckets)

    wait_for(history_has_faces, 30, "the history's first flush")  # every 10 s
    url = f"http://127.0.0.1:{stack.http_port}/?token={TOKEN}"
    dom = rendered_dom(url, tmp_path / "profile")
    for name in CAMERAS:
        assert f'data-camera="{name}"' in dom, dom[:2000]
    assert dom.count('data-emotion="happy"') >= 2  # faces listed with their emotion
    assert re.search(r'<rect[^>]*data-emotion="happy"', dom)  # the history's chart is drawn
    assert 'class="status streaming"' in dom
    assert "snapshot.jpg?seq=" in dom
    shot = screenshot(url, tmp_path / "page.png", tmp_path / "profile")
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (900, 1280)
    # the snapshot cards are drawn: large dark image areas and coloured boxes, not a blank page
    assert (image.max(axis=2) < 130).mean() > 0.1


@pytest.mark.integration
def test_snapshots_off_turns_every_image_endpoint_off(tmp_path: Path, model: Path) -> None:
    if not (have_mosquitto() and have_rtsp_server()):
        pytest.skip("needs mosquitto and gst-rtsp-server")
    face = face_image()
    frames = np.stack([render_frame(face, DEMO_SPRITES, i / 10, 640, 360) for i in range(20)])
    port = free_port()
    with Mosquitto(tmp_path) as broker, RtspServer(frames, tmp_path, 10) as camera:
        proc, log = _start_daemon(
            tmp_path, broker, {"door": camera.url}, model, f"{{port: {port}, snapshots: false}}"
        )
        try:
            wait_for(lambda: port_open(port) or proc.poll() is not None, 60, "the page's port")
            stack = Stack(port, MqttCollector(broker.port, "x/#"), proc)
            wait_for(
                lambda: json.loads(stack.get("/api/state")[2])["cameras"]["door"]["ticks"] > 0, 60, "a tick"
            )
            assert stack.get("/api/cameras/door/snapshot.jpg")[0] == 403
            status, _, _ = stack.request("POST", "/api/analyze", b"x", {"Content-Type": "image/jpeg"})
            assert status == 403
            state: dict[str, Any] = json.loads(stack.get("/api/state")[2])
            assert state["snapshots"] is False
            stack.collector.close()
        finally:
            assert stop_process(proc) == 0, log.read_text()[-2000:]


def test_connections_beyond_the_cap_are_closed_and_the_server_goes_on() -> None:
    """Idle connections hold a thread each until the handler's timeout; past the cap, a new one
    is closed at once, and once they go the server answers again."""
    import socket

    from fer_edge.daemon.config import HttpConfig
    from fer_edge.daemon.web import WebBackend, WebServer

    backend = WebBackend(
        state=lambda: {"cameras": {}},
        snapshot=lambda _c: None,
        cameras=lambda: [],
        analyze=lambda _i: {},
        healthy=lambda: True,
        metrics=None,
    )
    server = WebServer(HttpConfig(port=free_port()), backend)
    server.start()
    idle = []
    try:
        for _ in range(WebServer.MAX_CONNECTIONS):
            idle.append(socket.create_connection(server.server_address, timeout=5))
        wait_for(lambda: server._slots._value == 0, 10, "every slot taken")  # type: ignore[attr-defined]
        extra = socket.create_connection(server.server_address, timeout=5)
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert extra.recv(100) == b""  # closed without an answer
        extra.close()
    finally:
        for conn in idle:
            conn.close()
    wait_for(lambda: server._slots._value == WebServer.MAX_CONNECTIONS, 10, "the slots to come back")  # type: ignore[attr-defined]
    conn = http.client.HTTPConnection(*server.server_address, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    conn.close()
    server.stop()
