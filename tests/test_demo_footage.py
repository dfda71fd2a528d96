"""scripts/make_demo_footage.py: a tiny clip, its ground truth, and the real detector on it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import pytest

from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
from edge_agent.vision.values import Box
from tests.support.paths import REPO

SCRIPT = REPO / "scripts" / "make_demo_footage.py"
ARGS = ["--people", "3", "--fps", "10", "--size", "640x480", "--seed", "3", "--quiet"]


def load_script():
    if "make_demo_footage" not in sys.modules:
        spec = importlib.util.spec_from_file_location("make_demo_footage", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules["make_demo_footage"]


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    assert load_script().main(["--out", str(out), *ARGS]) == 0
    video = out if out.exists() else out.with_suffix(".avi")
    truth = json.loads(video.with_name(f"{video.stem}_truth.json").read_text())
    return video, truth


def read_frames(video: Path, wanted: set[int]) -> tuple[int, tuple[int, int], dict]:
    capture = cv2.VideoCapture(str(video))
    count, size, frames = 0, (0, 0), {}
    while True:
        ok, image = capture.read()
        if not ok:
            break
        if count in wanted:
            frames[count] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        size = (image.shape[1], image.shape[0])
        count += 1
    capture.release()
    return count, size, frames


def test_video_opens_with_the_promised_frames_and_size(footage):
    video, truth = footage
    count, size, _ = read_frames(video, set())
    assert truth["video"] == video.name
    assert count == truth["frames"] > 0
    assert size == (truth["width"], truth["height"]) == (640, 480)


def test_truth_is_consistent(footage):
    _, truth = footage
    fps, length = truth["fps"], truth["frames"] / truth["fps"]
    assert truth["schema_version"] == 1 and len(truth["people"]) == 3
    assert any(person["viewer"] for person in truth["people"])

    def inside(outer: list[float], inner: list[float]) -> bool:
        return outer[0] - 1e-6 <= inner[0] and inner[1] <= outer[1] + 1e-6

    for person in truth["people"]:
        stay = [person["enter_s"], person["leave_s"]]
        assert 0 <= stay[0] < stay[1] <= length
        for start, end in person["visible_face_s"] + person["looking"]:
            assert start < end and inside(stay, [start, end])
        for interval in person["looking"]:
            assert any(inside(v, interval) for v in person["visible_face_s"])
        longest = max((end - start for start, end in person["looking"]), default=0)
        assert person["viewer"] == (longest >= truth["min_look_s"])
        attention = sum(end - start for start, end in person["looking"])
        assert person["attention_s"] == pytest.approx(attention, abs=1e-3)
        assert person["dwell_s"] >= person["attention_s"] - 1e-6
        frames = {box[0] for box in person["boxes"]}
        assert len(frames) == round(person["visible_s"] * fps)
        for frame, x0, y0, x1, y1 in person["boxes"]:
            assert any(
                inside(v, [frame / fps, (frame + 1) / fps]) for v in person["visible_face_s"]
            )
            assert 0 <= x0 < x1 <= truth["width"] and 0 <= y0 < y1 <= truth["height"]


def test_detector_sees_the_looking_face_and_nothing_in_an_empty_shop(footage, models_dir):
    video, truth = footage
    viewer = next(person for person in truth["people"] if person["viewer"])
    frame, *box = viewer["boxes"][len(viewer["boxes"]) // 2]
    empty = 0  # before the first visitor enters
    assert all(person["enter_s"] > 0.5 for person in truth["people"])
    _, _, frames = read_frames(video, {frame, empty})
    detector = BlazeFaceDetector(models_dir)
    found = detector.detect(frames[frame])
    assert any(Box(*d.box).iou(Box(*box)) >= 0.5 for d in found)
    assert detector.detect(frames[empty]) == []


def test_same_seed_gives_the_same_truth(footage, tmp_path):
    _, truth = footage
    out = tmp_path / "clip.mp4"
    assert load_script().main(["--out", str(out), *ARGS]) == 0
    video = out if out.exists() else out.with_suffix(".avi")
    again = json.loads(video.with_name(f"{video.stem}_truth.json").read_text())
    assert again == truth
