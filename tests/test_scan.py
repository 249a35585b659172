"""Where the daemon looks for faces: whole frame, known faces' surroundings, moving areas.

The real default detector (BlazeFace) on frames rendered from the bundled face photo; ground truth from the
renderer's own face boxes.
"""

from __future__ import annotations

import numpy as np
import pytest

from fer_edge.daemon.config import DetectorConfig
from fer_edge.daemon.democlip import Sprite, face_boxes, face_image, render_frame
from fer_edge.daemon.detect import Detection, create_detector
from fer_edge.daemon.motion import THUMB_DIVISOR, Backdrop, motion_boxes
from fer_edge.daemon.scan import ScanPlanner, grow
from fer_edge.daemon.track import iou
from fer_edge.preprocess import to_gray

WIDTH, HEIGHT = 1280, 720
FACE = face_image()


def frame(sprites: list[Sprite], t: float, brightness: int = 0) -> np.ndarray:
    gray = to_gray(render_frame(FACE, sprites, t, WIDTH, HEIGHT)).astype(np.int16) + brightness
    return np.clip(gray, 0, 255).astype(np.uint8)


def found_all(found: list[Detection], sprites: list[Sprite], t: float) -> bool:
    truth = face_boxes(sprites, t, WIDTH, HEIGHT)
    return len(found) == len(truth) and all(any(iou(b, d.box) > 0.3 for d in found) for b in truth)


@pytest.fixture
def planner() -> ScanPlanner:
    return ScanPlanner(create_detector(DetectorConfig()), full_scan_every=10)


STILL = [Sprite(scale=1.2, x=200, y=150)]
WALKER = [Sprite(scale=1.2, x=100, y=150, vx=60, vy=20)]


def test_still_face_is_kept_without_searching_again(planner: ScanPlanner) -> None:
    for t in range(5):
        assert found_all(planner.find(frame(STILL, t)), STILL, t), t
    assert planner.stats.full == 1 and planner.stats.regions == 4 and planner.stats.kept == 4


def test_moving_face_is_followed_around_its_last_box(planner: ScanPlanner) -> None:
    for t in range(6):
        assert found_all(planner.find(frame(WALKER, t)), WALKER, t), t
    assert planner.stats.full == 1 and planner.stats.regions == 5 and planner.stats.kept == 0


def test_face_walking_in_is_found_on_the_tick_it_appears(planner: ScanPlanner) -> None:
    newcomer = Sprite(scale=1.0, x=850, y=300)
    assert found_all(planner.find(frame(STILL, 0)), STILL, 0)
    assert found_all(planner.find(frame(STILL, 1)), STILL, 1)
    both = [*STILL, newcomer]
    assert found_all(planner.find(frame(both, 2)), both, 2)
    assert planner.stats.full == 1  # found in the moving area, not by a whole-frame pass


def test_face_that_jumped_far_is_found_where_it_moved_without_a_whole_frame_scan(
    planner: ScanPlanner,
) -> None:
    """A late tick (a busy box) sees a face far from its last box: the search follows the motion
    to where it is now, rather than scanning the whole frame."""
    assert found_all(planner.find(frame(STILL, 0)), STILL, 0)
    moved = [Sprite(scale=1.2, x=900, y=350)]
    assert found_all(planner.find(frame(moved, 1)), moved, 1)
    assert planner.stats.full == 1 and planner.stats.lost == 1


def test_faces_after_a_cut_carry_no_move_from_the_faces_before_it(planner: ScanPlanner) -> None:
    """A new scene's faces did not come from the last ones: a move borrowed from a face of the
    old scene would send the next look to where no face is."""
    for t in range(3):
        assert found_all(planner.find(frame(WALKER, t)), WALKER, t)
    assert planner.moves and all(abs(dx) > 20 for dx, _ in planner.moves)  # walking right
    cut = [Sprite(scale=1.2, x=700, y=300)]
    assert found_all(planner.find(frame(cut, 0, brightness=60)), cut, 0)
    assert planner.stats.scene_changes == 1 and planner.moves == [(0.0, 0.0)]


def test_a_predicted_place_needs_a_new_faces_evidence() -> None:
    """Where a face is predicted to be was never seen: the look there takes the new-face bar
    (``score_threshold``), not the lower one that keeps a face seen last tick."""
    detector = create_detector(DetectorConfig(score_threshold=0.999, track_threshold=0.4))
    gray = frame(STILL, 0)
    box = face_boxes(STILL, 0, WIDTH, HEIGHT)[0]
    assert detector.confirm(gray, box)  # seen there last tick: kept
    assert detector.confirm(gray, box, strict=True) == []  # only predicted there: not enough


def test_face_that_leaves_is_dropped(planner: ScanPlanner) -> None:
    assert found_all(planner.find(frame(STILL, 0)), STILL, 0)
    assert planner.find(frame([], 1)) == []


def test_whole_frame_looks_on_schedule_and_on_global_change() -> None:
    planner = ScanPlanner(create_detector(DetectorConfig()), full_scan_every=3)
    for t in range(6):
        planner.find(frame(STILL, t))
    # tick 0 scans everything; tick 3 is the periodic look, and nothing changed since tick 0
    assert planner.stats.full == 1 and planner.stats.refreshes == 1
    planner.find(frame(STILL, 6, brightness=60))  # lights on: everything changed
    assert planner.stats.full == 2 and planner.stats.scene_changes == 1


def test_periodic_look_finds_a_face_that_arrived_between_ticks_without_motion() -> None:
    """A face that faded in too slowly to count as motion tick to tick is found by the periodic
    look, which compares with the picture at the last whole-frame look."""
    planner = ScanPlanner(create_detector(DetectorConfig()), full_scan_every=16)
    empty = frame([], 0).astype(np.float32)
    face = frame(STILL, 0)
    assert planner.find(empty.astype(np.uint8)) == []
    for alpha in np.linspace(0.065, 0.98, 15):  # each step under the motion threshold
        planner.find((empty * (1 - alpha) + face * alpha).astype(np.uint8))
    assert planner.stats.regions == 15 and planner.stats.full == 1
    assert found_all(planner.find(face), STILL, 0)  # tick 16: the periodic look
    assert planner.stats.full == 1 and planner.stats.refreshes == 1


def test_full_scan_every_one_scans_every_tick() -> None:
    planner = ScanPlanner(create_detector(DetectorConfig()), full_scan_every=1)
    for t in range(3):
        assert found_all(planner.find(frame(WALKER, t)), WALKER, t)
    assert planner.stats.full == 3 and planner.stats.regions == 0
    with pytest.raises(ValueError):
        ScanPlanner(planner.detector, full_scan_every=0)


def test_motion_outside_known_faces_becomes_search_boxes() -> None:
    changed = np.zeros((90, 160), np.uint8)
    changed[10:14, 100:104] = 1  # something moved at source (800..832, 80..112)
    changed[50:52, 20:22] = 1  # ... and inside a known face's region
    boxes = motion_boxes(changed, known=[(120, 360, 120, 120)], grow_px=40)
    assert len(boxes) == 1
    x, y, w, h = boxes[0]
    assert x <= 800 and y <= 80 and x + w >= 832 and y + h >= 112
    assert grow((10, 10, 20, 20), 1.0, 40, 40) == (0, 0, 40, 40)  # clipped to the frame


class _CountingSearch:
    """Wraps a detector's search and keeps the regions it was asked about."""

    def __init__(self, detector: object) -> None:
        self.real, self.regions = detector.search, []  # type: ignore[attr-defined]
        self.sizes: list[int | None] = []  # the smallest face size each search asked for
        self.finders: list[int | None] = []  # the smallest face size of each search that found one

    def __call__(
        self, gray: np.ndarray, region: tuple[int, int, int, int], min_face: int | None = None
    ) -> list:
        self.regions.append(region)
        self.sizes.append(min_face)
        found = self.real(gray, region, min_face)
        if found:
            self.finders.append(min_face)
        return found


def test_a_person_walking_with_a_body_is_followed_without_searching_the_body() -> None:
    """A person (head, shoulders, arms, legs) walking at 1.2 m/s on a textured backdrop, one tick
    a second: after the first ticks the face is found where its last move says it is, and the
    body's motion is not searched; the face-only baseline searches it every tick."""
    from fer_edge.bench.walkers import Walker, walker_frames

    frames = [to_gray(f) for f in walker_frames([Walker(scale=0.6, y=120)], 12, 1280, 720, fps=1)]
    searched: dict[bool, int] = {}
    for people in (True, False):
        detector = create_detector(DetectorConfig())
        counting = _CountingSearch(detector)
        detector.search = counting  # type: ignore[method-assign]
        planner = ScanPlanner(detector, full_scan_every=30, people=people)
        found = [len(planner.find(gray)) for gray in frames]
        assert sum(n == 1 for n in found) >= len(frames) - 1, found  # the face, every tick or all but one
        searched[people] = len(counting.regions)
    assert searched[True] * 3 <= searched[False], searched


def test_a_walker_turning_back_is_followed_by_a_look_not_a_search() -> None:
    """A walker who turns at the frame's edge is not where its last move predicts: the same move
    backwards is looked at next, so the face is not lost at a turn. Only its first move, made
    before any move was known, needs a search after the first tick's whole-frame scan."""
    from fer_edge.bench.walkers import Walker, walker_frames

    frames = [to_gray(f) for f in walker_frames([Walker(scale=0.6, y=120)], 24, 1280, 720, fps=1)]
    detector = create_detector(DetectorConfig())
    counting = _CountingSearch(detector)
    detector.search = counting  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=30)
    boxes = [[d.box for d in planner.find(gray)] for gray in frames]
    assert all(len(b) == 1 for b in boxes), boxes
    turns = sum(
        (b[0][0] - a[0][0]) * (c[0][0] - b[0][0]) < 0
        for a, b, c in zip(boxes, boxes[1:], boxes[2:], strict=False)
    )
    assert turns >= 2, boxes  # the walk turned back at least twice
    assert planner.stats.lost == 1  # the first move, from a tick that knew no move
    assert len(counting.finders) == 2 and counting.finders[0] is None, counting.finders


def test_motion_near_a_lost_face_is_searched_for_faces_of_its_size_first() -> None:
    """A face that jumped far (a late tick) is lost to the looks at and around its last box; the
    motion where it went is searched first for faces of about its size, which finds it, not for
    faces of every size."""
    detector = create_detector(DetectorConfig())
    counting = _CountingSearch(detector)
    detector.search = counting  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=10)
    assert found_all(planner.find(frame(STILL, 0)), STILL, 0)
    moved = [Sprite(scale=1.2, x=700, y=330)]
    assert found_all(planner.find(frame(moved, 1)), moved, 1)
    assert planner.stats.lost == 1 and planner.stats.full == 1
    assert len(counting.finders) == 2 and counting.finders[1] is not None, counting.finders


def _rain(sprites: list[Sprite], t: int, drops: int = 5) -> np.ndarray:
    """A frame with fresh streaks of rain at ``drops`` random places (new ones every tick)."""
    import cv2

    gray = frame(sprites, 0)
    rng = np.random.default_rng(t)
    for _ in range(drops):
        x, y = int(rng.integers(0, WIDTH - 20)), int(rng.integers(0, HEIGHT - 60))
        cv2.line(gray, (x, y), (x + 6, y + 40), 255, 2)
    return gray


def _searches_per_tick(budget_ms: float, ticks: int) -> tuple[list[int], ScanPlanner]:
    detector = create_detector(DetectorConfig(search_budget_ms=budget_ms))
    counting = _CountingSearch(detector)
    detector.search = counting  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=100)
    planner.find(_rain([], 0))  # the first tick scans the whole frame
    counts = []
    for t in range(1, ticks + 1):
        before = len(counting.regions)
        planner.find(_rain([], t))
        counts.append(len(counting.regions) - before)
    return counts, planner


def test_the_search_budget_caps_a_ticks_search_of_rain() -> None:
    unbounded, planner = _searches_per_tick(0.0, 3)
    assert min(unbounded) >= 5 and planner.stats.deferred == 0  # every streak's area, every tick
    capped, planner = _searches_per_tick(0.001, 3)  # spent by the first search
    assert capped == [1, 1, 1] and planner.stats.deferred > 0


def test_areas_the_budget_left_are_searched_on_the_next_ticks() -> None:
    """A face that walks in during rain, in an area the budget could not reach that tick, is
    found from the areas carried over, once the rain stops and the face stands still."""
    planner = ScanPlanner(create_detector(DetectorConfig(search_budget_ms=0.001)), full_scan_every=100)
    planner.find(_rain([], 0))
    newcomer = [Sprite(scale=1.0, x=900, y=420)]
    planner.find(_rain([], 1))
    planner.find(_rain(newcomer, 2))  # it arrives among a tick's worth of fresh streaks
    found_on = None
    for t in range(3, 40):
        if found_all(planner.find(frame(newcomer, 0)), newcomer, 0):
            found_on = t
            break
    assert found_on is not None and planner.stats.full == 1  # no whole-frame scan needed


def test_rain_everywhere_is_searched_a_part_at_a_time_not_scanned_whole_every_tick() -> None:
    """Motion over most of the frame once is a cut (scan it whole); tick after tick it is rain,
    foliage or a pan: the known face is followed and the frame searched a few parts a tick."""
    detector = create_detector(DetectorConfig(search_budget_ms=0.001))
    counting = _CountingSearch(detector)
    detector.search = counting  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=100)
    assert found_all(planner.find(frame(STILL, 0)), STILL, 0)
    searched = []
    for t in range(1, 7):
        before = len(counting.regions)
        assert found_all(planner.find(_rain(STILL, t, drops=120)), STILL, 0), t
        searched.append(len(counting.regions) - before)
    assert planner.stats.scene_changes == 1 and planner.stats.full == 2  # the first rainy tick
    assert planner.stats.weather == 5 and max(searched[1:]) <= 2, searched  # then a part a tick
    parts = {r for r in counting.regions if r[2] == r[3] == HEIGHT // 2}
    assert len(parts) >= 4  # the parts taken in turn, not the same one again


def test_the_backdrop_is_learned_where_searched_and_never_where_people_are() -> None:
    thumb = np.full((90, 160), 100, np.uint8)
    backdrop = Backdrop()
    assert not backdrop.revealed(thumb).any()  # nothing searched yet
    person = (400, 200, 160, 520)  # source pixels: a face with its body below
    backdrop.reset(thumb, [person], fresh=True)
    shown = backdrop.revealed(thumb)
    inside = (
        slice(200 // THUMB_DIVISOR, 720 // THUMB_DIVISOR),
        slice(400 // THUMB_DIVISOR, 560 // THUMB_DIVISOR),
    )
    assert shown[0, 0] and not shown[inside].any()  # the person's pixels are not backdrop
    brighter = thumb + 40
    assert not backdrop.revealed(brighter).any()  # a different picture is not the backdrop
    backdrop.learn(brighter, [(0, 0, 640, 360)], [])  # the top-left quarter searched again
    shown = backdrop.revealed(brighter)
    assert shown[: 360 // THUMB_DIVISOR, : 640 // THUMB_DIVISOR].all() and not shown[60:, 100:].any()
    backdrop.reset(brighter, [person], fresh=True)  # a new scene forgets what it saw of the person
    assert not backdrop.revealed(brighter)[inside].any()


def test_a_periodic_look_does_not_search_where_a_walker_only_revealed_the_backdrop() -> None:
    """A person walking across: at a periodic look, the place where they were at the last one
    changed since, but it shows the backdrop again as the first tick's scan saw it, so no face can
    have arrived there and it is not searched; the walker themself is followed, not searched."""
    from fer_edge.bench.walkers import Walker, walker_frames

    frames = [to_gray(f) for f in walker_frames([Walker(scale=0.6, y=120)], 14, 1280, 720, fps=1)]
    detector = create_detector(DetectorConfig())
    counting = _CountingSearch(detector)
    detector.search = counting  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=6)
    every_size = []
    for gray in frames:
        before = len(counting.sizes)
        assert len(planner.find(gray)) == 1
        every_size.append(sum(size is None for size in counting.sizes[before:]))
    assert planner.stats.refreshes == 2 and planner.stats.full == 1
    # tick 6 searches where the walker stood at tick 0 (never seen without them); tick 12 where
    # they were at tick 6, which tick 0 saw as backdrop
    assert every_size[12] == 0, every_size


def test_a_walker_turning_at_the_frames_edge_costs_one_look() -> None:
    """Where the last move would take a face's centre out of the frame, the walker turned or left:
    the backward look comes first, so a turn at the edge costs one close look, as any tick does."""
    from fer_edge.bench.walkers import Walker, walker_frames

    frames = [to_gray(f) for f in walker_frames([Walker(scale=0.6, y=120)], 24, 1280, 720, fps=1)]
    detector = create_detector(DetectorConfig())
    looks: list[tuple[int, int, int, int]] = []
    confirm = detector.confirm

    def counting_confirm(gray: np.ndarray, expected: tuple[int, int, int, int], strict: bool = False) -> list:
        looks.append(expected)
        return confirm(gray, expected, strict)

    detector.confirm = counting_confirm  # type: ignore[method-assign]
    planner = ScanPlanner(detector, full_scan_every=30)
    per_tick, centres = [], []
    for gray in frames:
        before = len(looks)
        faces = planner.find(gray)
        assert len(faces) == 1
        per_tick.append(len(looks) - before)
        centres.append(faces[0].box[0] + faces[0].box[2] / 2)
    turns = sum((b - a) * (c - b) < 0 for a, b, c in zip(centres, centres[1:], centres[2:], strict=False))
    assert turns >= 2, centres
    assert per_tick[2:] == [1] * (len(frames) - 2), per_tick
