"""The whole per-frame pipeline on generated footage with the real models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import AudienceSettings, FusionSettings, TrackerSettings
from edge_agent.pipeline import FramePipeline
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.values import VisionSettings, detector_settings
from tests.support.images import ASTRONAUT_SEGMENT, place

FPS = 10.0


def test_a_woman_stops_looks_and_leaves(pipeline, astronaut):
    frames_pipeline = FramePipeline(
        pipeline,
        Tracker(TrackerSettings(lost_after_s=0.5)),
        DemographicsFusion(FusionSettings(samples_needed=4)),
        Audience(AudienceSettings(window_s=100, min_segment_size=1, viewer_min_attention_s=1.0)),
    )
    here = place(astronaut, (640, 480), (120, 0), 0.9)
    empty = np.full((480, 640, 3), 114, dtype=np.uint8)
    timeline = [empty] * 3 + [here] * 25 + [empty] * 10
    results = [
        frames_pipeline.process(Frame(i, i / FPS, 1000 + i / FPS, image))
        for i, image in enumerate(timeline)
    ]
    classified = sum(r.times.classified for r in results)
    assert classified == 4  # samples_needed, then the models stop running for her
    assert max(r.snapshot.present for r in results) == 1
    assert results[10].snapshot.segments == {ASTRONAUT_SEGMENT: 1}
    report = frames_pipeline.flush(4.0, 1004.0)
    assert report.passers_by == 1 and report.viewers == 1
    assert report.segments == {ASTRONAUT_SEGMENT: 1}
    assert 2.0 <= report.dwell.max_s <= 2.5  # 25 frames at 10 fps
    assert all(r.times.total_ms > 0 for r in results)


def faces_found_per_frame(pipeline, timeline) -> list[int]:
    frames = FramePipeline(pipeline, Tracker(), DemographicsFusion(), Audience())
    return [
        frames.process(Frame(i, i / FPS, 1000 + i / FPS, image)).times.faces
        for i, image in enumerate(timeline)
    ]


@pytest.mark.parametrize(("full_scan_every", "motion_scan"), [(1, True), (5, True), (5, False)])
def test_between_full_scans_only_the_followed_faces_are_searched(
    models_dir, astronaut, full_scan_every, motion_scan
):
    vision = VisionPipeline(
        VisionSettings(
            models_dir=models_dir, full_scan_every=full_scan_every, motion_scan=motion_scan
        )
    )
    one = place(astronaut, (1280, 720), (100, 100), 0.5)
    two = one.copy()
    two[100:356, 800:1056] = one[100:356, 100:356]  # a second face appears on the right
    found = faces_found_per_frame(vision, [one] * 2 + [two] * 6)
    if full_scan_every == 1:
        assert found == [1, 1, 2, 2, 2, 2, 2, 2]
    else:
        # The first face is found on every frame by searching around it; the second only at the
        # next full scan (frame 5), and from then on around it too.
        assert found == [1, 1, 1, 1, 1, 2, 2, 2]


def test_on_a_still_picture_the_whole_frame_is_scanned_only_every_few_seconds(
    models_dir, astronaut, non_faces
):
    vision = VisionPipeline(
        VisionSettings(models_dir=models_dir, full_scan_every=5, whole_frame_every_s=3.0)
    )
    whole_frame_scans: list[int] = []
    scan_whole_frame = vision.detector.detect

    def counted(image: np.ndarray, min_score: float | None = None):
        whole_frame_scans.append(1)
        return scan_whole_frame(image, min_score)

    vision.detector.detect = counted  # type: ignore[method-assign]
    shop = cv2.resize(non_faces["rocket"], (1280, 720), interpolation=cv2.INTER_AREA)
    shop[100:612, 700:1212] = place(astronaut, (512, 512), (0, 0), 1.0)
    found = faces_found_per_frame(vision, [shop] * 31)  # 3 s at 10 frames/s
    assert found == [1] * 31
    # Full scans at frames 0, 5, ..., 30; nothing changed, so only frames 0 and 30 (3 s later)
    # scanned the whole frame.
    assert len(whole_frame_scans) == 2


def test_blazeface_scans_the_whole_frame_every_time(models_dir, astronaut):
    vision = VisionPipeline(
        VisionSettings(
            models_dir=models_dir, detector=detector_settings("full_range_int8"), full_scan_every=5
        )
    )
    one = place(astronaut, (640, 480), (10, 10), 0.6)
    two = one.copy()
    two[10:317, 330:637] = one[10:317, 10:317]
    assert faces_found_per_frame(vision, [one, one, two, two]) == [1, 1, 2, 2]


def test_a_face_cut_off_by_the_frame_edge_is_counted_but_not_classified(pipeline, astronaut):
    frames_pipeline = FramePipeline(
        pipeline,
        Tracker(TrackerSettings(lost_after_s=0.5)),
        DemographicsFusion(FusionSettings(samples_needed=2)),
        Audience(AudienceSettings(window_s=100, min_segment_size=1)),
    )
    whole = place(astronaut, (640, 480), (120, 0), 0.9)
    # Half the face is past the left edge; the detector still finds it.
    cut = np.full_like(whole, 114)
    cut[:, :340] = whole[:, 300:]
    timeline = [cut] * 15 + [np.full_like(whole, 114)] * 10
    results = [
        frames_pipeline.process(Frame(i, i / FPS, 1000 + i / FPS, image))
        for i, image in enumerate(timeline)
    ]
    assert sum(r.times.faces > 0 for r in results) >= 10
    assert sum(r.times.classified for r in results) == 0
    report = frames_pipeline.flush(3.0, 1003.0)
    assert report.passers_by == 1 and report.segments == {"unknown": 1}


def test_someone_stepping_up_close_is_found_before_the_next_full_scan(models_dir, astronaut):
    vision = VisionPipeline(VisionSettings(models_dir=models_dir, full_scan_every=5))
    empty = np.full((480, 640, 3), 114, dtype=np.uint8)
    near = place(astronaut, (640, 480), (120, 0), 0.9)  # a face about 90 px wide
    far = place(astronaut, (640, 480), (120, 100), 0.25)  # about 25 px
    # Frame 0 is a full scan; the face arrives at frame 1, between full scans, and the coarse
    # scan halfway to the next full scan (frame 2) finds it.
    assert faces_found_per_frame(vision, [empty, near, near, near]) == [0, 0, 1, 1]
    # A small face waits for the next full scan (frame 5): the coarse scan leaves it alone.
    assert faces_found_per_frame(vision, [empty] + [far] * 6) == [0, 0, 0, 0, 0, 1, 1]
