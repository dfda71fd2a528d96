"""Reading a config file: YAML with line numbers, environment overrides, one error listing
every problem as `FILE:LINE: key.path: reason` (or the environment variable to blame)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edge_agent.config.base import ConfigError, ConfigProblem
from edge_agent.config.model import Config
from edge_agent.validated_yaml import (
    MAX_YAML_BYTES,
    KeyPath,
    ProblemsError,
    annotation_at,
    dotted,
    flat_types,
    kind_of,
    parse_yaml,
    problems_from_validation,
    read_user_text,
)

ENV_PREFIX = "EDGE_AGENT__"
_SEP = "__"


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read, override from the environment (`os.environ` unless given) and validate.

    `path=None` means no file: every default, plus environment overrides. An empty file is the
    same as no file. Raises `ConfigError` listing every problem.
    """
    file = None if path is None else os.fspath(path)
    data: Any = {}
    lines: dict[KeyPath, int] = {}
    if file is not None:
        try:
            _, text = read_user_text(file, MAX_YAML_BYTES, "config file")
            # Aliases are refused past a bound here, so that the copy the environment
            # overrides are merged into (`_copy`) can never expand a YAML bomb.
            data, lines = parse_yaml(text, file)
        except ProblemsError as error:
            raise ConfigError(error.problems) from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(
                [
                    ConfigProblem(
                        "the top level must be a mapping of sections"
                        f" ({', '.join(Config.model_fields)}), got {kind_of(data)}",
                        file,
                        line=lines.get((), 1),
                    )
                ]
            )
    data, from_env, problems = _apply_environment(data, os.environ if environ is None else environ)
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        problems += problems_from_validation(error, Config, data, file, lines, from_env)
    if problems:
        raise ConfigError(_sorted(problems))
    return config


def _apply_environment(
    data: dict[Any, Any], environ: Mapping[str, str]
) -> tuple[dict[Any, Any], dict[KeyPath, str], list[ConfigProblem]]:
    """Merge EDGE_AGENT__A__B=value overrides into a copy of the data."""
    overrides = sorted(
        (name, value) for name, value in environ.items() if name.upper().startswith(ENV_PREFIX)
    )
    if not overrides:
        return data, {}, []
    merged = _copy(data)
    from_env: dict[KeyPath, str] = {}
    problems: list[ConfigProblem] = []
    for name, raw in overrides:
        parts = name[len(ENV_PREFIX) :].lower().split(_SEP)
        if not all(parts):
            problems.append(
                ConfigProblem(
                    f"expected {ENV_PREFIX}SECTION__KEY, with one double underscore between"
                    " the parts of the key path",
                    env_var=name,
                )
            )
            continue
        path = tuple(parts)
        blocked = _set(merged, path, _env_value(path, raw))
        if blocked is None:
            from_env[path] = name
        else:
            message = f"cannot set {dotted(path)}: {dotted(blocked)} is not a section"
            problems.append(ConfigProblem(message, env_var=name))
    return merged, from_env, problems


def _set(data: dict[Any, Any], path: KeyPath, value: Any) -> KeyPath | None:
    """Set data[a][b]... = value, making missing sections; else the path of what is in the way."""
    node = data
    for depth, part in enumerate(path[:-1], start=1):
        if node.get(part) is None:
            node[part] = {}
        if not isinstance(node[part], dict):
            return path[:depth]
        node = node[part]
    node[path[-1]] = value
    return None


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _env_value(path: KeyPath, raw: str) -> Any:
    annotation = annotation_at(Config, path)
    if annotation is not None and _takes_text(annotation):
        return None if raw == "" and _takes_none(annotation) else raw
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw  # validation says what is wrong with it, naming the variable


def _takes_text(annotation: Any) -> bool:
    return bool(flat_types(annotation) & {str, Path})


def _takes_none(annotation: Any) -> bool:
    return type(None) in flat_types(annotation)


def _sorted(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    # File problems in file order, then environment ones; stable within each.
    return sorted(
        problems,
        key=lambda p: (p.env_var is not None, p.line if p.line is not None else 0, p.env_var or ""),
    )
