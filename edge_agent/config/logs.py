"""The `logging` section: what the daemon logs, and how."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from edge_agent.config.base import ConfigModel, setting

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["text", "json"]


class LoggingConfig(ConfigModel):
    level: LogLevel = setting(
        "INFO", "Log level", "Least severe messages written to the log (any case)."
    )
    format: LogFormat = setting(
        "text",
        "Log format",
        "text: one readable line per message; json: one JSON object per line (for log shippers).",
    )
    stats_interval_s: float = setting(
        30.0,
        "Statistics interval",
        "Seconds between log lines with pipeline statistics (frames, skipped frames, timings).",
        gt=0,
    )

    @field_validator("level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
