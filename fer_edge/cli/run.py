"""``fer-edge run``: the daemon (``--config``, ``--check``, ``--demo``); no TensorFlow below."""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path
from typing import Any

from fer_edge.errors import UsageError
from fer_edge.models import BUNDLED_MODEL


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="the daemon: cameras in, emotions over MQTT out")
    p.add_argument("--config", help="daemon YAML config")
    p.add_argument("--check", action="store_true", help="validate --config and exit")
    p.add_argument(
        "--demo",
        action="store_true",
        help="no camera, broker or config needed: analyse a demo clip, print JSON lines, serve the page",
    )
    p.add_argument("--mqtt", metavar="HOST[:PORT]", help="with --demo: also publish to this broker")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
    p.add_argument(
        "--http-port", type=int, default=8765, help="with --demo: the page's port (a free one if taken)"
    )
    p.add_argument("--print", action="store_true", help="also print emotions documents to stdout")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from fer_edge.daemon.service import catch_stop_signals

    args.stop_event = catch_stop_signals()  # before the heavy imports and the model load
    return run(args, str(BUNDLED_MODEL))


def _parse_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":") if ":" in value else (value, "", "1883")
    if not port.isdigit() or not host:
        raise UsageError(f"--mqtt {value}: expected HOST or HOST:PORT")
    return host, int(port)


def run(args: argparse.Namespace, default_model: str) -> int:
    from fer_edge.daemon.app import Daemon
    from fer_edge.daemon.config import CameraConfig, DaemonConfig, HttpConfig, MqttConfig
    from fer_edge.daemon.config_file import load_config
    from fer_edge.daemon.service import configure_logging
    from fer_edge.daemon.startup import check_state_dir, load_pipeline, print_sink

    configure_logging()
    if args.demo:
        from fer_edge.daemon.democlip import DEMO_SPRITES, write_clip

        host, port = _parse_host_port(args.mqtt) if args.mqtt else ("127.0.0.1", 1883)
        with tempfile.TemporaryDirectory(prefix="fer-edge-demo-") as tmp:
            workdir = Path(tmp)
            clip = write_clip(workdir / "demo.mp4", DEMO_SPRITES, seconds=10)
            config = DaemonConfig(
                mqtt=MqttConfig(host=host, port=port),
                state_dir=workdir / "state",
                cameras={"demo": CameraConfig(url=str(clip), interval_s=1.0)},
                http=HttpConfig(port=args.http_port),
            )
            daemon = Daemon(
                config,
                default_model,
                use_mqtt=bool(args.mqtt),
                sinks=[print_sink],
                duration_s=args.duration,
                stop_event=getattr(args, "stop_event", None),
                any_http_port=True,
            )
            return daemon.run()
    if not args.config:
        raise UsageError("run needs --config FILE (or --demo)")
    config = load_config(args.config)
    if args.check:
        check_state_dir(config.state_dir, create=False)
        load_pipeline(config, default_model)
        print(
            f"{args.config}: OK ({len(config.cameras)} camera(s), broker "
            f"{config.mqtt.host}:{config.mqtt.port})"
        )
        return 0
    logging.getLogger().setLevel(config.log_level.upper())
    configure_logging(config.log_format)
    daemon = Daemon(
        config,
        default_model,
        sinks=[print_sink] if args.print else [],
        duration_s=args.duration,
        stop_event=getattr(args, "stop_event", None),
    )
    return daemon.run()
