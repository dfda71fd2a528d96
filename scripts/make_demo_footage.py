#!/usr/bin/env python3
"""Synthetic walk-by footage for demos and audience-measurement tests, with ground truth.

People cut from public-domain portraits that ship in PyPI packages (scikit-image's
astronaut, matplotlib's grace_hopper; see samples/NOTICE) walk over a procedurally drawn shop
in front of the camera: they enter at the left or right edge, some stop and look at the
screen, some only glance, some stop without looking, some just pass, and they leave.
Identities are varied by mirroring, scale (depth), tone, hair and clothing colour.

A head is either *frontal* (the portrait's face: "looking") or *turned away* (the face
covered by the back of the head, a textured hair-coloured oval: no face visible at all). A
2-D portrait cannot be turned convincingly in between: warped "half-turned" portraits read
as anything from 20 to 50 degrees of yaw, so the footage does not contain them.

Ground truth (JSON beside the video, see `truth()`), times in seconds, frame k covering
[k / fps, (k + 1) / fps); intervals are [start, end) with end exclusive:

- `enter_s`, `leave_s`: first and past-last time any part of the person is in the frame;
- `visible_face_s`: intervals with a face in the frame at all (here the same as `looking`);
- `looking`: intervals with a frontal face; `viewer`: one of them is >= `min_look_s`;
- `dwell_s`: first visible face to last visible face (what a face tracker sees as one
  stay); `visible_s`: their summed length; `attention_s`: total looking time;
- `boxes`: [frame, x0, y0, x1, y1] of the face (BlazeFace's box on the source portrait,
  carried into the frame) for every frame the face is visible.

`--verify` runs the real detector over the written video and checks the rendering: looking
frames must give a detection at the truth box (IoU >= 0.3) with |yaw| < 20, turned-away
frames no detection at the head with |yaw| <= 40.

Usage: scripts/make_demo_footage.py [--out samples/demo.mp4] [--people 10] [--seed 7]
           [--duration S] [--fps 15] [--size 640x480] [--min-look 1.0] [--verify]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

SCHEMA_VERSION = 1
DEFAULT_SEED = 7
# Face width in pixels at depth 1.0 in a 640 px wide frame (depths: see Portrait.depths).
BASE_FACE = 80.0
# Shares of the kinds of visit, in the order they are handed out.
KIND_SHARES = (("viewer", 0.5), ("glancer", 0.2), ("browser", 0.15), ("passer", 0.15))
LEAD_IN_S = 1.0  # nobody in the first second
TAIL_S = 1.0
MAX_IN_FRAME = 3


@dataclass(frozen=True)
class Portrait:
    """A public-domain portrait and where things are in it (its own pixels)."""

    name: str
    face: tuple[float, float, float, float]  # BlazeFace's box on the full image
    head: tuple[float, float, float, float]  # head oval: centre x, centre y, half w, half h
    hair: tuple[int, int, int]  # RGB of the back of the head
    skin: tuple[int, int, int]  # RGB of the neck
    # Depths (face width / BASE_FACE) it is shown at: below about 90 px BlazeFace reads the
    # astronaut as turned by 15 to 25 degrees, so she is only ever near the camera.
    depths: tuple[float, float] = (0.9, 1.35)

    def load(self) -> np.ndarray:
        if self.name == "astronaut":
            from skimage import data

            return data.astronaut()
        if self.name == "grace_hopper":
            import matplotlib.cbook

            path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        raise ValueError(self.name)


PORTRAITS = (
    # Eileen Collins, NASA (public domain), 512x512, from scikit-image.
    Portrait(
        "astronaut",
        (175, 70, 280, 175),
        (228, 105, 90, 105),
        (112, 84, 50),
        (222, 170, 140),
        depths=(1.18, 1.42),
    ),
    # Grace Hopper, US Navy (public domain), 512x600, from matplotlib. The cap is the top
    # of her head, so the back of her head is dark navy.
    Portrait(
        "grace_hopper", (158, 118, 368, 329), (262, 195, 122, 150), (38, 38, 48), (214, 170, 150)
    ),
)
HAIR_COLOURS = ((60, 42, 30), (30, 26, 24), (120, 90, 55), (150, 140, 130), (92, 60, 38))
CLOTHES = (
    (40, 60, 120),
    (150, 40, 40),
    (60, 110, 70),
    (200, 190, 170),
    (70, 70, 75),
    (180, 120, 40),
    (110, 60, 130),
    (30, 30, 35),
    (90, 140, 170),
    (210, 90, 110),
)


@dataclass
class Person:
    id: int
    kind: str
    portrait: Portrait
    depth: float
    flip: bool
    start: int  # frame at which xs[0] applies
    xs: np.ndarray  # head-centre x per frame of the visit
    front: np.ndarray  # frontal face per frame of the visit
    walking: np.ndarray
    head_y: float
    gain: np.ndarray  # per-channel tone gain
    grey: bool
    hair: tuple[int, int, int]
    clothes: tuple[int, int, int]
    sprite: dict = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + len(self.xs)


# ---------------------------------------------------------------- planning


def face_width(depth: float, width: int) -> float:
    return BASE_FACE * width / 640 * depth


def head_geometry(person: Person, width: int) -> tuple[float, float, float, float]:
    """Head oval (half width, half height) and face box offsets from the head centre."""
    portrait = person.portrait
    scale = face_width(person.depth, width) / (portrait.face[2] - portrait.face[0])
    cx, cy, hw, hh = portrait.head
    return scale, cx, cy, max(hw, hh)


def face_box_at(person: Person, index: int, width: int) -> tuple[float, float, float, float]:
    """Face box in frame pixels at visit frame `index`, whether or not it is visible."""
    scale, cx, cy, _ = head_geometry(person, width)
    x0, y0, x1, y1 = person.portrait.face
    if person.flip:
        x0, x1 = 2 * cx - x1, 2 * cx - x0
    hx, hy = person.xs[index], person.head_y + bob(person, index)
    return (
        hx + (x0 - cx) * scale,
        hy + (y0 - cy) * scale,
        hx + (x1 - cx) * scale,
        hy + (y1 - cy) * scale,
    )


def body_box_at(person: Person, index: int, width: int, height: int) -> tuple[float, ...]:
    """Everything the person covers: head oval and torso down to the bottom of the frame."""
    scale, _, _, _ = head_geometry(person, width)
    _, _, hw, hh = person.portrait.head
    fw = face_width(person.depth, width)
    hx, hy = person.xs[index], person.head_y + bob(person, index)
    half = max(hw * scale, 1.3 * fw)
    return hx - half, hy - hh * scale, hx + half, float(height)


def bob(person: Person, index: int) -> float:
    if not person.walking[index]:
        return 0.0
    return -3.0 * person.depth * abs(math.sin(math.pi * 1.8 * index / 15.0))


def plan_visit(
    rng: np.random.Generator, kind: str, depth: float, width: int, fps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head-centre x, frontal flag and walking flag for each frame of one visit."""
    fw = face_width(depth, width)
    reach = 1.4 * fw + 4  # beyond this from the edge the person is out of frame
    from_left = bool(rng.random() < 0.5)
    x_in, x_far = (-reach, width + reach) if from_left else (width + reach, -reach)
    speed = rng.uniform(95, 150) * depth * width / 640  # px per second
    xs: list[float] = []
    front: list[bool] = []
    walking: list[bool] = []

    def walk(to: float, face: bool = False) -> None:
        start = xs[-1] if xs else x_in
        steps = max(1, round(abs(to - start) / speed * fps))
        for k in range(1, steps + 1):
            xs.append(start + (to - start) * k / steps)
            front.append(face)
            walking.append(True)

    def stand(seconds: float, face: bool) -> None:
        for _ in range(max(1, round(seconds * fps))):
            xs.append(xs[-1])
            front.append(face)
            walking.append(False)

    def frames(seconds: float) -> int:
        return max(1, round(seconds * fps))

    x_stop = rng.uniform(0.3, 0.7) * width
    if kind == "viewer":
        walk(x_stop)
        if rng.random() < 0.5:  # looks at the screen while approaching
            for k in range(1, min(frames(rng.uniform(0.4, 1.0)), len(front)) + 1):
                front[-k] = True
        stand(rng.uniform(1.6, 6.0), True)
        if rng.random() < 0.35:  # looks away briefly, then back
            stand(rng.uniform(0.5, 1.0), False)
            stand(rng.uniform(1.2, 3.0), True)
        stand(rng.uniform(0.2, 0.6), False)
        walk(x_far if rng.random() < 0.7 else x_in)
    elif kind == "browser":  # stops at the shelves without looking at the screen
        walk(x_stop)
        stay = rng.uniform(2.0, 5.0)
        if rng.random() < 0.5:
            glance = rng.uniform(0.3, 0.6)
            stand((stay - glance) / 2, False)
            stand(glance, True)
            stand((stay - glance) / 2, False)
        else:
            stand(stay, False)
        walk(x_far if rng.random() < 0.6 else x_in)
    else:  # glancer or passer: straight across
        walk(x_far)
        if kind == "glancer":
            middle = [i for i, x in enumerate(xs) if 0.25 * width < x < 0.75 * width]
            length = frames(rng.uniform(0.3, 0.7))
            first = int(rng.choice(middle[: max(1, len(middle) - length)]))
            for i in range(first, min(first + length, len(front))):
                front[i] = True
    return np.array(xs), np.array(front), np.array(walking)


def kinds_for(count: int, rng: np.random.Generator) -> list[str]:
    kinds: list[str] = []
    for kind, share in KIND_SHARES:
        kinds += [kind] * round(share * count)
    kinds = (kinds + ["viewer"] * count)[:count]
    if "viewer" not in kinds and count:
        kinds[0] = "viewer"
    order = rng.permutation(count)
    kinds = [kinds[i] for i in order]
    # The first visitor looks: short clips then always hold a viewer early on.
    if "viewer" in kinds:
        first = kinds.index("viewer")
        kinds[0], kinds[first] = kinds[first], kinds[0]
    return kinds


def make_people(
    count: int, seed: int, width: int, height: int, fps: float, duration: float | None
) -> list[Person]:
    rng = np.random.default_rng(seed)
    people: list[Person] = []
    earliest = round(LEAD_IN_S * fps)
    for number, kind in enumerate(kinds_for(count, rng), start=1):
        portrait = PORTRAITS[int(rng.integers(len(PORTRAITS)))] if number > 2 else None
        portrait = portrait or PORTRAITS[(number - 1) % len(PORTRAITS)]
        depth = float(rng.uniform(*portrait.depths))
        xs, front, walking = plan_visit(rng, kind, depth, width, fps)
        # Grey only for Grace Hopper: the grey astronaut is missed now and then.
        grey = bool(rng.random() < 0.3) and portrait.name == "grace_hopper"
        person = Person(
            id=number,
            kind=kind,
            portrait=portrait,
            depth=depth,
            flip=bool(rng.random() < 0.5),
            start=0,
            xs=xs,
            front=front,
            walking=walking,
            head_y=height * (0.33 + 0.08 * (depth - 1.0)) + rng.uniform(-0.03, 0.03) * height,
            gain=rng.uniform(0.88, 1.12, size=3) * rng.uniform(0.85, 1.1),
            grey=grey,
            hair=portrait.hair
            if rng.random() < 0.4
            else HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))],
            clothes=CLOTHES[int(rng.integers(len(CLOTHES)))],
        )
        hide_faces_off_frame(person, width, height)
        gap = round(rng.uniform(0.5, 3.5) * fps)
        start = (people[-1].start + gap) if people else earliest
        while not fits(person, start, people, width, height):
            start += max(1, round(0.25 * fps))
        person.start = start
        people.append(person)
    if duration is not None:
        last = max((p.end for p in people), default=0)
        if last > round(duration * fps):
            raise SystemExit(
                f"{count} people need {last / fps:.1f} s; raise --duration or lower --people"
            )
    return people


def hide_faces_off_frame(person: Person, width: int, height: int) -> None:
    """A face counts (and is drawn) only when all of it is inside the frame."""
    for i in range(len(person.xs)):
        if person.front[i]:
            x0, y0, x1, y1 = face_box_at(person, i, width)
            if x0 < 2 or y0 < 2 or x1 > width - 2 or y1 > height - 2:
                person.front[i] = False


def fits(person: Person, start: int, placed: list[Person], width: int, height: int) -> bool:
    """No visible face is covered by someone nearer, and at most MAX_IN_FRAME at once."""
    end = start + len(person.xs)
    overlapping = [p for p in placed if p.start < end and start < p.end]
    for frame in range(start, end):
        present = [p for p in overlapping if p.start <= frame < p.end]
        if len(present) + 1 > MAX_IN_FRAME:
            return False
        mine = frame - start
        for other in present:
            theirs = frame - other.start
            near, far, near_i, far_i = (
                (person, other, mine, theirs)
                if person.depth >= other.depth
                else (other, person, theirs, mine)
            )
            if not far.front[far_i]:
                continue
            a = face_box_at(far, far_i, width)
            b = body_box_at(near, near_i, width, height)
            if a[0] < b[2] + 2 and b[0] < a[2] + 2 and a[1] < b[3] + 2 and b[1] < a[3] + 2:
                return False
    return True


# ---------------------------------------------------------------- rendering


def shop_background(width: int, height: int, seed: int) -> np.ndarray:
    """A procedurally drawn shop: back wall, floor tiles, shelves of boxes, a poster."""
    rng = np.random.default_rng(seed + 1000)
    w, h = width, height
    ys = np.linspace(0, 1, h)[:, None, None]
    wall = np.array([214, 206, 192]) * (1.02 - 0.12 * ys)
    image = np.broadcast_to(wall, (h, w, 3)).astype(np.float32).copy()
    horizon = int(0.74 * h)
    floor_top, floor_bottom = np.array([168, 160, 146]), np.array([132, 124, 112])
    t = np.linspace(0, 1, h - horizon)[:, None, None]
    image[horizon:] = floor_top * (1 - t) + floor_bottom * t
    image = image.astype(np.uint8)  # OpenCV draws text on 8-bit images only
    centre = w / 2
    for k in range(-12, 13):
        x_far = centre + k * w * 0.06
        x_near = centre + k * w * 0.22
        cv2.line(image, (int(x_far), horizon), (int(x_near), h), (118, 110, 100), 1, cv2.LINE_AA)
    for k in range(1, 8):
        y = horizon + (h - horizon) * (k / 8) ** 1.6
        cv2.line(image, (0, int(y)), (w, int(y)), (120, 112, 102), 1, cv2.LINE_AA)
    cv2.line(image, (0, horizon), (w, horizon), (95, 88, 80), 2, cv2.LINE_AA)
    # Poster and a doorway on the back wall.
    px0, py0 = int(0.40 * w), int(0.07 * h)
    cv2.rectangle(image, (px0, py0), (int(0.60 * w), int(0.20 * h)), (200, 40, 45), -1)
    cv2.putText(
        image,
        "SALE",
        (px0 + int(0.025 * w), int(0.175 * h)),
        cv2.FONT_HERSHEY_DUPLEX,
        w / 640 * 1.3,
        (250, 245, 235),
        2,
        cv2.LINE_AA,
    )
    cv2.rectangle(
        image, (int(0.44 * w), int(0.30 * h)), (int(0.56 * w), horizon), (150, 140, 126), -1
    )
    # Shelving units left and right, boards every so often, boxes on the boards.
    for x0, x1 in ((0.0, 0.30), (0.70, 1.0)):
        ux0, ux1 = int(x0 * w), int(x1 * w)
        cv2.rectangle(image, (ux0, int(0.10 * h)), (ux1, horizon + 4), (92, 84, 76), -1)
        boards = np.linspace(0.10 * h, horizon, 6)
        for top, bottom in itertools.pairwise(boards):
            x = ux0 + 4
            while x < ux1 - 8:
                bw = int(rng.uniform(0.025, 0.06) * w)
                bh = int(rng.uniform(0.45, 0.85) * (bottom - top - 6))
                colour = rng.integers(40, 240, size=3).astype(float).tolist()
                x_end = min(x + bw, ux1 - 4)
                cv2.rectangle(
                    image, (x, int(bottom) - 4 - bh), (x_end, int(bottom) - 4), colour, -1
                )
                label = [min(255.0, c * 0.5 + 120) for c in colour]
                ly = int(bottom) - 4 - bh // 2
                cv2.rectangle(image, (x + 2, ly - 3), (x_end - 2, ly + 3), label, -1)
                x = x_end + int(rng.integers(1, 5))
            cv2.rectangle(image, (ux0, int(bottom) - 4), (ux1, int(bottom)), (170, 160, 150), -1)
    # Ceiling lights: a soft bright band, and a vignette.
    xs = np.linspace(-1, 1, w)[None, :]
    light = 1.08 - 0.10 * xs**2 - 0.14 * (np.linspace(0, 1, h)[:, None] - 0.2) ** 2
    lit = image * light[..., None] + rng.normal(0, 2.0, size=image.shape)
    return np.clip(lit, 0, 255).astype(np.uint8)


def make_sprites(person: Person, width: int, seed: int) -> None:
    """Head sprites (frontal portrait and back of the head) with a feathered alpha."""
    portrait = person.portrait
    image = portrait.load().astype(np.float32)
    if person.grey:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    image = np.clip(image * person.gain, 0, 255)
    scale, cx, cy, _ = head_geometry(person, width)
    _, _, hw, hh = portrait.head
    pad = 8
    x0, x1 = int(cx - hw - pad), int(cx + hw + pad)
    y0, y1 = int(cy - hh - pad), int(cy + hh + pad)
    src_h, src_w = image.shape[:2]
    canvas = np.zeros((y1 - y0, x1 - x0, 3), np.float32)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(src_w, x1), min(src_h, y1)
    canvas[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    if person.flip:
        canvas = canvas[:, ::-1]  # the oval is centred, so mirroring keeps it in place
    size = (max(2, round(canvas.shape[1] * scale)), max(2, round(canvas.shape[0] * scale)))
    front = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA)
    mask = np.zeros((size[1], size[0]), np.float32)
    centre = (size[0] / 2, size[1] / 2)
    axes = (hw * scale, hh * scale)
    cv2.ellipse(
        mask,
        (round(centre[0]), round(centre[1])),
        (round(axes[0]), round(axes[1])),
        0,
        0,
        360,
        1.0,
        -1,
        cv2.LINE_AA,
    )
    feather = max(1, int(0.04 * size[0])) | 1
    mask = cv2.GaussianBlur(mask, (feather * 2 + 1, feather * 2 + 1), 0)
    rng = np.random.default_rng(seed + 7919 * person.id)
    texture = cv2.GaussianBlur(rng.normal(0, 1, (size[1], size[0])).astype(np.float32), (0, 0), 2)
    strands = cv2.GaussianBlur(
        rng.normal(0, 1, (size[1], size[0])).astype(np.float32), (0, 0), sigmaX=0.6, sigmaY=4
    )
    yy = np.linspace(-1, 1, size[1])[:, None]
    xx = np.linspace(-1, 1, size[0])[None, :]
    shade = 1.1 - 0.25 * (xx**2 + yy**2) + 0.08 * texture + 0.10 * strands
    back = np.array(person.hair, np.float32) * shade[..., None] + 6
    person.sprite = {
        "front": front,
        "back": np.clip(back, 0, 255),
        "alpha": mask[..., None],
        "skin": np.array(portrait.skin, np.float32) * person.gain,
        "scale": scale,
    }


def blend(frame: np.ndarray, sprite: np.ndarray, alpha: np.ndarray, x: float, y: float) -> None:
    """Alpha-blend `sprite` centred at (x, y) onto float frame, clipped to the frame."""
    sh, sw = sprite.shape[:2]
    fx0, fy0 = round(x - sw / 2), round(y - sh / 2)
    h, w = frame.shape[:2]
    ax0, ay0 = max(0, fx0), max(0, fy0)
    ax1, ay1 = min(w, fx0 + sw), min(h, fy0 + sh)
    if ax0 >= ax1 or ay0 >= ay1:
        return
    s = (slice(ay0 - fy0, ay1 - fy0), slice(ax0 - fx0, ax1 - fx0))
    region = frame[ay0:ay1, ax0:ax1]
    a = alpha[s]
    region[:] = region * (1 - a) + sprite[s] * a


def draw_person(frame: np.ndarray, person: Person, index: int, width: int) -> None:
    sprite = person.sprite
    scale = sprite["scale"]
    hh = person.portrait.head[3]
    fw = face_width(person.depth, width)
    hx, hy = person.xs[index], person.head_y + bob(person, index)
    chin = hy + hh * scale * 0.85
    height = frame.shape[0]
    neck = (
        round(hx - 0.28 * fw),
        round(chin - 0.3 * fw),
        round(hx + 0.28 * fw),
        round(chin + 0.5 * fw),
    )
    skin = sprite["skin"] * 0.9
    cv2.rectangle(frame, neck[:2], neck[2:], skin.tolist(), -1, cv2.LINE_AA)
    clothes = np.array(person.clothes, np.float32)
    top = round(chin + 0.8 * fw)  # where the shoulders' curve meets the straight torso
    left, right, middle = round(hx - 1.25 * fw), round(hx + 1.25 * fw), round(hx)
    shoulders = (round(1.25 * fw), round(0.55 * fw))
    cv2.ellipse(frame, (middle, top), shoulders, 0, 180, 360, clothes.tolist(), -1, cv2.LINE_AA)
    cv2.rectangle(frame, (left, top), (right, height), (clothes * 0.92).tolist(), -1)
    seam = max(1, round(0.04 * fw))
    cv2.line(frame, (middle, top), (middle, height), (clothes * 0.7).tolist(), seam, cv2.LINE_AA)
    face = sprite["front"] if person.front[index] else sprite["back"]
    blend(frame, face, sprite["alpha"], hx, hy)


def render_frame(
    background: np.ndarray, people: list[Person], frame_index: int, seed: int, width: int
) -> np.ndarray:
    frame = background.astype(np.float32)
    present = [p for p in people if p.start <= frame_index < p.end]
    for person in sorted(present, key=lambda p: p.depth):  # far first
        draw_person(frame, person, frame_index - person.start, width)
    rng = np.random.default_rng([seed, frame_index])
    frame *= 1.0 + rng.normal(0, 0.008)  # auto-exposure flicker
    frame += rng.normal(0, 1.5, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- truth


def intervals(flags: np.ndarray, start: int, fps: float) -> list[list[float]]:
    """[start, end) seconds of each run of True in `flags` (frame `start` onward)."""
    runs: list[list[float]] = []
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        runs.append([round((start + a) / fps, 3), round((start + b) / fps, 3)])
    return runs


def in_frame(person: Person, width: int, height: int) -> np.ndarray:
    boxes = [body_box_at(person, i, width, height) for i in range(len(person.xs))]
    return np.array([b[2] > 0 and b[0] < width for b in boxes])


def truth(
    people: list[Person],
    video: str,
    fps: float,
    frames: int,
    width: int,
    height: int,
    min_look: float,
    seed: int,
) -> dict:
    entries = []
    for person in people:
        inside = np.flatnonzero(in_frame(person, width, height))
        looking = intervals(person.front, person.start, fps)
        visible = looking  # a face is either frontal or hidden: see the module docstring
        longest = max((b - a for a, b in looking), default=0.0)
        shown = np.flatnonzero(person.front)
        boxes = [
            [int(person.start + i), *(round(v) for v in face_box_at(person, int(i), width))]
            for i in shown
        ]
        entries.append(
            {
                "id": person.id,
                "source": person.portrait.name,
                "kind": person.kind,
                "mirrored": person.flip,
                "depth": round(person.depth, 3),
                "enter_s": round((person.start + int(inside[0])) / fps, 3),
                "leave_s": round((person.start + int(inside[-1]) + 1) / fps, 3),
                "visible_face_s": visible,
                "looking": looking,
                "viewer": bool(longest >= min_look - 1e-9),
                "dwell_s": round((shown[-1] + 1 - shown[0]) / fps, 3) if len(shown) else 0.0,
                "visible_s": round(len(shown) / fps, 3),
                "attention_s": round(float(person.front.sum()) / fps, 3),
                "boxes": boxes,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "video": video,
        "fps": fps,
        "frames": frames,
        "width": width,
        "height": height,
        "min_look_s": min_look,
        "seed": seed,
        "times": "seconds; frame k covers [k/fps, (k+1)/fps); intervals are [start, end)",
        "people": entries,
    }


# ---------------------------------------------------------------- output


def open_writer(out: Path, fps: float, size: tuple[int, int]) -> tuple[cv2.VideoWriter, Path]:
    """mp4v into .mp4 when OpenCV can; MJPG into .avi otherwise."""
    candidates = [(out, "mp4v")] if out.suffix.lower() == ".mp4" else []
    candidates.append((out.with_suffix(".avi"), "MJPG"))
    for path, codec in candidates:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, size)
        if writer.isOpened():
            return writer, path
        writer.release()
    raise SystemExit(f"OpenCV cannot write {out} (tried mp4v and MJPG)")


def count_frames(path: Path) -> tuple[int, int, int]:
    capture = cv2.VideoCapture(str(path))
    frames, width, height = 0, 0, 0
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames += 1
        height, width = image.shape[:2]
    capture.release()
    return frames, width, height


def generate(
    out: Path,
    people_count: int,
    seed: int,
    fps: float,
    width: int,
    height: int,
    duration: float | None,
    min_look: float,
    progress: bool = True,
) -> tuple[Path, dict, list[Person]]:
    people = make_people(people_count, seed, width, height, fps, duration)
    last = max((p.end for p in people), default=0)
    frames = round(duration * fps) if duration is not None else last + round(TAIL_S * fps)
    for person in people:
        make_sprites(person, width, seed)
    background = shop_background(width, height, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer, path = open_writer(out, fps, (width, height))
    try:
        for index in tqdm(range(frames), desc=path.name, unit="frame", disable=not progress):
            rgb = render_frame(background, people, index, seed, width)
            writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    written, w, h = count_frames(path)
    if (written, w, h) != (frames, width, height):
        if path.suffix == ".mp4":  # written but not readable back: fall back to MJPG
            path.unlink(missing_ok=True)
            return generate(
                out.with_suffix(".avi"),
                people_count,
                seed,
                fps,
                width,
                height,
                duration,
                min_look,
                progress,
            )
        raise SystemExit(f"{path}: read back {written} frames of {w}x{h}, wrote {frames}")
    data = truth(people, path.name, fps, frames, width, height, min_look, seed)
    return path, data, people


def truth_path(video: Path) -> Path:
    return video.with_name(f"{video.stem}_truth.json")


def write_truth(path: Path, data: dict) -> None:
    """Readable, but one line per box so that long clips stay small."""
    people = data["people"]
    lines = ["{"]
    head = {k: v for k, v in data.items() if k != "people"}
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value)},")
    lines.append('  "people": [')
    for n, person in enumerate(people):
        lines.append("    {")
        items = list(person.items())
        for m, (key, value) in enumerate(items):
            comma = "," if m < len(items) - 1 else ""
            if key == "boxes":
                rows = ",\n        ".join(json.dumps(box) for box in value)
                body = f"[\n        {rows}\n      ]" if value else "[]"
                lines.append(f'      "boxes": {body}{comma}')
            else:
                lines.append(f"      {json.dumps(key)}: {json.dumps(value)}{comma}")
        lines.append("    }" + ("," if n < len(people) - 1 else ""))
    lines += ["  ]", "}"]
    text = "\n".join(lines) + "\n"
    json.loads(text)  # stays valid JSON
    path.write_text(text)


# ---------------------------------------------------------------- verification


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def verify(path: Path, people: list[Person], width: int, progress: bool = True) -> bool:
    """Run the real detector over the written video; print a table; True if it reads right."""
    from edge_agent.installed import default_models_dir
    from edge_agent.vision.detectors.blazeface import BlazeFaceDetector
    from edge_agent.vision.pose import estimate_pose

    detector = BlazeFaceDetector(default_models_dir())
    stats = {p.id: {"look": 0, "found": 0, "frontal": 0, "away": 0, "misread": 0} for p in people}
    stray, empty_frames, empty_hits = 0, 0, 0
    capture = cv2.VideoCapture(str(path))
    frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    for index in tqdm(range(frames), desc="verify", unit="frame", disable=not progress):
        ok, bgr = capture.read()
        if not ok:
            break
        found = [
            (tuple(d.box), estimate_pose(d.landmarks)[0])
            for d in detector.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        ]
        present = [p for p in people if p.start <= index < p.end]
        if not present:
            empty_frames += 1
            empty_hits += bool(found)
        claimed = set()
        boxes = {p.id: face_box_at(p, index - p.start, width) for p in present}
        # Detections that belong to someone's visible face: not a misread of anyone behind.
        shown = {
            n
            for n, (b, _) in enumerate(found)
            for p in present
            if p.front[index - p.start] and _iou(b, boxes[p.id]) >= 0.3
        }
        for person in present:
            i = index - person.start
            box = boxes[person.id]
            near = [(n, yaw) for n, (b, yaw) in enumerate(found) if _iou(b, box) >= 0.3]
            claimed.update(n for n, _ in near)
            s = stats[person.id]
            if person.front[i]:
                s["look"] += 1
                s["found"] += bool(near)
                s["frontal"] += any(abs(yaw) < 20 for _, yaw in near)
            elif 0 < person.xs[i] < width:
                s["away"] += 1
                s["misread"] += any(abs(yaw) <= 40 for n, yaw in near if n not in shown)
        stray += len(found) - len(claimed)
    capture.release()
    print(
        f"{'id':>3} {'kind':8} {'source':13} {'look':>5} {'found':>6} {'|yaw|<20':>8}"
        f" {'away':>5} {'misread':>7}"
    )

    def pct(part: int, whole: int) -> str:
        return f"{100 * part / whole:5.1f}%" if whole else "    -"

    for person in people:
        s = stats[person.id]
        print(
            f"{person.id:>3} {person.kind:8} {person.portrait.name:13} {s['look']:>5}"
            f" {pct(s['found'], s['look']):>6} {pct(s['frontal'], s['look']):>8}"
            f" {s['away']:>5} {pct(s['misread'], s['away']):>7}"
        )
    look = sum(s["look"] for s in stats.values())
    found = sum(s["found"] for s in stats.values())
    frontal = sum(s["frontal"] for s in stats.values())
    away = sum(s["away"] for s in stats.values())
    misread = sum(s["misread"] for s in stats.values())
    print(
        f"all: looking frames {look}, detected {pct(found, look)}, frontal {pct(frontal, look)};"
        f" turned-away frames {away}, misread {pct(misread, away)};"
        f" stray detections {stray}; empty frames with a detection {empty_hits}/{empty_frames}"
    )
    good = (
        (not look or (found / look >= 0.9 and frontal / look >= 0.9))
        and (not away or misread / away <= 0.1)
        and empty_hits == 0
    )
    print("verify:", "ok" if good else "FAILED")
    return good


# ---------------------------------------------------------------- command line


def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, not {text!r}") from None
    if width < 160 or height < 120:
        raise argparse.ArgumentTypeError("size must be at least 160x120")
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("samples/demo.mp4"))
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--duration", type=float, help="seconds (default: until all have left)")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--size", type=parse_size, default=(640, 480), help="WxH, e.g. 640x480")
    parser.add_argument("--min-look", type=float, default=1.0, help="seconds to be a viewer")
    parser.add_argument("--verify", action="store_true", help="check with the real detector")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.people < 0 or args.fps <= 0:
        parser.error("--people must be >= 0 and --fps > 0")
    width, height = args.size
    path, data, people = generate(
        args.out,
        args.people,
        args.seed,
        args.fps,
        width,
        height,
        args.duration,
        args.min_look,
        progress=not args.quiet,
    )
    write_truth(truth_path(path), data)
    viewers = sum(p["viewer"] for p in data["people"])
    print(
        f"{path}: {data['frames']} frames, {data['frames'] / args.fps:.1f} s, {len(people)} people"
        f" ({viewers} viewers), {path.stat().st_size / 1e6:.2f} MB; truth in {truth_path(path)}"
    )
    if args.verify and not verify(path, people, width, progress=not args.quiet):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
