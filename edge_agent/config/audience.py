"""The `audience` section: who counts as a viewer, and the windows counts are sent in."""

from __future__ import annotations

from edge_agent.config.base import ConfigModel, setting


class AudienceConfig(ConfigModel):
    window_s: float = setting(
        60.0,
        "Report window",
        "Length in seconds of one audience report; a person is counted in the window in which"
        " they leave.",
        gt=0,
    )
    min_segment_size: int = setting(
        5,
        "Smallest published segment",
        "Gender x age segments with fewer people than this in a window are folded into 'other'"
        " before publishing, so no small group can be singled out (k-anonymity).",
        ge=1,
    )
    viewer_max_yaw_deg: float = setting(
        30.0,
        "Viewer yaw",
        "A face turned sideways by at most this many degrees counts as looking at the screen.",
        gt=0,
        le=90,
    )
    viewer_max_pitch_deg: float = setting(
        25.0,
        "Viewer pitch",
        "... and tilted up or down by at most this many degrees.",
        gt=0,
        le=90,
    )
    viewer_min_attention_s: float = setting(
        1.0,
        "Viewer attention",
        "Seconds a person must look, in one look, to count as a viewer.",
        ge=0,
    )
    look_break_s: float = setting(
        0.5,
        "Look break",
        "A look survives a break this long (a missed detection, a blink of the head): only a"
        " longer break, beyond one frame interval, ends it.",
        ge=0,
    )
    mix_window_s: float = setting(
        3600.0,
        "Mix window",
        "The gender x age mix is also counted over this longer span (whole report windows) and"
        " folded over it, so that fewer people end in 'other' than in one short window; it rides"
        " on the report that closes the span, and today's totals add up these spans.",
        gt=0,
    )
    fusion_samples: int = setting(
        5,
        "Samples per person",
        "Good face samples after which a person's age and gender estimate is final and their"
        " face is no longer classified.",
        ge=1,
    )
