"""Typed configuration: one YAML file validated into frozen models, with errors a user can act on.

    config = load_config(Path("config.yaml"))      # None: every default
    pipeline = VisionPipeline(config.vision_settings())
    tracker = Tracker(config.tracker_settings())
    telemetry = TelemetryStage(config.telemetry_settings())

Each stage gets its own settings value (from its package's `values`) and never sees this
module; only the wiring (`daemon.py`, `pipeline.py`) and the commands read a `Config`.

Every key is optional; the defaults run on a checkout with the bundled models and the demo
footage. Each field's `description` is its documentation: `render_default_yaml()` prints the
commented `config.yaml` from it and `Config.json_schema()` the JSON Schema.

A bad file raises one `ConfigError` listing every problem, one a line, as
`FILE:LINE: key.path: reason` (YAML syntax errors as `FILE:LINE:COLUMN: reason`).

Environment overrides, applied on top of the file before validation (for secrets and for
one-off changes without editing the file): `EDGE_AGENT__SECTION__KEY=value`, one double
underscore between the parts of the key path, any case, e.g.
`EDGE_AGENT__VISION__THREADS=4` or `EDGE_AGENT__VISION__QUALITY__MAX_YAW_DEG=30`. A value for a
text or path key is taken verbatim (an empty value means null where null is allowed); any other
value is read as YAML (`4`, `0.5`, `true`, `null`, `[13, 20, 35, 55]`). A problem with an
override names the variable instead of a file line.
"""

from edge_agent.config.ads import AdsConfig, WebPlayerConfig
from edge_agent.config.audience import AudienceConfig
from edge_agent.config.base import ConfigError, ConfigProblem
from edge_agent.config.debug import DebugConfig
from edge_agent.config.loading import ENV_PREFIX, load_config
from edge_agent.config.logs import LoggingConfig
from edge_agent.config.model import Config, read_secret
from edge_agent.config.mqtt import HomeAssistantConfig, MqttConfig, MqttTlsConfig
from edge_agent.config.privacy import PrivacyConfig
from edge_agent.config.render import render_default_yaml
from edge_agent.config.source import SourceConfig
from edge_agent.config.state import StateConfig
from edge_agent.config.tracking import TrackingConfig
from edge_agent.config.vision import QualityConfig, VisionConfig

__all__ = [
    "ENV_PREFIX",
    "AdsConfig",
    "AudienceConfig",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DebugConfig",
    "HomeAssistantConfig",
    "LoggingConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "PrivacyConfig",
    "QualityConfig",
    "SourceConfig",
    "StateConfig",
    "TrackingConfig",
    "VisionConfig",
    "WebPlayerConfig",
    "load_config",
    "read_secret",
    "render_default_yaml",
]
