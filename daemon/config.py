"""Daemon configuration: YAML, validated by pydantic, with secrets from the environment.

``${VAR}`` (or ``${VAR:-default}``) is replaced from the environment, else from the file ``VAR`` in
systemd's ``$CREDENTIALS_DIRECTORY``. Every error becomes one line with the key path and the YAML
line it came from, raised as :class:`ConfigError` (exit 78).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fer_edge.daemon.redact import mask_url, shown_value
from fer_edge.errors import ConfigError, MissingInputError

logger = logging.getLogger(__name__)

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
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


class _UnsetVariable(Exception):
    """``${VAR}`` with no value; carries the key path so the error can name the YAML line."""

    def __init__(self, name: str, loc: tuple[object, ...]) -> None:
        super().__init__(name)
        self.name, self.loc = name, loc


def _secret(name: str, default: str | None, where: tuple[object, ...]) -> str:
    if name in os.environ:
        return os.environ[name]
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        return (Path(cred_dir) / name).read_text().rstrip("\n")
    if default is not None:
        return default
    raise _UnsetVariable(name, where)


def _expand(value: Any, where: tuple[object, ...]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: _secret(m.group(1), m.group(2), where), value)
    if isinstance(value, dict):
        return {k: _expand(v, (*where, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*where, i)) for i, v in enumerate(value)]
    return value


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based YAML line of the value at ``loc`` (or of its nearest existing parent)."""
    if node is None:
        return None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(key)), None)
            if match is None:
                # an unknown key: point at the key itself
                match = next((k for k, _ in node.value if getattr(k, "value", None) == str(key)), None)
                return (match or node).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
    return node.start_mark.line + 1


def _describe(error: dict[str, Any], path: Path, root: yaml.Node | None) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_of(root, loc)
    where = f"{path}:{line}" if line else str(path)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] == "missing":
        message = "required key is missing"
    value = error.get("input")
    shown = (
        ""
        if error["type"] in ("missing", "extra_forbidden") or isinstance(value, dict)
        else shown_value(value, loc)
    )
    return f"{where}: {key}: {mask_url(message)}{shown}"


def _refuse_aliases(text: str, path: Path) -> None:
    """Anchors and aliases (``&a`` / ``*a``) are not needed in a config, and a few of them nested
    make a 'YAML bomb' that expands to billions of values: refuse them outright."""
    for event in yaml.parse(text):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise ConfigError(f"{path}:{line}: YAML aliases (*name) are not supported in the config")


def _refuse_duplicate_keys(node: yaml.Node | None, path: Path) -> None:
    """YAML lets a later key silently replace an earlier one (a second camera of the same name
    drops the first); a config must say each setting once."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[object, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None:
                if name in seen:
                    raise ConfigError(
                        f"{path}:{key.start_mark.line + 1}: duplicate key {name!r} "
                        f"(first at line {seen[name]})"
                    )
                seen[name] = key.start_mark.line + 1
            _refuse_duplicate_keys(value, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path)


def load_config(path: str | os.PathLike[str]) -> DaemonConfig:
    """Read, expand and validate a daemon config; the first problem raises :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}); expected YAML") from None
    except OSError as e:
        raise MissingInputError(f"{path}: cannot read the config file ({e.strerror})") from None
    try:
        _refuse_aliases(text, path)
        root = yaml.compose(text)
        _refuse_duplicate_keys(root, path)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = str(getattr(e, "problem", None) or e).strip().splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    try:
        raw = _expand(raw, ())
    except _UnsetVariable as e:
        line = _line_of(root, e.loc)
        where = f"{path}:{line}" if line else str(path)
        key = ".".join(str(p) for p in e.loc)
        raise ConfigError(
            f"{where}: {key}: ${{{e.name}}} is not set (environment or $CREDENTIALS_DIRECTORY)"
        ) from None
    try:
        return DaemonConfig.model_validate(raw)
    except ValidationError as e:
        errors = e.errors()
        extra = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(_describe(errors[0], path, root) + extra) from None
