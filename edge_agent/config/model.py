"""The whole configuration, and the settings value each stage gets from it.

A stage never sees a `Config`: the wiring calls `vision_settings()`, `tracker_settings()`,
`fusion_settings()`, `audience_settings()`, `source_settings()`, `ads_settings()` or
`telemetry_settings()` and hands the stage the value from that stage's own `values` module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edge_agent.ads.values import AdsSettings
from edge_agent.audience.values import AudienceSettings, FusionSettings, TrackerSettings
from edge_agent.config.ads import AdsConfig
from edge_agent.config.audience import AudienceConfig
from edge_agent.config.base import ConfigModel, section
from edge_agent.config.debug import DebugConfig
from edge_agent.config.logs import LoggingConfig
from edge_agent.config.mqtt import MqttConfig
from edge_agent.config.privacy import PrivacyConfig
from edge_agent.config.source import SourceConfig
from edge_agent.config.state import LAST_GOOD_RULES_FILE, StateConfig
from edge_agent.config.tracking import TrackingConfig
from edge_agent.config.vision import VisionConfig
from edge_agent.installed import default_models_dir
from edge_agent.sources.values import SourceSettings
from edge_agent.telemetry.values import (
    LinkSettings,
    TelemetrySettings,
    TlsSettings,
    device_id_from_hostname,
)
from edge_agent.validated_yaml import MAX_SECRET_BYTES, ProblemsError, read_user_text
from edge_agent.vision.values import AnalyzerSettings, VisionSettings


class Config(ConfigModel):
    """The whole configuration; every section optional."""

    source: SourceConfig = section(SourceConfig, "Source", "The camera, stream or file.")
    vision: VisionConfig = section(
        VisionConfig, "Vision", "Face detection and age/gender estimation."
    )
    tracking: TrackingConfig = section(
        TrackingConfig, "Tracking", "Following each face from frame to frame."
    )
    audience: AudienceConfig = section(
        AudienceConfig, "Audience", "Who counts as a viewer, and the windows counts are sent in."
    )
    ads: AdsConfig = section(AdsConfig, "Ads", "Which ad plays: rules, player, reloads.")
    state: StateConfig = section(StateConfig, "State", "Files kept between runs.")
    mqtt: MqttConfig = section(
        MqttConfig, "MQTT", "Telemetry: where the anonymous counts and play events go."
    )
    logging: LoggingConfig = section(LoggingConfig, "Logging", "What the daemon logs.")
    privacy: PrivacyConfig = section(
        PrivacyConfig,
        "Privacy notice",
        "Who is responsible for this display, for the sign `edge-agent notice` prints.",
    )
    debug: DebugConfig = section(
        DebugConfig, "Debug", "Debugging aids; all off by default. Never enable them in a store."
    )

    def source_settings(self) -> SourceSettings:
        return SourceSettings(**self.source.model_dump())

    def vision_settings(self) -> VisionSettings:
        vision, quality = self.vision, self.vision.quality
        return VisionSettings(
            models_dir=vision.models_dir or default_models_dir(),
            detector=vision.detector_settings(),
            full_scan_every=vision.full_scan_every,
            motion_scan=vision.motion_scan,
            whole_frame_every_s=vision.whole_frame_every_s,
            precision=vision.precision,
            num_threads=vision.threads,
            delegate=vision.delegate,
            analyzer=AnalyzerSettings(
                min_face_px=quality.min_face_px,
                max_yaw_deg=quality.max_yaw_deg,
                max_pitch_deg=quality.max_pitch_deg,
                min_sharpness=quality.min_sharpness,
                gender_margin=quality.gender_margin,
                max_age_spread_years=quality.max_age_spread_years,
                brackets=vision.brackets,
            ),
        )

    def tracker_settings(self) -> TrackerSettings:
        return TrackerSettings(**self.tracking.model_dump())

    def fusion_settings(self) -> FusionSettings:
        return FusionSettings(
            samples_needed=self.audience.fusion_samples,
            gender_margin=self.vision.quality.gender_margin,
            brackets=self.vision.brackets,
        )

    def audience_settings(self) -> AudienceSettings:
        return AudienceSettings(**self.audience.model_dump(exclude={"fusion_samples"}))

    def ads_settings(self) -> AdsSettings:
        ads = self.ads
        return AdsSettings(
            rules=ads.rules,
            last_good=self.state.dir / LAST_GOOD_RULES_FILE,
            brackets=self.vision.brackets,
            player=ads.player,
            web_host=ads.web.host,
            web_port=ads.web.port,
            min_segment_size=self.audience.min_segment_size,
            reload_check_s=ads.reload_check_s,
        )

    def telemetry_settings(self) -> TelemetrySettings:
        """ValueError when `mqtt.password_file` cannot be read."""
        mqtt, discovery = self.mqtt, self.mqtt.homeassistant
        device = mqtt.device or device_id_from_hostname()
        tls = mqtt.tls
        link = LinkSettings(
            host=mqtt.host,
            port=mqtt.port,
            client_id=mqtt.client_id or f"edge-agent-{mqtt.site}-{device}",
            username=mqtt.username,
            password=read_secret(mqtt.password, mqtt.password_file, "mqtt.password_file"),
            tls=TlsSettings(tls.ca_file, tls.cert_file, tls.key_file, tls.verify_hostname)
            if tls.enabled
            else None,
            keepalive_s=mqtt.keepalive_s,
            reconnect_min_s=mqtt.reconnect_min_s,
            reconnect_max_s=mqtt.reconnect_max_s,
        )
        return TelemetrySettings(
            link=link,
            state_dir=self.state.dir,
            site=mqtt.site,
            device=device,
            base_topic=mqtt.base_topic,
            outbox_max_messages=mqtt.outbox_max_messages,
            outbox_max_bytes=round(mqtt.outbox_max_mb * 1024 * 1024),
            current_min_interval_s=mqtt.current_min_interval_s,
            discovery=discovery.discovery,
            discovery_prefix=discovery.prefix,
            device_name=discovery.device_name,
            min_segment_size=self.audience.min_segment_size,
            window_s=self.audience.window_s,
            controller=self.privacy.controller,
            contact=self.privacy.contact,
            brackets=self.vision.brackets,
        )

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON Schema of the config file (titles, descriptions, defaults, ranges)."""
        return cls.model_json_schema()


def read_secret(value: str | None, file: Path | None, file_key: str) -> str | None:
    """A secret given inline (`value`, e.g. from the environment) or in a file of its own
    (`file`, e.g. a systemd credential; its line end is not part of it). The value wins.
    ValueError naming `file_key` when the file cannot be read."""
    if value is not None or file is None:
        return value
    try:  # bounded: /dev/zero or a FIFO named here must not grow memory or block
        _, text = read_user_text(file, MAX_SECRET_BYTES, "password file")
    except ProblemsError as error:
        reason = error.problems[0].message.removeprefix("cannot read the password file: ")
        raise ValueError(f"{file_key}: cannot read {file}: {reason}") from None
    return text.strip("\r\n")
