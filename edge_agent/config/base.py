"""What every section shares: a frozen model that refuses unknown keys, the error type, and
the helpers that give each setting its title and documentation."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.validated_yaml import Problem, ProblemsError

# A problem with the configuration, located as precisely as it can be (file, line, key path,
# or the environment variable that caused it).
ConfigProblem = Problem


class ConfigError(ProblemsError):
    """The configuration is unusable; `problems` lists every reason, `str()` one per line."""


# --------------------------------------------------------------------------------------------
# Models


def setting(default: Any, title: str, description: str, **constraints: Any) -> Any:
    return Field(default, title=title, description=description, **constraints)


def section(model: type[BaseModel], title: str, description: str) -> Any:
    return Field(default_factory=model, title=title, description=description)


class ConfigModel(BaseModel):
    """Base of every section: frozen, unknown keys are errors, an empty section means defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _empty_is_default(cls, data: Any) -> Any:
        # `vision:` with nothing under it reads as null in YAML: take it as "all defaults".
        return {} if data is None else data
