"""The daemon's configuration, as pydantic models: every key, its default and what it means.

Reading it from YAML (with ``${VAR}`` secrets, and errors that name the line) is
:mod:`~fer_edge.daemon.config_file`.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsConfig(_Base):
    ca_certs: Path | None = Field(None, description="CA bundle; default: the system's")
    certfile: Path | None = None
    keyfile: Path | None = None
    insecure: bool = Field(False, description="skip hostname verification (testing only)")


class MqttConfig(_Base):
    host: str = Field(description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    base_topic: str = "fer-edge"
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = Field(None, description="default: fer-edge-<device_id>")
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsConfig | None = None
    discovery: bool = Field(True, description="publish Home Assistant discovery")
    discovery_prefix: str = "homeassistant"
    stats_interval_s: float = Field(30.0, gt=0)
    ready_timeout_s: float = Field(
        60.0,
        ge=0,
        description="send READY to systemd after this long even if the broker is "
        "unreachable (results are spooled meanwhile)",
    )

    @field_validator("base_topic", "discovery_prefix")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        if not value or any(c in value for c in "#+") or value.startswith("/") or value.endswith("/"):
            raise ValueError("must be a non-empty topic prefix without '#', '+' or edge slashes")
        return value


class ModelConfig(_Base):
    path: Path | None = Field(None, description="emotion model .tflite; default: the bundled int8")
    delegate: str = Field("cpu", description="cpu | gpu | edgetpu | /path/to/delegate.so")
    num_threads: int = Field(1, ge=1, le=64)
    fallback_to_cpu: bool = True
    tta: Literal["none", "flip"] = Field(
        "none",
        description="flip: average each face with its mirror image (one batch, ~1.6x per face); "
        "on the bundled model, itself two averaged CNNs, it changes PublicTest accuracy by -0.25 points",
    )

    @model_validator(mode="after")
    def _model_exists(self) -> ModelConfig:
        if self.path is not None and not self.path.is_file():
            raise ValueError(f"model file {self.path} does not exist")
        return self


class DetectorConfig(_Base):
    kind: Literal["blazeface", "haar"] = Field(
        "blazeface", description="blazeface: the bundled CNNs (finds small faces); haar: no model file"
    )
    model_path: Path | None = Field(
        None, description="blazeface: the model that gives final boxes (default: the bundled short-range)"
    )
    proposal_model_path: Path | None = Field(
        None, description="blazeface: the model that proposes faces (default: the bundled back-camera)"
    )
    framing_path: Path | None = Field(
        None, description="the detector's box-to-crop framing JSON (default: the one shipped with it)"
    )
    min_face_px: int = Field(32, ge=8, description="smallest face box side searched, in source pixels")
    min_classify_px: int = Field(
        28,
        ge=8,
        description="smallest face crop side given an emotion; smaller faces are reported as too small "
        "(the model's accuracy falls fast below it: README)",
    )
    max_yaw_deg: float = Field(
        45.0,
        gt=0,
        le=90,
        description="blazeface: a face turned further than this (head yaw from its keypoints) is "
        "reported as turned away, with no emotion: the model reads frontal faces",
    )
    attention_yaw_deg: float = Field(
        30.0, gt=0, le=90, description="blazeface: a face turned less than this looks at the camera"
    )
    detect_width: int = Field(640, ge=64, description="haar: frames are downscaled to this width")
    scale_factor: float = Field(1.2, gt=1.0, le=2.0, description="haar: image pyramid step")
    threads: int = Field(
        1, ge=1, le=64, description="detector threads; 1 spends the least CPU per frame (a box's budget)"
    )
    score_threshold: float = Field(
        0.65,
        ge=0,
        le=1,
        description="blazeface: least pooled score of a new face (both looks and the proposal)",
    )
    track_threshold: float = Field(
        0.4, ge=0, le=1, description="blazeface: least pooled score that keeps a face seen last tick"
    )
    proposal_threshold: float = Field(
        0.25, ge=0, le=1, description="blazeface: least score of a proposal worth a closer look"
    )
    search_budget_ms: float = Field(
        150.0,
        ge=0,
        le=60_000,
        description="most milliseconds a tick spends searching moved areas for new faces; what is "
        "left waits for the next tick (rain, foliage and crowds are motion everywhere); known faces "
        "are followed first and whole-frame scans are not capped (0: no budget)",
    )
    full_scan_every: int = Field(
        30,
        ge=1,
        le=3600,
        description="ticks between whole-frame scans; between them only known faces' surroundings "
        "and moving areas are searched, so a face that arrives without moving is found within this "
        "many ticks (1: scan the whole frame every tick)",
    )

    @model_validator(mode="after")
    def _files_exist(self) -> DetectorConfig:
        for key in ("model_path", "proposal_model_path", "framing_path"):
            path = getattr(self, key)
            if path is not None and not path.is_file():
                raise ValueError(f"{key} {path} does not exist")
        return self


class CameraConfig(_Base):
    url: str = Field(min_length=1, description="rtsp://..., a video file, or a device such as /dev/video0")
    interval_s: float = Field(1.0, gt=0, le=3600, description="seconds between analyses")
    decode: Literal["auto", "keyframes", "all"] = Field(
        "auto",
        description="auto: key frames alone when they come at least once per interval, else a run "
        "of frames after each key frame, as far as the interval needs (the GOP is measured; both in "
        "stats); keyframes: key frames only (fewer results than one per interval on long GOPs); "
        "all: every frame",
    )
    rtsp_transport: Literal["tcp", "udp"] = "tcp"
    open_timeout_s: float = Field(10.0, gt=0)
    stall_timeout_s: float = Field(10.0, gt=0, description="no frame for this long: stalled")
    backoff_initial_s: float = Field(1.0, gt=0)
    backoff_max_s: float = Field(
        5.0,
        gt=0,
        description="longest wait between reconnect attempts (with +-20% jitter): a camera is "
        "back within about this long of its server",
    )
    smoothing: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="EMA weight of past scores per tracked face (temporal voting; 0 = off); reset "
        "on a scene cut so a new face never inherits an old one's scores",
    )
    track_end_s: float = Field(
        3.0,
        gt=0,
        le=600,
        description="a visit ends once its face has not been seen for this long (tracks topic)",
    )
    enabled: bool = True

    @model_validator(mode="before")
    @classmethod
    def _replace_keyframes_only(cls, data: Any) -> Any:
        """``keyframes_only`` (before ``decode``) keeps working: true decoded key frames only,
        which ``decode: auto`` now does by itself whenever key frames keep time."""
        if isinstance(data, dict) and "keyframes_only" in data:
            if "decode" in data:
                raise ValueError("keyframes_only is replaced by decode: remove keyframes_only")
            data = dict(data)
            old = data.pop("keyframes_only")
            if not isinstance(old, bool):
                raise ValueError("keyframes_only (replaced by decode) must be true or false")
            data["decode"] = "auto" if old else "all"
            logger.warning(
                "config: keyframes_only: %s is replaced by decode: %s; please update the config",
                str(old).lower(),
                data["decode"],
            )
        return data


class HttpConfig(_Base):
    host: str = Field("127.0.0.1", description="where the page and API listen; not loopback: token required")
    port: int = Field(8765, ge=1, le=65535)
    token: str | None = Field(
        None, description="bearer token (header, or ?token= for the page); required off loopback"
    )
    snapshots: bool = Field(
        True,
        description="false: no image endpoint at all (camera snapshots, analyze), for sites "
        "that must not show faces",
    )
    max_upload_mb: float = Field(10.0, gt=0, le=200, description="POST /api/analyze body limit")

    @model_validator(mode="after")
    def _token_off_loopback(self) -> HttpConfig:
        if not is_loopback(self.host) and not self.token:
            raise ValueError(
                f"listening on {self.host} (not loopback) needs http.token: anyone on the network "
                "could otherwise watch the cameras"
            )
        if self.token is not None and len(self.token) < 16:
            raise ValueError("http.token: use at least 16 characters (e.g. openssl rand -hex 16)")
        return self


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


class SpoolConfig(_Base):
    max_messages: int = Field(100_000, ge=10, description="oldest dropped beyond this")


def _default_state_dir() -> Path:
    env = os.environ.get("STATE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    return Path.home() / ".local" / "state" / "fer-edge"


class DaemonConfig(_Base):
    device_id: str = Field(default_factory=lambda: socket.gethostname().split(".")[0])
    state_dir: Path = Field(default_factory=_default_state_dir)
    mqtt: MqttConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    cameras: dict[str, CameraConfig] = Field(min_length=1)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    analysis_workers: int | None = Field(
        None, ge=1, le=64, description="analysis threads, each with its own models; null: one per core"
    )
    stop_timeout_s: float = Field(
        10.0, gt=0, le=300, description="SIGTERM: the daemon exits within this long, whatever the load"
    )
    history_days: int = Field(
        30, ge=1, le=3650, description="per-minute history (history.sqlite3 in state_dir) kept this long"
    )
    history_max_mb: float = Field(
        512.0,
        ge=1,
        description="the history's size bound: past it the oldest day goes (a year of 16 cameras "
        "is about 300 MB)",
    )
    http: HttpConfig | None = Field(
        default_factory=HttpConfig, description="the page, the HTTP API and /metrics; null: off"
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Prometheus /metrics on a port of its own (also on http)"
    )
    metrics_host: str = "127.0.0.1"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @field_validator("device_id")
    @classmethod
    def _device_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_' and '-' only (it becomes an MQTT topic level)")
        return value

    @field_validator("cameras")
    @classmethod
    def _camera_names(cls, value: dict[str, CameraConfig]) -> dict[str, CameraConfig]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"camera name {name!r}: use letters, digits, '_' and '-' only")
        if not any(cam.enabled for cam in value.values()):
            raise ValueError("every camera has enabled: false; the daemon would analyse nothing")
        return value
