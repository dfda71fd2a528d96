"""Shared fixtures: the real models, real public-domain photos that ship in PyPI packages, a
real headless Chromium and real MQTT brokers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from edge_agent.installed import default_models_dir
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.values import VisionSettings

MODELS = default_models_dir()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return MODELS


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, NASA portrait (public domain), 512x512 RGB, from scikit-image."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """Grace Hopper, US Navy portrait (public domain), 512x600 RGB, from matplotlib."""
    import matplotlib.cbook

    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def cameraman() -> np.ndarray:
    """scikit-image's "camera" (no known copyright restrictions), grey turned RGB."""
    from skimage import data

    return np.repeat(data.camera()[..., None], 3, axis=2)


@pytest.fixture(scope="session")
def non_faces() -> dict[str, np.ndarray]:
    """Scenes without people: a landscape-like launch site, coffee, grass, a cat, noise."""
    from skimage import data

    rng = np.random.default_rng(7)
    return {
        "rocket": data.rocket(),
        "coffee": data.coffee(),
        "grass": np.repeat(data.grass()[..., None], 3, axis=2),
        "cat": data.chelsea(),
        "noise": rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8),
        "flat_grey": np.full((480, 640, 3), 128, dtype=np.uint8),
    }


@pytest.fixture(scope="session")
def pipeline() -> VisionPipeline:
    return VisionPipeline(VisionSettings(models_dir=MODELS))


# -- real headless Chromium ------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, through Playwright's sync API (which allows one
    per thread). It comes from $EDGE_AGENT_CHROMIUM or `chromium` on PATH; without one the
    tests that use it are skipped, unless EDGE_AGENT_REQUIRE_CHROMIUM=1 (CI) fails them."""
    from edge_agent.ads.players.chromium import HEADLESS_ARGS, find_chromium

    def unavailable(why: str) -> None:
        if os.environ.get("EDGE_AGENT_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"{why}, and EDGE_AGENT_REQUIRE_CHROMIUM=1")
        pytest.skip(why)

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed")
    executable = find_chromium()
    if executable is None:
        unavailable("no Chromium: install chromium or set EDGE_AGENT_CHROMIUM")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, args=HEADLESS_ARGS)
        yield chromium
        chromium.close()


# -- a real MQTT broker (tests/support/mqtt_broker.py) ------------------------------------


@pytest.fixture
def broker_factory(tmp_path: Path):
    """Call with Broker options (tls=, require_client_cert=, users=, persistence=) to get a
    started broker in its own folder; all are stopped at teardown. A missing broker skips the
    test (fails it with EDGE_AGENT_REQUIRE_MOSQUITTO=1), as does an option the broker lacks."""
    from tests.support.mqtt_broker import Broker, BrokerUnavailable, make_broker, skip_or_fail

    started: list[Broker] = []

    def start(**options) -> Broker:
        try:
            broker = make_broker(tmp_path / f"broker-{len(started)}", **options)
        except BrokerUnavailable as error:
            skip_or_fail(error)
        started.append(broker)
        broker.start()
        return broker

    yield start
    for broker in reversed(started):
        broker.close()


@pytest.fixture
def broker(broker_factory):
    """A started plain broker (anonymous, no TLS, persistence on) on 127.0.0.1:broker.port."""
    return broker_factory()
