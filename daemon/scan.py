"""Where to look for faces this tick: the whole frame, or only where a face can be.

At one analysis a second the whole-frame detector pass is the daemon's largest cost (a Haar
cascade over a 640-wide frame is ~20 ms; decoding a 1080p key frame ~25 ms). Between ticks a
face moves at most a box side or so, and a face that was not there before arrives by moving.
So a tick only searches:

* where each known face's last move says it is now, or the same move backwards (a walker who
  turned), with one close look each, then around its last box, at its size (the detector's
  ``redetect``), unless nothing changed there at all (a seated person), in which case the face
  is where it was;
* around what moved elsewhere since the last tick (someone walking in), for faces of any size;
  motion around and below where a known face is now is that person moving (hair, shoulders,
  arms, a body walking: a person is a head over a body, ``PERSON_*`` face sides wide and down
  to the frame's foot), so it is not searched for new faces; motion is judged on a 1/8-size
  luma thumbnail, which averages sensor noise away and costs well under a millisecond; what
  only shows the backdrop again, as a search saw it without a face (``motion.Backdrop``), is no
  news and is not searched.

A known face not found again near its last box is dropped, and no wider search is made for it:
if it moved farther than the margin (a late tick, a runner), where it is now moved too, and that
motion lies outside every known face's region, so it is searched this tick; if it turned away,
its turning back is motion that the next tick searches. (A whole-frame scan for every lost face
made a box with many cameras fall behind: late ticks lose faces, and each loss cost a scan.)

The whole frame is scanned when those searches could miss something: on the first tick, and when
most of the frame moved (a light switched on, the camera panned, a scene cut). Every
``full_scan_every`` ticks the frame is looked at whole once more, for faces that
arrived without moving between two ticks (a slow walker, a head turning): the look searches
everything that changed since the last whole-frame look (or the whole frame, if most of it
did); what did not change would get the same answer as then. This is how NVRs spend an object
detector's budget: on motion and tracked regions, not on every pixel of every frame.

The search of what moved has a budget (``search_budget_ms``): areas it did not reach are
searched first next tick, unless they moved again (then they are this tick's own). Most of the
frame moving tick after tick is not a cut but rain, foliage or a pan: the known faces are
followed and the frame is searched a few parts a tick within the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fer_edge.daemon.detect import Detection, FaceDetector, dedupe, grow
from fer_edge.daemon.motion import (
    Backdrop,
    changed_pixels,
    motion_boxes,
    region_moved,
    thumbnail,
)
from fer_edge.daemon.regions import (
    FOLLOW_REACH,
    SAME_SIZE,
    area,
    centre_shift,
    covered,
    frame_parts,
    head_first,
    in_frame,
    lost_within_reach,
    overlap,
    person_region,
)
from fer_edge.daemon.track import iou
from fer_edge.preprocess import Box

MOTION_FULL_FRACTION = 0.4  # motion regions covering more of the frame than this: scan it all
REGION_MARGIN = 1.0  # a known face's region: its last box grown by one side on every side
NEARER = 1.1  # within a person's region, only faces this much larger than theirs are searched
MAX_CARRIED = 64  # moved areas a tick may leave to the next (the oldest wait longest)
TAKEN_IOU = 0.1  # a face found turned back that overlaps another face this much is that other's


@dataclass
class ScanStats:
    """Counts for the stats topic and the benchmark: how often each kind of pass ran."""

    full: int = 0  # ticks that scanned the whole frame
    scene_changes: int = 0  # of those, ticks where most of the frame changed (a cut, a pan, lights)
    refreshes: int = 0  # periodic whole-frame looks that searched only what changed since the last
    regions: int = 0  # ticks that searched only known faces' surroundings and moving areas
    kept: int = 0  # known faces kept without a search because nothing changed around them
    lost: int = 0  # known faces not found again near their last box
    deferred: int = 0  # moved areas left for the next tick by the search budget
    weather: int = 0  # ticks that moved nearly everywhere right after one that did (rain, a pan)


def _less(changed: np.ndarray, revealed: np.ndarray) -> np.ndarray:
    """``changed`` without the ``revealed`` pixels: there, whatever was in front went away, and
    no face arrived (it would differ from the backdrop)."""
    return np.where(revealed, 0, changed).astype(np.uint8)


@dataclass
class Followed:
    """The known faces after this tick's look for them: found ones (with the move each made), the
    last boxes of those not found again, and whether a lost one was inside another person's
    region, where their motion hides it."""

    found: list[Detection] = field(default_factory=list)
    moves: list[tuple[float, float]] = field(default_factory=list)
    lost: list[Box] = field(default_factory=list)
    hidden: bool = False


class ScanPlanner:
    """One camera's face detection, spending the detector where a face can be.

    ``full_scan_every=1`` scans the whole frame every tick (no state carried between ticks).
    """

    def __init__(self, detector: FaceDetector, full_scan_every: int = 10, people: bool = True) -> None:
        if full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1; received {full_scan_every}")
        self.detector = detector
        self.full_scan_every = full_scan_every
        self.people = people  # False: only the face's own region is its motion (the benchmark's baseline)
        self.stats = ScanStats()
        self._last: list[Detection] = []
        self._velocity: list[tuple[float, float]] = []  # per last face: its move over the last tick
        self._thumb: np.ndarray | None = None
        self._full_thumb: np.ndarray | None = None  # the thumbnail at the last whole-frame look
        self._since_full = 0
        self._carried: list[Box] = []  # moved areas the last tick's search budget left
        self._moved_everywhere = False  # the last tick's motion covered most of the frame
        self._backdrop = Backdrop()  # the frame as searched without a face: revealing it is no news
        self.scene_changed = False

    def find(self, gray: np.ndarray) -> list[Detection]:
        """Faces in this frame, by whichever search is enough. ``scene_changed`` tells afterwards
        whether most of the frame changed since the last tick: faces found now are new faces,
        even where old ones were, so a tracker must not carry their scores over."""
        self.scene_changed = False
        if self.full_scan_every == 1:
            return self._full(gray)
        thumb = thumbnail(gray)
        previous, self._thumb = self._thumb, thumb
        if previous is None or previous.shape != thumb.shape:
            return self._full(gray, thumb, fresh=True)
        height, width = gray.shape[:2]
        grow_px = 2 * self.detector.config.min_face_px
        known = [grow(d.box, REGION_MARGIN, width, height) for d in self._last]
        changed = changed_pixels(previous, thumb)
        revealed = self._backdrop.revealed(thumb)  # pixels that show the backdrop as searched
        news = _less(changed, revealed)  # what moved, less what shows the backdrop again
        were = self._people(self._last, width, height)  # where the known faces' people were
        moving = motion_boxes(news, known + were, grow_px)
        if area(moving) > MOTION_FULL_FRACTION * width * height:
            if self._moved_everywhere and self._budget_ms():
                # the tick before moved nearly everywhere too: not a cut but rain, foliage or a
                # pan. Known faces are followed, and the frame is searched a part at a time
                # within the budget, the parts left first next tick, instead of whole every tick
                # (without a budget, a whole-frame scan is the cheaper way to search it all)
                self.stats.weather += 1
                return self._settle(
                    gray, frame_parts(width, height), self._follow_known(gray, changed, known)
                )
            self._moved_everywhere = True
            self.scene_changed = True
            self.stats.scene_changes += 1
            return self._full(gray, thumb, fresh=True)
        self._moved_everywhere = False
        since: np.ndarray | None = None  # the periodic look: what changed since the last whole one
        if self._since_full + 1 >= self.full_scan_every:
            since = self._changed_since_full(thumb, revealed, grow_px, width * height)
            if since is None:
                return self._full(gray, thumb)
        followed = self._follow_known(gray, changed, known)
        exclude: list[Box] = []
        if self._last:
            # what moved around where the known faces are now is those faces (and their heads,
            # shoulders) moving: only motion elsewhere can be a face that was not there before.
            # A lost face's region was searched by ``redetect``; where it went is motion outside.
            # The person who was where a known face was leaves motion there too (what they
            # uncovered), and the one where it is now moves around and below it (unless a face
            # was lost inside another person's region, as in a crowd: then all that moved is
            # searched in full)
            now = [grow(d.box, REGION_MARGIN, width, height) for d in followed.found]
            people = [] if followed.hidden else self._people(followed.found, width, height) + were
            exclude = known + now + people
            moving = motion_boxes(news, exclude, grow_px)
        if since is not None:
            # what changed since the last whole-frame look, judged as this tick's motion is:
            # the known faces' people are followed, not searched
            moving = moving + motion_boxes(since, exclude, grow_px)
            self._full_thumb, self._since_full = thumb, -1
            self.stats.refreshes += 1
        return self._settle(gray, moving, followed)

    @property
    def moves(self) -> list[tuple[float, float]]:
        """Each face found last tick: its move over that tick (pixels), which predicts where the
        next look for it starts."""
        return list(self._velocity)

    def _changed_since_full(
        self, thumb: np.ndarray, revealed: np.ndarray, grow_px: int, frame_area: int
    ) -> np.ndarray | None:
        """The periodic whole-frame look: where the picture is as it was at the last one, the
        detector would say what it said then, and where it shows the backdrop as a search saw
        it (``revealed``), no face arrived; only the rest (this map) is searched. None when that
        is most of the frame (or there was no last look): then scan it whole."""
        if self._full_thumb is None or self._full_thumb.shape != thumb.shape:
            return None
        since = _less(changed_pixels(self._full_thumb, thumb), revealed)
        most = area(motion_boxes(since, [], grow_px)) > MOTION_FULL_FRACTION * frame_area
        return None if most else since

    def _follow_known(self, gray: np.ndarray, changed: np.ndarray, known: list[Box]) -> Followed:
        """Each known face where nothing changed around it stays; the others are followed: first
        every one where its last move says it is now, then those not found there where the same
        move backwards says (a walker who turned back: at a counter, an aisle's end, the edge of
        the view), then around their last box. A predicted look is one close look, a few ms;
        finding the face by searching the motion instead costs 30-40 ms at 1080p. A face the
        backward look finds where another face is or was is that other person's (a crowd walking
        both ways), so the forward looks all come first and it is not taken."""
        height, width = gray.shape[:2]
        moved = [region_moved(changed, region) for region in known]
        again = self._look_again(gray, moved)
        followed = Followed()
        for i, last in enumerate(self._last):
            if not moved[i]:
                followed.found.append(last)  # nothing changed around it: the face is where it was
                followed.moves.append((0.0, 0.0))
                self.stats.kept += 1
                continue
            followed.found.extend(again[i])
            followed.moves.extend(centre_shift(last.box, d.box) for d in again[i])
            if not again[i]:
                self.stats.lost += 1
                followed.lost.append(last.box)
                others = [person_region(d.box, width, height) for d in self._last if d is not last]
                followed.hidden = followed.hidden or covered(last.box, others, share=0.25)
        return followed

    def _look_again(self, gray: np.ndarray, moved: list[bool]) -> list[list[Detection]]:
        """Each moved known face looked for: forward looks for all, then for those not found the
        backward look (not taken where another face is or was), then around the last box. A
        forward move that would put the face's centre outside the frame is a walker leaving or
        turning at the edge: the backward look comes first there, and the look at the edge only
        if it finds nothing (a face that stopped half out of view)."""
        height, width = gray.shape[:2]
        ahead = [
            here and velocity != (0.0, 0.0) and in_frame(last.box, velocity, width, height)
            for here, last, velocity in zip(moved, self._last, self._velocity, strict=True)
        ]
        again: list[list[Detection]] = [
            self._look_at(gray, last.box, *velocity) if looks else []
            for looks, last, velocity in zip(ahead, self._last, self._velocity, strict=True)
        ]
        for i, (last, velocity) in enumerate(zip(self._last, self._velocity, strict=True)):
            if not moved[i] or again[i]:
                continue
            if velocity != (0.0, 0.0):
                taken = [d.box for j, d in enumerate(self._last) if j != i]
                taken += [d.box for faces in again for d in faces]
                back = self._look_at(gray, last.box, -velocity[0], -velocity[1])
                again[i] = [d for d in back if all(iou(d.box, t) <= TAKEN_IOU for t in taken)]
                if not again[i] and not ahead[i]:
                    again[i] = self._look_at(gray, last.box, *velocity)  # at the edge
            again[i] = again[i] or self.detector.redetect(gray, last.box)
        return again

    def _settle(self, gray: np.ndarray, moving: list[Box], followed: Followed) -> list[Detection]:
        """Search what moved, then keep this tick's faces with the move each made: a face found
        by the motion search may be a known one that moved past where it was looked for, and
        its move, from the nearest last face, predicts where to look next tick."""
        found, moves = followed.found, followed.moves
        count = len(found)
        searched = self._search_motion(gray, moving, found, followed.lost, thorough=followed.hidden)
        moves.extend(self._nearest_move(d.box) for d in found[count:])
        kept = dedupe(found)
        if self._thumb is not None:
            self._backdrop.learn(self._thumb, searched, self._bodies(kept, gray))
        self._velocity = [moves[found.index(d)] for d in kept]
        self.stats.regions += 1
        self._since_full += 1
        self._last = kept
        return kept

    def _look_at(self, gray: np.ndarray, last: Box, dx: float, dy: float) -> list[Detection]:
        """The face of ``last``'s size at ``last`` moved by (dx, dy), with a new face's evidence
        (a predicted place was never seen: a texture there must not pass for the face)."""
        height, width = gray.shape[:2]
        x, y, w, h = last
        px = min(max(0, round(x + dx)), max(0, width - w))
        py = min(max(0, round(y + dy)), max(0, height - h))
        return [
            d
            for d in self.detector.confirm(gray, (px, py, w, h), strict=True)
            if SAME_SIZE[0] <= max(d.box[2], d.box[3]) / max(w, h, 1) <= SAME_SIZE[1]
        ]

    def _nearest_move(self, box: Box) -> tuple[float, float]:
        """The move from the last face nearest ``box`` (within a few face widths), or none."""
        best, move = None, (0.0, 0.0)
        for last in self._last:
            dx, dy = centre_shift(last.box, box)
            distance = (dx * dx + dy * dy) ** 0.5
            if distance <= FOLLOW_REACH * max(last.box[2], 1) and (best is None or distance < best):
                best, move = distance, (dx, dy)
        return move

    def _search_motion(
        self,
        gray: np.ndarray,
        moving: list[Box],
        found: list[Detection],
        lost: list[Box],
        thorough: bool = False,
    ) -> list[Box]:
        """Search what moved, head first: a person in motion is a tall region with the head on
        top, so a tall region's top square is searched first. What lies within the person of a
        face found is that person's body, or the head of someone nearer (larger) passing in
        front: it is searched only for faces larger than that face, which costs a few large
        tiles instead of many small ones. Motion within reach of a face lost this tick is most
        likely that face gone farther than its look (a walker turning back): it is searched
        first for faces of about its size or larger, and when that finds one, the rest of the
        region is that face's person. Areas the last tick's budget left come first; what this
        tick's budget (``search_budget_ms``) leaves waits for the next. Returns the areas searched
        for faces of every size."""
        height, width = gray.shape[:2]
        fresh = [part for region in sorted(moving, key=lambda r: r[1]) for part in head_first(region)]
        # an area left last tick that moved again is searched as this tick's own area; the
        # frame's parts (rain) recur as the same boxes, so the ones left keep their turn
        again = set(fresh)
        carried = [c for c in self._carried if c in again or not any(overlap(c, f) for f in fresh)]
        todo, self._carried = list(dict.fromkeys([*carried, *fresh])), []
        budget_ms = self._budget_ms()
        start = time.perf_counter()
        searched: list[Box] = []
        for index, region in enumerate(todo):
            if budget_ms and index and (time.perf_counter() - start) * 1000.0 >= budget_ms:
                self._carried = todo[index:][:MAX_CARRIED]
                self.stats.deferred += len(self._carried)
                break
            owners = [d for d in found if covered(region, [person_region(d.box, width, height)])]
            if self.people and owners and not thorough:
                larger = round(NEARER * min(min(d.box[2], d.box[3]) for d in owners))
                if larger > min(region[2], region[3]):
                    continue  # too small to hold a face larger than its person's
                found.extend(self.detector.search(gray, region, larger))
                continue
            gone = None if thorough else lost_within_reach(region, lost)
            if gone is not None:
                again = self.detector.search(gray, region, round(SAME_SIZE[0] * min(gone[2], gone[3])))
                if again:
                    lost.remove(gone)
                    found.extend(again)
                    continue
            found.extend(self.detector.search(gray, region))
            searched.append(region)
        return searched

    def _budget_ms(self) -> float:
        return float(getattr(self.detector.config, "search_budget_ms", 0.0))

    @staticmethod
    def _bodies(faces: list[Detection], gray: np.ndarray) -> list[Box]:
        """Where the people of ``faces`` are, hair and body included: not backdrop."""
        height, width = gray.shape[:2]
        return [
            region
            for d in faces
            for region in (grow(d.box, REGION_MARGIN, width, height), person_region(d.box, width, height))
        ]

    def _people(self, faces: list[Detection], width: int, height: int) -> list[Box]:
        return [person_region(d.box, width, height) for d in faces] if self.people else []

    def _full(
        self, gray: np.ndarray, thumb: np.ndarray | None = None, fresh: bool = False
    ) -> list[Detection]:
        """The whole frame searched. ``fresh``: the first frame, or a new scene (a cut, a pan,
        the lights): its faces did not come from the last ones, so they carry no move."""
        found = self.detector.detect(gray)
        self._carried = []  # the whole frame was searched
        self._full_thumb = thumb
        self.stats.full += 1
        self._since_full = 0
        self._velocity = [(0.0, 0.0) if fresh else self._nearest_move(d.box) for d in found]
        self._last = found
        if thumb is not None:
            self._backdrop.reset(thumb, self._bodies(found, gray), fresh)
        return found
