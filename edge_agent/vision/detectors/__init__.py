"""Face detector families behind one interface (`Detector.detect(image) -> [Detection]`).

Each family pairs a small settings value with a `type` key (`vision.values.BlazeFaceSettings`,
`YuNetSettings`) with a class here, as Frigate pairs its detector configs and plugins:

- `blazeface`: MediaPipe BlazeFace, the whole frame letterboxed to 128 or 192 px;
- `yunet`: libfacedetection's YuNet, the frame scaled to `input_pixels` (640 x 360 by default).
"""

from __future__ import annotations

from edge_agent.vision.detectors.base import Detector
from edge_agent.vision.values import BlazeFaceSettings, VisionSettings


def make_detector(settings: VisionSettings) -> Detector:
    """The configured detector, built (its model loaded and checked) and ready."""
    detector = settings.detector
    if isinstance(detector, BlazeFaceSettings):
        from edge_agent.vision.detectors.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(
            settings.models_dir,
            detector.variant,
            min_score=detector.min_score,
            num_threads=settings.num_threads,
            delegate=settings.delegate,
        )
    from edge_agent.vision.detectors.yunet import YuNetDetector

    return YuNetDetector(
        settings.models_dir, detector, num_threads=settings.num_threads, delegate=settings.delegate
    )
