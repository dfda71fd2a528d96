"""Where the picture changed: sensor noise is not a change, a face arriving is one (and only
where it arrived), and a change of most of the picture asks for the whole frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_agent.vision.motion import MotionGate

SIZE = (640, 480)


@pytest.fixture(scope="module")
def shop(non_faces) -> np.ndarray:
    """A still scene with detail everywhere (the launch site photo), at 640x480."""
    return cv2.resize(non_faces["rocket"], SIZE, interpolation=cv2.INTER_AREA)


def exposed(scene: np.ndarray, seed: int, noise: float = 4.0) -> np.ndarray:
    """The scene as a camera delivers it: fresh sensor noise on every frame."""
    rng = np.random.default_rng(seed)
    noisy = scene.astype(np.float32) + rng.normal(0, noise, scene.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def with_face(scene: np.ndarray, face: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    framed = scene.copy()
    x, y = at
    framed[y : y + face.shape[0], x : x + face.shape[1]] = face
    return framed


@pytest.fixture(scope="module")
def face(astronaut) -> np.ndarray:
    """The astronaut's head and shoulders, about 60 px of face."""
    return cv2.resize(astronaut[0:300, 100:400], (120, 120), interpolation=cv2.INTER_AREA)


def test_the_first_frame_and_a_new_frame_size_ask_for_the_whole_frame(shop):
    gate = MotionGate()
    assert gate.changed_regions(exposed(shop, 1)) is None
    assert gate.changed_regions(exposed(shop, 2)) == []
    smaller = cv2.resize(shop, (320, 240))
    assert gate.changed_regions(smaller) is None


def test_sensor_noise_is_not_a_change(shop):
    gate = MotionGate()
    gate.changed_regions(exposed(shop, 1))
    assert all(gate.changed_regions(exposed(shop, seed)) == [] for seed in range(2, 12))


def test_a_face_arriving_is_searched_where_it_arrived_and_nowhere_else(shop, face):
    gate = MotionGate()
    gate.changed_regions(exposed(shop, 1))
    (region,) = gate.changed_regions(exposed(with_face(shop, face, (400, 200)), 2))
    # The whole face, with some room around it, and far less than the frame.
    assert region.x0 < 400 and region.y0 < 200 and region.x1 > 520 and region.y1 > 320
    assert region.area < 0.15 * SIZE[0] * SIZE[1]
    assert region.face_width == 0.0  # an unknown face: full detail
    # Nothing moved since: nothing to search.
    assert gate.changed_regions(exposed(with_face(shop, face, (400, 200)), 3)) == []


def test_a_change_of_most_of_the_picture_asks_for_the_whole_frame(shop):
    gate = MotionGate()
    gate.changed_regions(exposed(shop, 1))
    brighter = np.clip(shop.astype(np.int16) + 40, 0, 255).astype(np.uint8)
    assert gate.changed_regions(exposed(brighter, 2)) is None
