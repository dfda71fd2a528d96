"""Footage whose every visible face is boxed, frame by frame, for measuring detectors on video.

- `samples/demo.mp4`: generated; `demo_truth.json` boxes every visible face per frame;
- `samples/footage-real/*.gif`: three real clips (CC BY 4.0); `truth.json` boxes every face,
  checked by eye.

A detection lands on a face when its centre lies inside the face's box grown by a quarter on
each side: box conventions differ between detectors and annotators, a centre far from every
face does not.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision.values import Detection

GROW = 0.25  # a known box grows by this much of its size on each side

BoxList = list[list[float]]


@dataclass(frozen=True, slots=True)
class Footage:
    name: str
    path: Path
    boxes_of: Callable[[int], BoxList]  # frame index -> every visible face in it


def video_frames(path: Path) -> Iterator[np.ndarray]:
    """The RGB frames of a video (or an animated GIF), in order."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def known_footage(samples: Path) -> list[Footage]:
    """The boxed footage in a checkout's `samples/` folder."""
    truth = json.loads((samples / "demo_truth.json").read_text())
    demo: dict[int, BoxList] = {}
    for person in truth["people"]:
        for frame, x0, y0, x1, y1, *_ in person["boxes"]:
            demo.setdefault(int(frame), []).append([x0, y0, x1, y1])
    footage = [Footage("demo.mp4", samples / "demo.mp4", lambda i: demo.get(i, []))]
    clips = json.loads((samples / "footage-real" / "truth.json").read_text())
    for name, clip in clips.items():
        faces: dict[int, BoxList] = {}
        for person in clip["people"]:
            for frame, x0, y0, x1, y1 in person["boxes"]:
                faces.setdefault(int(frame), []).append([x0, y0, x1, y1])
        footage.append(
            Footage(name, samples / "footage-real" / name, lambda i, f=faces: f.get(i, []))
        )
    return footage


def contains(box: list[float], x: float, y: float) -> bool:
    grow_x, grow_y = GROW * (box[2] - box[0]), GROW * (box[3] - box[1])
    return box[0] - grow_x <= x <= box[2] + grow_x and box[1] - grow_y <= y <= box[3] + grow_y


def landed(known: BoxList, boxes: list[tuple[float, float, float, float]]) -> tuple[set[int], int]:
    """(the known faces some box lands on, how many boxes land on none)."""
    hit: set[int] = set()
    false = 0
    for x0, y0, x1, y1 in boxes:
        inside = [i for i, face in enumerate(known) if contains(face, (x0 + x1) / 2, (y0 + y1) / 2)]
        hit.update(inside)
        false += not inside
    return hit, false


def detection_boxes(detections: list[Detection]) -> list[tuple[float, float, float, float]]:
    return [tuple(detection.box) for detection in detections]
