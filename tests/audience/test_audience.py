"""Fusion and audience metrics, fed by the real tracker."""

from __future__ import annotations

import pytest

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import (
    AudienceSettings,
    DurationStats,
    FusionSettings,
    PersonEstimate,
    TrackerSettings,
)
from edge_agent.segments import DEFAULT_BRACKETS, Gender, fold_small_segments
from edge_agent.vision.values import Box, Detection, Face, FaceQuality, Landmarks, Point

FPS = 10.0


def detection(x: float, y: float = 100, size: float = 80, turned: bool = False) -> Detection:
    def at(fx: float, fy: float) -> Point:
        return Point(x + fx * size, y + fy * size)

    # A turned head: nose and mouth swing most of the way to one ear.
    nose, mouth = (at(0.88, 0.6), at(0.8, 0.8)) if turned else (at(0.5, 0.6), at(0.5, 0.8))
    marks = Landmarks(at(0.3, 0.4), at(0.7, 0.4), nose, mouth, at(0.05, 0.5), at(0.95, 0.5))
    return Detection(Box(x, y, x + size, y + size), 0.9, marks)


def face(p_female: float, age: float, width: float = 80, frontal_yaw: float = 0) -> Face:
    quality = FaceQuality(width, frontal_yaw, 0, 0, 500, 0.9)
    gender = (
        Gender.FEMALE if p_female > 0.65 else Gender.MALE if p_female < 0.35 else Gender.UNKNOWN
    )
    return Face(detection(0), quality, p_female, gender, age, 3.0, None)


def test_fusion_weights_good_samples_and_then_stops():
    fusion = DemographicsFusion(FusionSettings(samples_needed=3))
    assert fusion.needs_sample(7)
    fusion.add(7, face(0.9, 30))
    fusion.add(7, face(0.2, 70, width=10, frontal_yaw=55))  # tiny, turned: little weight
    estimate = fusion.add(7, face(0.8, 34))
    assert estimate.final and not fusion.needs_sample(7)
    assert estimate.gender is Gender.FEMALE
    assert 30 <= estimate.age_years < 36
    assert estimate.age_bracket == DEFAULT_BRACKETS.of(estimate.age_years)
    # Final means final: more samples change nothing.
    assert fusion.add(7, face(0.0, 80)) == estimate
    fusion.forget(7)
    assert fusion.needs_sample(7) and fusion.estimate(7).samples == 0


def test_one_confident_outlier_cannot_flip_a_person():
    fusion = DemographicsFusion(FusionSettings(samples_needed=5))
    for p_female, age in ((0.1, 40), (0.15, 42), (0.99, 19), (0.2, 38), (0.1, 41)):
        estimate = fusion.add(3, face(p_female, age))
    assert estimate.gender is Gender.MALE
    assert estimate.p_female == pytest.approx(0.15)
    # The outlier's age does not drag the estimate either: the median is one of the four.
    assert estimate.age_years == pytest.approx(40)


def test_a_person_the_samples_disagree_on_is_unknown():
    fusion = DemographicsFusion(FusionSettings(samples_needed=5))
    for p_female in (0.1, 0.9, 0.2, 0.95, 0.15):
        estimate = fusion.add(4, face(p_female, 30))
    assert estimate.final and estimate.gender is Gender.UNKNOWN


def test_unknown_faces_add_nothing():
    fusion = DemographicsFusion(FusionSettings(samples_needed=2))
    unknown = Face(detection(0), FaceQuality(10, 0, 0, 0, 500, 0.9), None, Gender.UNKNOWN,
                   None, None, None, ("too_small",))  # fmt: skip
    assert fusion.add(1, unknown).samples == 0
    assert fusion.needs_sample(1)


def run_visit(audience, tracker, frames, estimate_by_id=None, start=0.0):
    reports, snapshots = [], []
    for i, detections in enumerate(frames):
        t = start + i / FPS
        update = tracker.update(detections, t)
        estimates = {tid: estimate_by_id for tid in (t.track_id for t in update.tracks)}
        snapshot, report = audience.update(update, estimates if estimate_by_id else {}, 1000 + t)
        snapshots.append(snapshot)
        if report:
            reports.append(report)
    return snapshots, reports


def test_viewer_needs_a_long_enough_look_and_dwell_is_measured():
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=0.5))
    audience = Audience(AudienceSettings(window_s=10, min_segment_size=1, look_break_s=0.25))
    looker = [[detection(100)]] * 20  # looks for 2 s
    # Glances once a second: each glance is a look of its own, none lasts 1 s.
    glancer = [[detection(400, turned=(i % 10 != 0))] for i in range(20)]
    frames = [a + b for a, b in zip(looker, glancer, strict=True)] + [[]] * 8
    snapshots, _ = run_visit(audience, tracker, frames)
    assert max(s.present for s in snapshots) == 2
    # The glancer counts as a current viewer from a glance until the break outlasts the
    # allowance (0.25 s beyond the 0.1 s frame interval).
    assert [s.viewers_now for s in snapshots[2:20]] == [
        2 if i % 10 <= 3 else 1 for i in range(2, 20)
    ]
    report = audience.flush(3.0, 1003.0, {})
    assert report.passers_by == 2 and report.viewers == 1
    assert report.dwell.count == 2
    assert report.dwell.median_s == pytest.approx(1.9, abs=0.01)
    assert report.attention.count == 1
    assert report.attention.max_s == pytest.approx(1.9, abs=0.01)


def test_a_missed_frame_or_a_noisy_reading_does_not_end_a_look():
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=0.5))
    audience = Audience(AudienceSettings(window_s=10, min_segment_size=1, look_break_s=0.3))
    # Looks for 1.5 s, with a missed detection at 0.4 s and a turned reading at 0.9 s.
    frames = [[] if i == 4 else [detection(100, turned=(i == 9))] for i in range(16)] + [[]] * 8
    snapshots, _ = run_visit(audience, tracker, frames)
    assert all(s.viewers_now == 1 for s in snapshots[2:16])
    report = audience.flush(3.0, 1003.0, {})
    assert report.viewers == 1
    assert report.attention.max_s == pytest.approx(1.5, abs=0.01)


def test_a_break_longer_than_the_allowance_ends_a_look():
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=1.0))
    audience = Audience(AudienceSettings(window_s=10, min_segment_size=1, look_break_s=0.3))
    # Two looks of 0.7 s with 0.5 s turned away between them: neither reaches 1 s.
    frames = [[detection(100, turned=(8 <= i < 13))] for i in range(20)] + [[]] * 12
    snapshots, _ = run_visit(audience, tracker, frames)
    assert [s.viewers_now for s in snapshots[8:13]] == [1, 1, 1, 0, 0]
    report = audience.flush(4.0, 1004.0, {})
    assert report.passers_by == 1 and report.viewers == 0


def test_each_person_counted_once_in_the_window_they_leave():
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=0.3))
    audience = Audience(AudienceSettings(window_s=2.0, min_segment_size=1))
    # Person A stays 3 s (across a window boundary), person B comes and goes at 1 s.
    frames = [[detection(100)] + ([detection(400)] if 5 <= i < 10 else []) for i in range(30)]
    frames += [[]] * 20
    _, reports = run_visit(audience, tracker, frames)
    assert sum(r.passers_by for r in reports) == 2
    assert [r.passers_by for r in reports if r.passers_by] == [1, 1]


def test_tentative_ghosts_are_not_passers_by():
    tracker = Tracker(TrackerSettings(confirm_hits=3, confirm_within_s=0.5, lost_after_s=0.3))
    audience = Audience(AudienceSettings(window_s=100))
    frames = [[detection(100)] if i in (0, 7, 14) else [] for i in range(20)]
    run_visit(audience, tracker, frames)
    assert audience.flush(2.0, 1002.0, {}).passers_by == 0


def test_the_mix_is_folded_over_the_longer_span_too():
    # One-second windows of two women each, a mix span of five seconds: no window holds
    # k = 5 of them, the span does.
    settings = AudienceSettings(window_s=1.0, min_segment_size=5, mix_window_s=5.0)
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=0.2))
    audience = Audience(settings)
    woman = PersonEstimate(Gender.FEMALE, 0.9, 30.0, "20-34", 5, True)
    frames: list[list[Detection]] = []
    for _ in range(6):  # per second: two people for 0.5 s, then nobody
        frames += [[detection(100), detection(400)]] * 5 + [[]] * 5
    _, reports = run_visit(audience, tracker, frames, woman)
    assert [r.passers_by for r in reports] == [2, 2, 2, 2, 2]
    assert all(r.segments == {"other": 2} for r in reports)
    assert [r.mix is not None for r in reports] == [False, False, False, False, True]
    assert reports[-1].mix.passers_by == 10
    assert reports[-1].mix.segments == {"female/20-34": 10}
    # The next span has only begun at shutdown: it goes out with the flush, folded as well.
    final = audience.flush(6.0, 1006.0, {})
    assert final.passers_by == 2
    assert final.mix is not None and final.mix.segments == {"other": 2}


def test_small_segments_are_folded_before_publishing():
    counts = {"female/20-34": 6, "male/35-54": 2, "male/55+": 1, "unknown": 5}
    from collections import Counter

    assert fold_small_segments(Counter(counts), 5) == {
        "female/20-34": 6,
        "other": 3,
        "unknown": 5,
    }


def test_reports_use_fused_demographics_and_fold():
    tracker = Tracker(TrackerSettings(confirm_hits=2, lost_after_s=0.3))
    audience = Audience(AudienceSettings(window_s=100, min_segment_size=2))
    woman = PersonEstimate(Gender.FEMALE, 0.9, 30.0, "20-34", 5, True)
    run_visit(audience, tracker, [[detection(100)]] * 10 + [[]] * 5, woman)
    run_visit(audience, tracker, [[detection(100)]] * 10 + [[]] * 5, woman, start=2.0)
    run_visit(audience, tracker, [[detection(100)]] * 10 + [[]] * 5, None, start=4.0)
    report = audience.flush(6.0, 1006.0, {})
    assert report.passers_by == 3
    assert report.segments == {"female/20-34": 2, "other": 1}


def test_duration_stats():
    stats = DurationStats.of([1.0, 2.0, 3.0, 10.0])
    assert (stats.count, stats.median_s, stats.max_s) == (4, 2.5, 10.0)
    assert DurationStats.of([]).count == 0
