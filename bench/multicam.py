"""``fer-edge bench --cameras 1,4,8,16``: many cameras on one box, the real daemon on real RTSP.

One 1080p25 H.264 clip (1 s GOP by default, sensor-like grain, one face walking) is served by
GStreamer's RTSP server, every client its own stream from a random frame, as separate cameras
would be. For each N the real daemon (``fer-edge run``, default config) analyses N such cameras
and publishes to a real mosquitto. After a warm-up it measures, over a window:
  * results per camera per second (min and mean over the cameras, from the frames' timestamps);
  * the daemon's CPU (cores) and CPU per camera against the key-frame decoding floor: a separate
    process that receives the same stream and decodes its key frames alone (the least any 1 Hz
    analysis must spend), measured beside the daemon over the same window, so the machine's
    drift between runs (+-10% on a shared box) stays out of the ratio;
  * peak and final RSS;
  * publish latency, frame decoded to PUBACK (p50/p95), as the daemon reports it in stats.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from fer_edge.daemon.payloads import parse_iso

FPS, WIDTH, HEIGHT = 25, 1920, 1080


def clip_frames(seconds: float, noise: float = 4.0) -> Iterator[np.ndarray]:
    """One face walking across a 1080p frame and back, with camera grain (flat video decodes
    too cheaply). The walk is one bounce in x and two in y per clip, so the loop is seamless:
    a face that jumped at the loop point would make the daemon look for it over the whole frame,
    which no real camera's face makes it do every few seconds."""
    from fer_edge.daemon.democlip import Sprite, face_image, render_frame

    face = face_image()
    scale = HEIGHT / 5 / 95
    side = round(face.shape[0] * scale)
    walker = Sprite(
        scale=scale, x=100, y=300, vx=2 * (WIDTH - side) / seconds, vy=4 * (HEIGHT - side) / seconds
    )
    rng = np.random.default_rng(0)
    grain = [rng.normal(0, noise, (HEIGHT, WIDTH, 1)).astype(np.int16) for _ in range(8)]
    for i in range(round(seconds * FPS)):
        image = render_frame(face, [walker], i / FPS, WIDTH, HEIGHT)
        yield np.clip(image + grain[i % len(grain)], 0, 255).astype(np.uint8)


SCENES = {  # --scene: what the cameras see
    "face": "one face walking, flat backdrop",
    "walker": "one person (head, shoulders, arms, legs) walking at 1.2 m/s, textured backdrop",
    "three": "three people walking at 1.0-1.4 m/s at three depths, textured backdrop",
}


def scene_frames(scene: str, seconds: float) -> Iterator[np.ndarray]:
    if scene == "face":
        return clip_frames(seconds)
    from fer_edge.bench.walkers import one_walker, three_walkers, walker_frames

    walkers = one_walker() if scene == "walker" else three_walkers()
    return walker_frames(walkers, seconds, WIDTH, HEIGHT, FPS)


def make_clip(
    path: Path, seconds: float = 24.0, gop_s: float = 1.0, scene: str = "face", b_frames: bool = False
) -> Path:
    """The cameras' clip: ``scene`` encoded as a low-latency camera does, or with x264's
    defaults (``b_frames``: B-frames, as NVR restreams and ffmpeg re-encodes send)."""
    from fer_edge.bench.h264 import write_h264

    frames = scene_frames(scene, seconds)
    return write_h264(path, frames, WIDTH, HEIGHT, FPS, gop_s=gop_s, b_frames=b_frames)


# --- what the kernel says about a process ---------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> tuple[float, float]:
    """(RSS, peak RSS) of ``pid`` in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024.0
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


# --- the floor: receive one stream and decode its key frames alone ---------------------------


FLOOR_PROCESSES = 3  # concurrent floors on one 30 s window differ by up to 14%: take the median


class KeyframeFloor:
    """CPU seconds per second a process spends receiving ``url`` and decoding its key frames
    alone, measured in child processes (nothing else counted) over the window that starts at
    ``start_at`` (``time.monotonic()``, which Linux shares between processes) and lasts
    ``seconds``: started before a row's warm-up, they measure the same seconds as the daemon.

    One process's figure scatters by +-7% around the others' in the same seconds (each runs on
    whichever core is free, and this box's two cores are not equally fast from one second to
    the next), so the floor is the median of ``FLOOR_PROCESSES``; together they take about 0.07
    of a core, which the rows that overload the box give up."""

    def __init__(self, url: str, start_at: float, seconds: float) -> None:
        self.seconds = seconds
        command = [sys.executable, "-m", "fer_edge.bench.multicam", "--floor", url]
        self._procs = [
            subprocess.Popen(
                [*command, repr(start_at), repr(seconds)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(FLOOR_PROCESSES)
        ]
        self.figures: list[float] = []

    def result(self) -> float:
        """The median floor, once the window has passed (waits for it)."""
        for proc in self._procs:
            out, err = proc.communicate(timeout=self.seconds + 120)
            if proc.returncode != 0:
                raise RuntimeError(f"the key-frame floor failed: {err.strip().splitlines()[-1:]}")
            self.figures.append(float(out.strip().splitlines()[-1]))
        return float(np.median(self.figures))

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


def _floor_main(url: str, start_at: float, seconds: float) -> None:
    import av

    from fer_edge.daemon.cadence import DecodePlan
    from fer_edge.daemon.decode import configure_decoder, planned_frames

    plan = DecodePlan("keyframes", 1.0)
    with av.open(url, options={"rtsp_transport": "tcp"}, timeout=(10, 10)) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, "keyframes")
        start_cpu = start_wall = None
        for _frame, _ms in planned_frames(container, stream, plan):  # once a key frame
            now = time.monotonic()
            if start_wall is None and now >= start_at:
                start_cpu, start_wall = time.process_time(), now
            if start_wall is not None and now - start_wall >= seconds:
                break
    assert start_cpu is not None and start_wall is not None
    print(f"{(time.process_time() - start_cpu) / (time.monotonic() - start_wall):.6f}")


# --- N cameras ---------------------------------------------------------------------------------


def run_cameras(
    count: int,
    url: str,
    broker_port: int,
    workdir: Path,
    warmup_s: float,
    seconds: float,
    extra: dict[str, Any] | None = None,
    page: str = "off",
    daemon_path: Path | None = None,
) -> dict[str, Any]:
    """The real daemon on ``count`` cameras of ``url``: the figures of one table row. ``page``:
    ``off`` (``http: null``), ``idle`` (the page served, no browser) or ``open`` (headless
    chromium showing the page through the window, as a person at a 1280x900 screen would)."""
    import yaml

    from fer_edge.bench.loopback import (
        MqttCollector,
        daemon_command,
        free_port,
        port_open,
        stop_process,
        wait_for,
    )

    names = [f"cam{i:02d}" for i in range(count)]
    device = f"multi{count}"
    http_port = free_port()
    config = {
        "device_id": device,
        "state_dir": str(workdir / f"state-{count}-{page}"),
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "discovery": False, "stats_interval_s": 5},
        "http": None if page == "off" else {"port": http_port},
        "cameras": {name: {"url": url, **(extra or {})} for name in names},
    }
    path = workdir / f"config-{count}.yaml"
    path.write_text(yaml.safe_dump(config))
    collector = MqttCollector(broker_port, f"fer-edge/{device}/#")
    browser: subprocess.Popen[bytes] | None = None
    floor: KeyframeFloor | None = None
    with (workdir / f"daemon-{count}.log").open("wb") as log:
        command, env = daemon_command(path), None
        if daemon_path is not None:
            # another version's daemon (a before/after row): its package first, this environment's
            # libraries after, and no site hooks (they would put this checkout's package back)
            import site

            command = [command[0], "-S", *command[1:]]
            paths = [str(daemon_path), *site.getsitepackages()]
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
        proc = subprocess.Popen(  # not from this checkout's folder: python -m would find it first
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=workdir
        )
    try:
        wait_for(
            lambda: all(collector.payloads(f"/{n}/emotions") for n in names) or proc.poll() is not None,
            120,
            f"a result from each of {count} cameras",
            interval=0.2,
        )
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode}; see {log.name}")
        if page == "open":
            wait_for(lambda: port_open(http_port), 30, "the page")
            browser = open_page(f"http://127.0.0.1:{http_port}/", workdir / f"profile-{count}")
        floor = KeyframeFloor(url, time.monotonic() + warmup_s, seconds)
        time.sleep(warmup_s)  # a benchmark's warm-up: nothing to wait on but time
        cpu0, t0, wall0 = cpu_seconds(proc.pid), time.monotonic(), time.time()
        rss_samples = []
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            rss_samples.append(memory_mb(proc.pid)[0])
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        wall1 = time.time()
        rss, peak = memory_mb(proc.pid)
        stats_before = len(collector.documents(f"{device}/stats"))
        wait_for(lambda: len(collector.documents(f"{device}/stats")) > stats_before, 15, "fresh stats")
        stats = collector.documents(f"{device}/stats")[-1]
        floor_cpu = floor.result()
    finally:
        if floor is not None:
            floor.stop()
        if browser is not None:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait(timeout=30)
        began = time.monotonic()
        code = stop_process(proc, timeout=30)
        stopped_s = time.monotonic() - began
        collector.close()
    rates = []
    for name in names:
        stamps = [parse_iso(d["frame_ts"]) for d in collector.documents(f"/{name}/emotions")]
        rates.append(sum(wall0 <= s < wall1 for s in stamps) / (wall1 - wall0))
    cams = stats["cameras"].values()
    return {
        "cameras": count,
        "page": page,
        "results_per_camera_s": {"min": round(min(rates), 3), "mean": round(float(np.mean(rates)), 3)},
        "cpu_cores": round(cpu, 4),
        "keyframe_floor_cpu_per_camera": round(floor_cpu, 5),
        "keyframe_floors": [round(f, 5) for f in floor.figures],
        "cpu_vs_keyframe_floor": round(cpu / (floor_cpu * count), 2),
        "rss_mb": round(rss, 1),
        "rss_mb_max_in_window": round(max(rss_samples), 1),
        "peak_rss_mb": round(peak, 1),
        "publish_latency_ms": stats.get("publish_latency_ms", {}),
        "skipped_ticks": sum(c["skipped_ticks"] for c in cams),
        "decode": sorted({c["decode"]["doing"] for c in cams}),
        "decoded_fraction": round(float(np.mean([c["decode"]["decoded_fraction"] for c in cams])), 3),
        "overloaded": bool(stats.get("analysis", {}).get("overloaded")),
        "sigterm_exit_s": round(stopped_s, 2),
        "sigterm_code": code,
    }


def open_page(url: str, profile: Path) -> subprocess.Popen[bytes]:
    """Headless chromium (Debian's) showing ``url`` in a 1280x900 window until killed."""
    import shutil

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise RuntimeError("--page needs chromium (apt-get install chromium)")
    return subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
         f"--user-data-dir={profile}", url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def benchmark(
    counts: list[int],
    warmup_s: float = 10.0,
    seconds: float = 30.0,
    gop_s: float = 1.0,
    extra: dict[str, Any] | None = None,
    page_study: bool = False,
    scene: str = "face",
    b_frames: bool = False,
    daemon_path: Path | None = None,
) -> dict[str, Any]:
    """Every row of the table (the page off), each with the key-frame floor measured beside it;
    ``page_study``: the largest count again with the page served and with a browser open."""
    from fer_edge.bench.loopback import Mosquitto, RtspServer

    with tempfile.TemporaryDirectory(prefix="fer-edge-multicam-") as tmp:
        workdir = Path(tmp)
        clip = make_clip(workdir / "camera.h264", gop_s=gop_s, scene=scene, b_frames=b_frames)
        with (
            Mosquitto(workdir) as broker,
            RtspServer(None, workdir, fps=FPS, h264=clip, unshared=True) as rtsp,
        ):
            url = f"rtsp://127.0.0.1:{rtsp.port}/cam"
            rows = []
            runs = [(count, "off") for count in counts]
            if page_study:
                runs += [(max(counts), "idle"), (max(counts), "open")]
            for count, page in runs:
                row = run_cameras(
                    count, url, broker.port, workdir, warmup_s, seconds, extra, page, daemon_path
                )
                rows.append(row)
                print(format_row(row), flush=True)
    encoding = "x264 defaults: B-frames" if b_frames else "no B-frames"
    return {
        "clip": f"{WIDTH}x{HEIGHT} {FPS} fps H.264 ({encoding}), {gop_s:g} s GOP, grain, {SCENES[scene]}",
        "scene": scene,
        "b_frames": b_frames,
        "gop_s": gop_s,
        "warmup_s": warmup_s,
        "window_s": seconds,
        "keyframe_floor_cpu_per_camera": round(
            float(np.median([row["keyframe_floor_cpu_per_camera"] for row in rows])), 5
        ),  # each row's own floor is in the row
        "rows": rows,
    }


def format_row(row: dict[str, Any]) -> str:
    rate = row["results_per_camera_s"]
    latency = row["publish_latency_ms"] or {"p50": float("nan"), "p95": float("nan")}
    page = {"off": "", "idle": " page served", "open": " page open"}[row.get("page", "off")]
    return (
        f"{row['cameras']:>3} cameras{page}  "
        f"results/s per camera min {rate['min']:.2f} mean {rate['mean']:.2f}  "
        f"CPU {row['cpu_cores']:.3f} cores ({row['cpu_vs_keyframe_floor']:.2f}x key-frame floor "
        f"{row['keyframe_floor_cpu_per_camera']:.4f})  "
        f"RSS peak {row['peak_rss_mb']:.0f} MB  "
        f"publish p50 {latency['p50']:.0f} ms p95 {latency['p95']:.0f} ms"
    )


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"clip: {report['clip']}; warm-up {report['warmup_s']:.0f} s, window {report['window_s']:.0f} s",
        f"key-frame decoding floor (median of the rows'): "
        f"{report['keyframe_floor_cpu_per_camera']:.4f} CPU s/s per camera",
        *(format_row(row) for row in report["rows"]),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--floor":
        _floor_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit("usage: python -m fer_edge.bench.multicam --floor URL START_AT SECONDS")
