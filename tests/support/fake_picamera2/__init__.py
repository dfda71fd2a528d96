"""A stand-in for picamera2, for machines without a Pi camera.

It implements only the API surface edge_agent.sources.picamera uses, with the real
signatures and behaviour that matters to us (as read in picamera2's source and manual):

- `Picamera2(camera_num=0)` raises RuntimeError when there is no such camera;
- `create_video_configuration(main=..., controls=...)` returns a plain dict;
- `configure` is refused while started; `capture_array(name="main", wait=None)` needs a
  started camera and, with a number for `wait`, raises TimeoutError when no frame comes;
- "RGB888" arrays come out with bytes in [B, G, R] order (DRM fourcc naming).

Tests steer it through module attributes: `cameras` (how many are attached), `scene_rgb`
(the colour the sensor sees), `stalled` (frames stop coming), `instances` (every camera made).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

cameras = 1
scene_rgb: tuple[int, int, int] = (255, 0, 0)
stalled = False
instances: list[Picamera2] = []


def reset() -> None:
    global cameras, scene_rgb, stalled
    cameras, scene_rgb, stalled = 1, (255, 0, 0), False
    instances.clear()


class Picamera2:
    def __init__(self, camera_num: int = 0, verbose_console: Any = None, tuning: Any = None):
        if camera_num >= cameras:
            raise RuntimeError("Camera __init__ sequence did not complete.")
        self.camera_num = camera_num
        self.camera_config: dict[str, Any] | None = None
        self.started = False
        self.is_open = True
        self.calls: list[str] = []
        instances.append(self)

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: dict[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: dict[str, Any] | None = None,
        use_case: str = "video",
    ) -> dict[str, Any]:
        main = {"format": "XBGR8888", "size": (1280, 720), **(main or {})}
        return {
            "use_case": use_case,
            "main": main,
            "lores": lores,
            "raw": raw,
            "buffer_count": buffer_count,
            "controls": dict(controls or {}),
            "queue": queue,
        }

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.camera_config = camera_config
        self.calls.append("configure")

    def start(self, config: dict[str, Any] | None = None, show_preview: bool = False) -> None:
        if self.camera_config is None and config is None:
            raise RuntimeError("Camera has not been configured")
        if config is not None:
            self.configure(config)
        self.started = True
        self.calls.append("start")

    def capture_array(self, name: str = "main", wait: Any = None, signal_function: Any = None):
        if not self.started or self.camera_config is None:
            raise RuntimeError("Camera not running")
        if stalled:
            if isinstance(wait, (int, float)) and not isinstance(wait, bool):
                time.sleep(wait)
                raise TimeoutError()
            raise AssertionError("the stand-in would block forever: pass a number for wait")
        stream = self.camera_config[name]
        width, height = stream["size"]
        if stream["format"] != "RGB888":
            raise NotImplementedError(f"the stand-in only makes RGB888, not {stream['format']}")
        red, green, blue = scene_rgb
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[...] = (blue, green, red)  # RGB888 is [B, G, R] in memory
        time.sleep(0.002)
        return image

    def stop(self) -> None:
        self.started = False
        self.calls.append("stop")

    def close(self) -> None:
        if self.started:
            self.stop()
        self.is_open = False
        self.calls.append("close")
