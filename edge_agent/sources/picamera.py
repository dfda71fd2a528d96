"""The Raspberry Pi camera through picamera2 (libcamera).

picamera2 is imported only in open(): it exists only on Raspberry Pi OS (apt package
python3-picamera2, not a PyPI wheel that works in a plain venv), and importing it starts
libcamera's camera manager.

Written against picamera2's documented API (the Picamera2 manual and its source):
`Picamera2(camera_num)`, `create_video_configuration(main=..., controls=...)`, `configure`,
`start`, `capture_array("main", wait=seconds)` which raises TimeoutError when no frame came in
time, `stop`, `close`. Tested here against a stand-in with that API surface
(tests/support/fake_picamera2); not yet run on a Pi with a camera attached.

Colour order: picamera2 names formats after DRM fourccs, which count bytes from the least
significant end, so "RGB888" arrives in numpy as [B, G, R] per pixel (the manual: "RGB888 -
24 bits per pixel, ordered [B, G, R]"). That is OpenCV's BGR; we convert to RGB once here.
"""

from __future__ import annotations

import logging
from typing import Any

from edge_agent.sources.base import FrameSource, SourceError, to_rgb
from edge_agent.sources.values import Frame

log = logging.getLogger(__name__)

MAIN_FORMAT = "RGB888"  # [B, G, R] bytes in numpy; see the module docstring
INSTALL_HINT = (
    "the picamera2 module is not available: on Raspberry Pi OS run "
    "`sudo apt install python3-picamera2` and create the virtual environment with "
    "`python3 -m venv --system-site-packages` so it can see the system package"
)


class PiCameraSource(FrameSource):
    """A libcamera camera (Pi Camera Module, or any libcamera-supported sensor) via picamera2.

    width x height is the size of the main (RGB) stream; libcamera scales from the sensor mode
    it picks. fps, when given, fixes the frame duration (FrameDurationLimits) so exposure
    cannot slow the camera down in dim light.
    """

    def __init__(
        self, width: int = 1280, height: int = 720, *, fps: float | None = None, camera_num: int = 0
    ) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"camera size must be positive, got {width}x{height}")
        if fps is not None and fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.width = width
        self.height = height
        self.fps = fps
        self.camera_num = camera_num
        self._camera: Any = None
        self._started = False
        self._index = 0

    def describe(self) -> str:
        fps = f" at {self.fps:g} fps" if self.fps else ""
        return f"picamera:{self.camera_num} {self.width}x{self.height}{fps}"

    def configuration_controls(self) -> dict[str, Any]:
        if self.fps is None:
            return {}
        # Microseconds; equal minimum and maximum fix the rate. (Newer picamera2 also accepts
        # a "FrameRate" pseudo-control; this libcamera control works on every version.)
        duration = round(1_000_000 / self.fps)
        return {"FrameDurationLimits": (duration, duration)}

    def open(self) -> None:
        if self._camera is not None:
            return
        try:
            from picamera2 import Picamera2
        except ImportError as error:
            raise SourceError(f"cannot open {self.describe()}: {INSTALL_HINT}") from error
        try:
            self._camera = Picamera2(self.camera_num)
            config = self._camera.create_video_configuration(
                main={"size": (self.width, self.height), "format": MAIN_FORMAT},
                controls=self.configuration_controls(),
            )
            self._camera.configure(config)
            self._camera.start()
            self._started = True
        except Exception as error:
            self.close()
            raise SourceError(f"could not start {self.describe()}: {error}") from error
        log.info("opened %s", self.describe())

    def read(self, timeout: float) -> Frame | None:
        camera = self._camera
        if camera is None:
            raise SourceError(f"{self.describe()} is not open")
        try:
            # A number for `wait` makes picamera2 raise TimeoutError (concurrent.futures'
            # TimeoutError, the builtin one since Python 3.11) instead of blocking forever.
            array = camera.capture_array("main", wait=max(timeout, 0.001))
        except TimeoutError:
            return None
        except Exception as error:
            raise SourceError(f"{self.describe()} failed: {error}") from error
        return self._stamp(to_rgb(array))

    def close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is None:
            return
        if self._started:
            self._started = False
            try:
                camera.stop()
            except Exception as error:  # closing must go on: the camera stays locked otherwise
                log.warning("stopping %s failed: %s", self.describe(), error)
        try:
            camera.close()
        except Exception as error:
            log.warning("closing %s failed: %s", self.describe(), error)
