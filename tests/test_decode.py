"""Key frames kept compressed until analysis takes them (daemon/decode.py), on a real x264 clip
with B-frames as encoders make them by default."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fer_edge.daemon.cadence import DecodePlan
from fer_edge.daemon.decode import (
    PendingKeyFrame,
    SharedDecoder,
    configure_decoder,
    frame_luma,
    planned_frames,
)
from fer_edge.daemon.democlip import Sprite, write_clip

FPS, GOP_S, SECONDS = 10, 1.0, 6


@pytest.fixture(scope="module")
def b_frame_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MP4 of x264's defaults (three B-frames, B-pyramid) of a face moving every frame."""
    path = tmp_path_factory.mktemp("decode") / "bframes.mp4"
    walker = [Sprite(scale=0.8, x=20, y=40, vx=40, vy=5)]
    return write_clip(
        path, walker, SECONDS, fps=FPS, width=320, height=240, gop_s=GOP_S, noise=3.0, b_frames=True
    )


def _eager_key_frames(clip: Path) -> list[np.ndarray]:
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, "keyframes")
        return [frame_luma(f)[0] for f, _ in planned_frames(container, stream, DecodePlan("keyframes", 1.0))]


def test_the_clip_has_b_frames(b_frame_clip: Path) -> None:
    with av.open(str(b_frame_clip)) as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    assert pts != sorted(pts)  # frames arrive out of display order: B-frames


def test_key_frames_wait_compressed_and_decode_to_the_same_pictures(b_frame_clip: Path) -> None:
    reference = _eager_key_frames(b_frame_clip)
    assert len(reference) == SECONDS  # one key frame a second, each decoded alone
    with av.open(str(b_frame_clip)) as container:
        stream = container.streams.video[0]
        configure_decoder(stream, "auto")
        shared = SharedDecoder("test")
        shared.attach(stream)
        items = [f for f, _ in planned_frames(container, stream, DecodePlan("auto", 1.0), shared=shared)]
        assert len(items) == SECONDS and all(isinstance(i, PendingKeyFrame) for i in items)
        # analysis takes every other one (a busy box): those decode, the others never do
        for k in range(0, SECONDS, 2):
            decoded = items[k].decode()
            assert decoded is not None and decoded[1] >= 0
            assert np.array_equal(frame_luma(decoded[0])[0], reference[k]), k
        assert items[-1].time == pytest.approx((SECONDS - 1) * GOP_S)
        shared.attach(None)  # the stream closes: what is still pending is never decoded
        assert items[1].decode() is None


def test_a_pending_key_frame_is_void_once_the_reader_decodes_runs_itself(b_frame_clip: Path) -> None:
    """A plan that turns to runs (a GOP longer than the interval) feeds the decoder frames that
    depend on each other; a pending key frame's reset in the middle would break the run."""
    with av.open(str(b_frame_clip)) as container:
        stream = container.streams.video[0]
        shared = SharedDecoder("test")
        shared.attach(stream)
        plan = DecodePlan("auto", 0.5)  # 1 s GOP, 0.5 s interval: runs after each key frame
        out = [f for f, _ in planned_frames(container, stream, plan, shared=shared)]
        assert plan.doing == "partial"
        pending = [f for f in out if isinstance(f, PendingKeyFrame)]
        assert pending, "the first key frame comes before the GOP is known"
        assert all(f.decode() is None for f in pending)
        decoded = [f for f in out if not isinstance(f, PendingKeyFrame)]
        assert len(decoded) >= 2 * (SECONDS - 2)  # the runs: key frames and the frames after
