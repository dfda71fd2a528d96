"""`vision.detector`: which face detector family, and how it sees the frame.

A mapping with a `type` key picks the family, and the other keys are that family's (Frigate's
detector config shape). A bare name is the short form: `full_range_int8` is
`{type: blazeface, variant: full_range_int8}`, `yunet_n` is `{type: yunet, model: yunet_n}`,
`yunet_n_float32` the same in float32 (the names of `edge-agent ... --detector`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field
from pydantic_core import PydanticCustomError

from edge_agent.config.base import ConfigModel, setting
from edge_agent.vision.values import (
    BlazeFaceSettings,
    BlazeFaceVariant,
    DetectorName,
    DetectorSettings,
    Precision,
    YuNetModel,
    YuNetSettings,
    detector_settings,
)


class BlazeFaceDetectorConfig(ConfigModel):
    type: Literal["blazeface"] = setting("blazeface", "Family", "MediaPipe BlazeFace.")
    variant: BlazeFaceVariant = setting(
        "full_range_int8",
        "Variant",
        "full_range sees the frame shrunk to 192 px and finds faces from about 7.5 % of its"
        " width, short_range (128 px) from about 12.5 %; full_range_int8 is full_range"
        " quantized, about 1.4x faster with the same recall; full_range_sparse is MediaPipe's"
        " sparse full_range.",
    )

    def settings(self, min_score: float) -> DetectorSettings:
        return BlazeFaceSettings(variant=self.variant, min_score=min_score)


class YuNetDetectorConfig(ConfigModel):
    type: Literal["yunet"] = setting(
        "yunet", "Family", "libfacedetection's YuNet, made for small faces."
    )
    model: YuNetModel = setting(
        "yunet_s",
        "Model",
        "yunet_s (55 k parameters, the default: fewer false detections here) or yunet_n"
        " (75 k: finds more of the smallest faces, about 1 ms slower).",
    )
    precision: Precision = setting(
        "int8", "Precision", "int8 (quantized, faster, the one an Edge TPU runs) or float32."
    )
    input_pixels: int = setting(
        640 * 360,
        "Input pixels",
        "The frame is scaled, keeping its shape, to about this many pixels before detection:"
        " 230400 (640 x 360) halves a 1280x720 frame. The cost goes with the pixels; more"
        " finds smaller, more distant faces (docs/deployment.md).",
        ge=32 * 32,
        le=3840 * 2160,
    )

    def settings(self, min_score: float) -> DetectorSettings:
        return YuNetSettings(
            model=self.model,
            precision=self.precision,
            input_pixels=self.input_pixels,
            min_score=min_score,
        )


DetectorConfig = Annotated[
    BlazeFaceDetectorConfig | YuNetDetectorConfig, Field(discriminator="type")
]
DETECTOR_NAMES: tuple[str, ...] = get_args(DetectorName)


def expand_detector_name(value: Any) -> Any:
    """The short form (a detector name) as the mapping it stands for; anything else as it is."""
    if not isinstance(value, str):
        return value
    if value not in DETECTOR_NAMES:
        quoted = [repr(name) for name in DETECTOR_NAMES]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": expected}
        )
    settings = detector_settings(value)  # type: ignore[arg-type]
    if isinstance(settings, BlazeFaceSettings):
        return {"type": "blazeface", "variant": settings.variant}
    return {"type": "yunet", "model": settings.model, "precision": settings.precision}
