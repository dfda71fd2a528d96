#!/usr/bin/env python3
"""Draw the example creatives in ads/creatives/: posters (PNG) and short clips (WebM, VP8).

Everything is drawn here with OpenCV from shapes and text, so the examples carry no one
else's copyright. The brands are invented. Run from the repository root:

    .venv/bin/python scripts/make_example_ads.py            # writes ads/creatives/
    .venv/bin/python scripts/make_example_ads.py --out DIR

The output is deterministic for a given OpenCV build (no randomness, no timestamps in PNG);
WebM files may differ in their container bytes between libvpx versions.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 1280, 720
VIDEO_SIZE = (640, 360)
VIDEO_FPS = 25
FONT = cv2.FONT_HERSHEY_DUPLEX

Colour = tuple[int, int, int]  # BGR, as OpenCV draws


@dataclass(frozen=True)
class Poster:
    name: str
    title: str
    subtitle: str
    top: Colour
    bottom: Colour
    motif: Callable[[np.ndarray], None]


def gradient(top: Colour, bottom: Colour, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    width, height = size
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    image = (1 - ramp) * np.array(top, np.float32) + ramp * np.array(bottom, np.float32)
    return np.repeat(image, width, axis=1).astype(np.uint8)


def centred_text(image: np.ndarray, text: str, y: int, scale: float, thickness: int) -> None:
    (width, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    x = (image.shape[1] - width) // 2
    cv2.putText(image, text, (x + 3, y + 3), FONT, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def cup(image: np.ndarray) -> None:
    cv2.rectangle(image, (540, 380), (700, 560), (235, 235, 235), -1)
    cv2.ellipse(image, (700, 470), (50, 60), 0, -90, 90, (235, 235, 235), 18)
    for x in (580, 620, 660):
        cv2.ellipse(image, (x, 330), (12, 40), 0, 0, 360, (200, 200, 200), 4)


def bottle(image: np.ndarray) -> None:
    cv2.rectangle(image, (590, 400), (690, 580), (210, 170, 250), -1)
    cv2.rectangle(image, (620, 350), (660, 400), (90, 60, 160), -1)
    cv2.circle(image, (640, 490), 30, (255, 255, 255), 3)


def razor(image: np.ndarray) -> None:
    cv2.rectangle(image, (620, 380), (660, 580), (60, 60, 60), -1)
    cv2.rectangle(image, (560, 350), (720, 390), (200, 200, 200), -1)


def basket(image: np.ndarray) -> None:
    cv2.rectangle(image, (520, 420), (760, 560), (40, 140, 220), -1)
    cv2.ellipse(image, (640, 420), (120, 90), 0, 180, 360, (40, 140, 220), 12)
    for x, colour in ((580, (60, 60, 220)), (640, (60, 200, 60)), (700, (0, 200, 240))):
        cv2.circle(image, (x, 410), 32, colour, -1)


def clock(image: np.ndarray) -> None:
    cv2.circle(image, (640, 470), 100, (255, 255, 255), 6)
    cv2.line(image, (640, 470), (640, 395), (255, 255, 255), 6)
    cv2.line(image, (640, 470), (700, 470), (255, 255, 255), 6)


def moon(image: np.ndarray) -> None:
    cv2.circle(image, (640, 470), 90, (200, 230, 255), -1)
    cv2.circle(image, (680, 440), 80, (70, 30, 20), -1)


def tag(image: np.ndarray) -> None:
    points = np.array([[520, 400], [700, 400], [760, 470], [700, 540], [520, 540]], np.int32)
    cv2.fillPoly(image, [points], (0, 215, 255))
    cv2.putText(image, "-40%", (540, 495), FONT, 2.0, (0, 0, 0), 4, cv2.LINE_AA)


def people(image: np.ndarray) -> None:
    for x in (560, 640, 720):
        cv2.circle(image, (x, 400), 30, (255, 255, 255), -1)
        cv2.ellipse(image, (x, 520), (45, 70), 0, 180, 360, (255, 255, 255), -1)


POSTERS = (
    Poster("welcome", "Corner Market", "Fresh every day", (90, 60, 20), (40, 120, 60), basket),
    Poster(
        "store-hours", "Open 7 to 22", "Every day of the week", (60, 60, 60), (120, 80, 30), clock
    ),
    Poster(
        "coffee-morning",
        "Morning Coffee",
        "Any size 1.50 until 11:00",
        (30, 60, 110),
        (20, 30, 60),
        cup,
    ),
    Poster("perfume", "Lumiere No. 5", "The new fragrance", (130, 60, 150), (60, 20, 90), bottle),
    Poster("razor", "Edge Pro Razor", "Three blades, one pass", (90, 90, 90), (30, 30, 30), razor),
    Poster(
        "family-deals",
        "Family Deals",
        "Fruit, bread and more",
        (40, 150, 90),
        (20, 90, 160),
        basket,
    ),
    Poster(
        "late-night",
        "Late Night Snacks",
        "Open until 2 on weekends",
        (70, 30, 20),
        (20, 10, 10),
        moon,
    ),
    Poster(
        "black-friday",
        "Black Friday",
        "Up to 40% off, this weekend only",
        (20, 20, 20),
        (0, 0, 0),
        tag,
    ),
    Poster(
        "group-offer",
        "Bring a Friend",
        "Two coffees for the price of one",
        (120, 100, 20),
        (60, 40, 10),
        people,
    ),
)


def draw_poster(poster: Poster) -> np.ndarray:
    image = gradient(poster.top, poster.bottom)
    centred_text(image, poster.title, 170, 3.0, 5)
    centred_text(image, poster.subtitle, 260, 1.5, 3)
    poster.motif(image)
    centred_text(image, "example creative - edge-agent", 680, 0.8, 1)
    return image


def write_sneaker_clip(path: Path, seconds: float = 6.0) -> None:
    """A shoe that runs across the screen, as a short VP8 WebM."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), VIDEO_FPS, VIDEO_SIZE)
    if not writer.isOpened():
        raise SystemExit("this OpenCV build cannot write VP8 WebM")
    width = VIDEO_SIZE[0]
    background = gradient((160, 80, 0), (60, 20, 0), VIDEO_SIZE)
    frames = round(seconds * VIDEO_FPS)
    for index in range(frames):
        frame = background.copy()
        phase = index / frames
        x = int(-120 + phase * (width + 240))
        y = int(250 - 25 * abs(math.sin(phase * 8 * math.pi)))
        cv2.ellipse(frame, (x, y), (70, 28), 0, 0, 360, (255, 255, 255), -1)
        cv2.rectangle(frame, (x - 70, y), (x + 70, y + 14), (40, 40, 40), -1)
        for trail in range(1, 4):
            cv2.line(
                frame,
                (x - 80 - trail * 30, y - 10 + trail * 8),
                (x - 100 - trail * 30, y - 10 + trail * 8),
                (255, 255, 255),
                3,
            )
        centred_text(frame, "Stride Sneakers", 80, 1.5, 3)
        centred_text(frame, "Run lighter", 130, 0.9, 2)
        writer.write(frame)
    writer.release()


def write_fruit_clip(path: Path, seconds: float = 5.0) -> None:
    """Fruit dropping into a basket, as a short VP8 WebM (the neutral playlist's clip)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), VIDEO_FPS, VIDEO_SIZE)
    if not writer.isOpened():
        raise SystemExit("this OpenCV build cannot write VP8 WebM")
    background = gradient((60, 160, 90), (30, 90, 150), VIDEO_SIZE)
    frames = round(seconds * VIDEO_FPS)
    colours = ((60, 60, 220), (60, 200, 60), (0, 200, 240), (0, 140, 255))
    for index in range(frames):
        frame = background.copy()
        cv2.rectangle(frame, (220, 260), (420, 340), (40, 140, 220), -1)
        for fruit, colour in enumerate(colours):
            start = fruit * 0.2
            t = min(max((index / frames - start) / 0.3, 0.0), 1.0)
            cv2.circle(frame, (260 + fruit * 40, int(20 + t * 225)), 22, colour, -1)
        centred_text(frame, "Fresh fruit daily", 70, 1.3, 3)
        writer.write(frame)
    writer.release()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ads/creatives"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for poster in POSTERS:
        target = args.out / f"{poster.name}.png"
        cv2.imwrite(str(target), draw_poster(poster), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        print(target)
    for name, write in (("sneakers", write_sneaker_clip), ("fresh-fruit", write_fruit_clip)):
        target = args.out / f"{name}.webm"
        write(target)
        print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
