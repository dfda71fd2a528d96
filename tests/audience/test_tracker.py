"""The tracker on real detector output of generated footage: faces moving over a canvas."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import TrackerSettings, TrackState
from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
from edge_agent.vision.values import Box, Detection, Landmarks, Point

FPS = 15.0
SIZE = (640, 480)


@pytest.fixture(scope="module")
def detector(models_dir) -> BlazeFaceDetector:
    return BlazeFaceDetector(models_dir)


@pytest.fixture(scope="module")
def people(astronaut, grace_hopper) -> dict[str, np.ndarray]:
    """Head-and-shoulders cut-outs, about 190 px wide."""
    hopper = cv2.resize(grace_hopper[80:400, 110:410], (190, 200), interpolation=cv2.INTER_AREA)
    return {"astronaut": astronaut[40:240, 130:320], "hopper": hopper}


def render(positions: dict[str, tuple[int, int]], people: dict[str, np.ndarray]) -> np.ndarray:
    frame = np.full((SIZE[1], SIZE[0], 3), 150, dtype=np.uint8)
    frame[:, :, 1] = np.linspace(120, 180, SIZE[0], dtype=np.uint8)[None, :]
    for name, (x, y) in positions.items():
        patch = people[name]
        h, w = patch.shape[:2]
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, SIZE[0]), min(y + h, SIZE[1])
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
    return frame


def run(tracker: Tracker, detector: BlazeFaceDetector, frames: list[tuple[float, np.ndarray]]):
    return [tracker.update(detector.detect(image), t) for t, image in frames]


def walk(start: int, step: int, count: int, y: int) -> list[tuple[int, int]]:
    return [(start + step * i, y) for i in range(count)]


def test_two_people_keep_their_ids_while_walking(detector, people):
    # They pass each other on different rows (no occlusion), one walking each way.
    astronaut_path = walk(20, 10, 40, 10)
    hopper_path = walk(440, -10, 40, 270)
    frames = [
        (i / FPS, render({"astronaut": a, "hopper": c}, people))
        for i, (a, c) in enumerate(zip(astronaut_path, hopper_path, strict=True))
    ]
    updates = run(Tracker(), detector, frames)
    confirmed_ids = {cid for u in updates for cid in u.confirmed_now}
    assert len(confirmed_ids) == 2
    # Each id stays on its person (top row: the astronaut) through and after the crossing.
    top_ids, bottom_ids = set(), set()
    for update in updates[5:]:
        assert [t.state for t in update.tracks] == [TrackState.CONFIRMED] * 2
        top, bottom = sorted(update.tracks, key=lambda t: t.detection.box.y0)
        top_ids.add(top.track_id)
        bottom_ids.add(bottom.track_id)
    assert len(top_ids) == len(bottom_ids) == 1 and top_ids != bottom_ids


def test_skipped_frames_do_not_break_a_track(detector, people):
    # The reader hands over only the newest frame: here every fourth frame arrives.
    path = walk(20, 10, 48, 150)[::4]
    frames = [(4 * i / FPS, render({"astronaut": p}, people)) for i, p in enumerate(path)]
    updates = run(Tracker(), detector, frames)
    assert len({cid for u in updates for cid in u.confirmed_now}) == 1
    assert all(len(u.tracks) == 1 for u in updates)


def test_short_gap_keeps_the_id_long_absence_ends_the_track(detector, people):
    settings = TrackerSettings(lost_after_s=1.0)
    tracker = Tracker(settings)
    here = render({"astronaut": (200, 150)}, people)
    empty = render({}, people)
    timeline = [here] * 6 + [empty] * 5 + [here] * 6 + [empty] * 20 + [here] * 6
    updates = run(tracker, detector, [(i / FPS, image) for i, image in enumerate(timeline)])
    first_id = updates[5].tracks[0].track_id
    # 5 empty frames = 0.33 s < 1 s: the same person.
    assert updates[12].tracks[0].track_id == first_id
    ended = [t for u in updates for t in u.ended]
    assert [t.track_id for t in ended] == [first_id]
    assert ended[0].last_seen == pytest.approx(16 / FPS)
    # Back after 1.3 s: a new person by design (no re-identification).
    assert updates[-1].tracks[0].track_id != first_id
    assert updates[-1].tracks[0].state is TrackState.CONFIRMED


def test_flicker_never_becomes_a_person():
    tracker = Tracker(TrackerSettings(confirm_hits=3, confirm_within_s=1.0, lost_after_s=0.5))
    ghost = _detection(300, 200, 60)
    updates = [tracker.update([ghost] if i == 0 else [], i / FPS) for i in range(20)]
    assert all(not u.confirmed_now and not u.ended for u in updates)
    assert updates[-1].tracks == ()


def test_matches_report_which_detection_went_to_which_track():
    tracker = Tracker(TrackerSettings(confirm_hits=1))
    left, right = _detection(100, 100, 60), _detection(400, 100, 60)
    first = tracker.update([left, right], 0.0)
    second = tracker.update([right, left], 0.1)  # same people, listed the other way round
    ids = dict(first.matches)
    assert dict(second.matches) == {0: ids[1], 1: ids[0]}


def _detection(x: float, y: float, size: float, score: float = 0.9) -> Detection:
    def at(fx: float, fy: float) -> Point:
        return Point(x + fx * size, y + fy * size)

    return Detection(
        Box(x, y, x + size, y + size),
        score,
        Landmarks(
            at(0.3, 0.4), at(0.7, 0.4), at(0.5, 0.6), at(0.5, 0.8), at(0.05, 0.5), at(0.95, 0.5)
        ),
    )


def test_after_a_gap_only_the_same_place_and_size_continue_a_track():
    settings = TrackerSettings(confirm_hits=2, lost_after_s=1.5)
    same, other = Tracker(settings), Tracker(settings)
    for i in range(10):
        same.update([_detection(100, 100, 80)], i / FPS)
        other.update([_detection(100, 100, 80)], i / FPS)
    # 0.8 s later: the same face in the same place (looked away and back) ...
    back = same.update([_detection(102, 101, 80)], 1.7)
    # ... or a bigger face in that spot: someone else stepped in.
    stranger = other.update([_detection(95, 95, 100)], 1.7)
    assert back.tracks[0].track_id == 1 and back.tracks[0].matched_now
    assert {t.track_id for t in stranger.tracks} == {1, 2}
    assert [t.matched_now for t in stranger.tracks] == [False, True]


def _walk_toward_camera(frames: int, grow_per_s: float, fps: float = 12.5):
    """A face at the frame's centre-left growing `grow_per_s` times a second, drifting right
    and down as people walking toward a camera mounted above them do."""
    for i in range(frames):
        t = i / fps
        size = 30 * grow_per_s**t
        yield t, _detection(200 + 25 * t - size / 2, 150 + 10 * t - size / 2, size)


def test_a_face_walking_toward_the_camera_keeps_one_id_while_it_grows():
    # 30 px to 75 px in 2 s (2.5x), as in the real clips, also with every third frame missed.
    tracker, gappy = Tracker(), Tracker()
    updates, gappy_updates = [], []
    for i, (t, detection) in enumerate(_walk_toward_camera(25, 2.5**0.5)):
        updates.append(tracker.update([detection], t))
        gappy_updates.append(gappy.update([] if i % 3 == 2 else [detection], t))
    for run_updates in (updates, gappy_updates):
        assert {t.track_id for u in run_updates for t in u.tracks} == {1}
        assert run_updates[-1].tracks[0].state is TrackState.CONFIRMED


def test_the_prediction_follows_the_growth_through_missed_frames():
    tracker = Tracker()
    walk = list(_walk_toward_camera(20, 1.6))
    for t, detection in walk[:15]:
        tracker.update([detection], t)
    # Five frames without a detection: the predicted box keeps moving and growing.
    _, last = walk[14]
    t_now, truth = walk[19]
    coasting = tracker.update([], t_now)
    predicted = coasting.tracks[0].box
    assert not coasting.tracks[0].matched_now
    assert predicted.width > last.box.width * 1.1
    assert predicted.iou(truth.box) > last.box.iou(truth.box)


def test_a_head_turning_away_and_back_keeps_one_id():
    # From a real clip (head-pose-face-detection-female-and-male.gif at 12.5 frames/s): a
    # frontal face 70 px wide; turned, its box jumps to 81-95 px and up-left for four frames;
    # frontal again, 70 px. The filter took the jump for growth: the return must still match.
    tracker = Tracker()
    fps = 12.5
    frames = [_detection(300, 76, 70)] * 10
    frames += [_detection(300 - w / 2 + 25, 70 - w / 8, w, 0.7) for w in (81, 93, 84, 95)]
    frames += [_detection(301, 76, 70)] * 6
    updates = [tracker.update([d], i / fps) for i, d in enumerate(frames)]
    assert {t.track_id for u in updates for t in u.tracks} == {1}
    assert all(u.tracks[0].matched_now for u in updates)


def test_weak_detections_keep_a_track_but_never_start_one():
    settings = TrackerSettings(confirm_hits=3, confirm_min_score=0.6, low_score=0.3)
    tracker = Tracker(settings)
    for i in range(5):
        tracker.update([_detection(100, 100, 80)], i / FPS)
    # The face blurs (scores 0.4) for a second: the same track goes on, matched.
    for i in range(5, 20):
        update = tracker.update([_detection(100 + i, 100, 80, score=0.4)], i / FPS)
        assert [(t.track_id, t.matched_now) for t in update.tracks] == [(1, True)]
    # A weak detection elsewhere starts nothing, however long it lasts.
    lonely = Tracker(settings)
    updates = [lonely.update([_detection(300, 100, 80, score=0.5)], i / FPS) for i in range(20)]
    assert all(u.tracks == () for u in updates)


def test_a_weak_detection_does_not_take_over_a_track_from_afar():
    tracker = Tracker(TrackerSettings(confirm_hits=1, low_score=0.3))
    tracker.update([_detection(100, 100, 80)], 0.0)
    # A weak detection half a face away: not where the track is predicted, so not the track.
    update = tracker.update([_detection(140, 100, 80, score=0.4)], 0.1)
    assert update.matches == ()
    assert not update.tracks[0].matched_now


def test_two_people_crossing_keep_their_ids():
    # Two faces walk past each other on nearly the same line, one passing in front.
    tracker = Tracker(TrackerSettings(confirm_hits=2))
    ids_left_to_right: list[list[int]] = []
    for i in range(30):
        t = i / FPS
        a = _detection(100 + 12 * i, 100, 60)
        b = _detection(460 - 12 * i, 108, 64)
        # While they overlap most, only the one in front is seen.
        seen = [b] if 13 <= i <= 16 else [a, b]
        update = tracker.update(seen, t)
        ids_left_to_right.append([tid for _, tid in sorted(update.matches)])
    first = tracker.update([], 30 / FPS)
    assert {t.track_id for t in first.tracks} == {1, 2}
    # a (id 1) started on the left and b (id 2) on the right, and each kept its id.
    assert ids_left_to_right[0] == [1, 2] and ids_left_to_right[-1] == [1, 2]
