"""The `tracking` section: following each face from frame to frame."""

from __future__ import annotations

from edge_agent.config.base import ConfigModel, setting


class TrackingConfig(ConfigModel):
    confirm_hits: int = setting(
        3,
        "Detections to confirm",
        "Detections a new track needs before it counts as a person (filters one-frame false"
        " detections).",
        ge=1,
    )
    confirm_within_s: float = setting(
        1.0,
        "Confirmation window",
        "Seconds within which those detections must come, or the track is dropped.",
        gt=0,
    )
    confirm_min_score: float = setting(
        0.6,
        "Confident sighting",
        "A track starts only from a detection scoring this high: real faces do, the odd"
        " textured patch that passes the detection threshold does not.",
        ge=0,
        le=1,
    )
    low_score: float = setting(
        0.3,
        "Weak sighting",
        "Weaker detections, down to this score, only continue a track seen a moment ago and"
        " where it was predicted to be (a blurred, turned or half-hidden face); they never start"
        " one.",
        gt=0,
        lt=1,
    )
    lost_after_s: float = setting(
        1.5,
        "Lost after",
        "Seconds a person may go unseen (turned away, occluded) before they count as gone.",
        gt=0,
    )
    min_iou: float = setting(
        0.2,
        "Least overlap",
        "Overlap (intersection over union) a detection needs with a track's predicted box to be"
        " the same face.",
        ge=0,
        le=1,
    )
    max_keypoint_shift: float = setting(
        0.6,
        "Largest keypoint shift",
        "... or else its keypoints must lie within this many face widths of the track's.",
        gt=0,
    )
    max_size_ratio: float = setting(
        1.3,
        "Largest size change",
        "A face may grow or shrink by at most this factor between two sightings of one track.",
        ge=1,
    )
    gap_after_s: float = setting(
        0.3,
        "Gap",
        "After this many seconds unseen (the person looked away, or left), a face continues the"
        " track only where the track was heading and at the same size (the next two keys).",
        gt=0,
    )
    gap_min_iou: float = setting(
        0.5,
        "Overlap after a gap",
        "Smallest overlap (IoU) with the predicted box that continues a track after a gap.",
        ge=0,
        le=1,
    )
    gap_max_size_ratio: float = setting(
        1.15,
        "Size change after a gap",
        "Largest size factor that continues a track after a gap; someone else stepping into the"
        " same spot usually differs by more.",
        ge=1,
    )
