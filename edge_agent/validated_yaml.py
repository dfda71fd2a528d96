"""YAML files validated into pydantic models, with every problem located as FILE:LINE: key.path.

Shared by the configuration (`edge_agent.config`) and the ad rules (`edge_agent.ads.rules`):

    data, lines = parse_yaml(text, file)          # raises ProblemsError on a syntax error
    try:
        model = Root.model_validate(data)
    except ValidationError as error:
        raise ProblemsError(problems_from_validation(error, Root, data, file, lines))

A syntax error still names the key it happened under, found by replaying the YAML events up to
the error, so every problem carries a file, a line and a key path.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

KeyPath = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a file, located as precisely as it can be."""

    message: str
    file: str | None = None  # the YAML file, or None for an environment override / defaults
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based; YAML syntax errors only
    key_path: str = ""  # "vision.quality.max_yaw_deg", "rules[2].when.days"; "" for the whole file
    env_var: str | None = None  # the environment override that caused it

    @property
    def location(self) -> str:
        if self.env_var is not None:
            return f"environment variable {self.env_var}"
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def __str__(self) -> str:
        key = f" {self.key_path}:" if self.key_path else ""
        return f"{self.location}:{key} {self.message}"


class ProblemsError(ValueError):
    """The file is unusable; `problems` lists every reason, `str()` one per line."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def dotted(path: KeyPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{type(value).__name__} {value!r}"


# --------------------------------------------------------------------------------------------
# Parsing


def parse_yaml(text: str, file: str | None) -> tuple[Any, dict[KeyPath, int]]:
    """The document as plain Python values, and the 1-based line of every key and list item."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:  # the reader checks every character up front
        line = text.count("\n", 0, error.position) + 1
        message = f"YAML error: character {error.character!r} is not allowed in YAML"
        raise ProblemsError([Problem(message, file, line)]) from None
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    walked: set[int] = set()  # nodes an alias reaches again

    def located(message: str, mark: yaml.Mark | None, path: KeyPath = ()) -> Problem:
        line = None if mark is None else mark.line + 1
        column = None if mark is None else mark.column + 1
        return Problem(message, file, line, column, dotted(path))

    def build(node: yaml.Node, path: KeyPath) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in walked:  # walk each node once: an alias bomb is 9**9 walks of 9 nodes
            return loader.construct_object(node, deep=True)
        walked.add(id(node))
        if isinstance(node, yaml.MappingNode):
            loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node, deep=True)
                if isinstance(key, list | dict) or not _hashable(key):
                    problems.append(
                        located("a key must be a plain value", key_node.start_mark, path)
                    )
                    continue
                if key in result:
                    problems.append(
                        located(
                            f"duplicate key (first on line {lines[(*path, key)]})",
                            key_node.start_mark,
                            (*path, key),
                        )
                    )
                    continue
                lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, index)) for index, item in enumerate(node.value)]
        return loader.construct_object(node, deep=True)

    try:
        root = loader.get_single_node()
        data = None if root is None else build(root, ())
    except yaml.MarkedYAMLError as error:
        reason = error.problem or "invalid YAML"
        if error.context:
            reason = f"{reason} ({error.context}"
            if error.context_mark is not None and error.context_mark.line != (
                error.problem_mark.line if error.problem_mark else None
            ):
                reason += f" on line {error.context_mark.line + 1}"
            reason += ")"
        mark = error.problem_mark or error.context_mark
        path = _path_at_error(text)
        raise ProblemsError([located(f"YAML syntax error: {reason}", mark, path)]) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        # Constructors raise plain errors too (a timestamp like 2026-13-45, deep nesting).
        raise ProblemsError([Problem(f"YAML error: {error}", file, 1)]) from None
    finally:
        loader.dispose()
    if problems:
        raise ProblemsError(problems)
    return data, lines


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _path_at_error(text: str) -> KeyPath:
    """The key path the parser was inside when it failed, found by replaying the YAML events
    up to the error with a stack of open mappings (and their current key) and sequences."""
    stack: list[_Open] = []
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            starts = isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent)
            if starts or isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
                if stack:
                    stack[-1].node_begins(event, starts)
                if starts:
                    stack.append(_Open(isinstance(event, yaml.MappingStartEvent)))
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                stack.pop()
                if stack and stack[-1].is_mapping:
                    stack[-1].expect_key = True
    except yaml.YAMLError:
        pass
    path: list[Any] = []
    for container in stack:
        if container.is_mapping and container.key is not None:
            path.append(container.key)
        elif not container.is_mapping and container.index >= 0:
            path.append(container.index)
    return tuple(path)


@dataclass(slots=True)
class _Open:
    """A mapping or sequence the parser is inside of."""

    is_mapping: bool
    key: Any = None
    index: int = -1
    expect_key: bool = True

    def node_begins(self, event: yaml.Event, is_collection: bool) -> None:
        if not self.is_mapping:
            self.index += 1
        elif self.expect_key:
            self.key = event.value if isinstance(event, yaml.ScalarEvent) else None
            self.expect_key = False
        elif not is_collection:
            self.expect_key = True  # a collection value ends with its own end event


# --------------------------------------------------------------------------------------------
# Validation errors


def problems_from_validation(
    error: ValidationError,
    root: type[BaseModel],
    data: Any,
    file: str | None,
    lines: Mapping[KeyPath, int],
    from_env: Mapping[KeyPath, str] | None = None,
) -> list[Problem]:
    """One `Problem` per key path, messages for the same key joined, located by `lines`."""
    from_env = from_env or {}
    merged: dict[KeyPath, list[str]] = {}
    items = [(item, _problem_path(data, item)) for item in error.errors(include_url=False)]
    deeper = {path[:n] for _, path in items for n in range(len(path))}
    for item, path in items:
        if item["type"] == "too_short" and path in deeper:
            continue  # pydantic counts a list short when one of its items failed: noise
        message = _message(item, path, root)
        if message not in merged.setdefault(path, []):
            merged[path].append(message)
    problems = []
    for path, messages in merged.items():
        env_var = next(
            (from_env[path[:n]] for n in range(len(path), 0, -1) if path[:n] in from_env), None
        )
        line = None if env_var is not None else line_of(lines, path)
        problems.append(
            Problem(
                "; ".join(messages),
                None if env_var else file,
                line,
                key_path=dotted(path),
                env_var=env_var,
            )
        )
    return problems


def _problem_path(data: Any, item: Any) -> KeyPath:
    """Where a pydantic error points in the data; a tagged union's bad tag points at its key."""
    path = data_path(data, item["loc"])
    if item["type"] == "union_tag_invalid":
        key = item.get("ctx", {}).get("discriminator", "").strip("'")
        if key and data_path(data, (*path, key)) == (*path, key):
            return (*path, key)
    return path


def line_of(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, or of its nearest ancestor that is in the file."""
    return next((lines[path[:n]] for n in range(len(path), -1, -1) if path[:n] in lines), None)


def data_path(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """The part of a pydantic error location that names keys in the data (drops union tags)."""
    path: list[Any] = []
    node = data
    for index, part in enumerate(loc):
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_mapping or in_list):
            # A tagged union's member name (`yunet` in vision.detector.yunet.model) sits
            # between a mapping and its key: step over it.
            following = loc[index + 1] if index + 1 < len(loc) else None
            if isinstance(node, dict) and following is not None and following in node:
                continue
            break
        node = node[part]
        path.append(part)
    return tuple(path)


def annotation_at(root: type[BaseModel], path: KeyPath) -> Any:
    """The type annotation of the value at `path` in `root` (None where the path leaves the
    models): list items, optional and annotated types are looked through."""
    annotation: Any = root
    for part in path:
        model = _model_in(annotation)
        if isinstance(part, int):
            annotation = _item_type(annotation)
        elif model is not None and part in model.model_fields:
            annotation = model.model_fields[part].annotation
        else:
            return None
        if annotation is None:
            return None
    return annotation


def literal_choices(annotation: Any) -> tuple[Any, ...]:
    choices: list[Any] = []
    for member in flat_types(annotation):
        if typing.get_origin(member) is Literal:
            choices += typing.get_args(member)
    return tuple(choices)


def flat_types(annotation: Any) -> set[Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return set().union(*(flat_types(arg) for arg in typing.get_args(annotation)))
    if origin is typing.Annotated:
        return flat_types(typing.get_args(annotation)[0])
    return {annotation}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    for member in flat_types(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            return member
    return None


def _item_type(annotation: Any) -> Any:
    for member in flat_types(annotation):
        if typing.get_origin(member) in (list, tuple):
            args = [a for a in typing.get_args(member) if a is not Ellipsis]
            return args[0] if args else None
    return None


def _message(item: Any, path: KeyPath, root: type[BaseModel]) -> str:
    kind, value = item["type"], item.get("input")
    if kind == "extra_forbidden":
        owner = _model_in(annotation_at(root, path[:-1])) if path else None
        valid = list(owner.model_fields) if owner is not None else []
        message = f"unknown key {path[-1]!r}" if path else "unknown key"
        close = difflib.get_close_matches(str(path[-1]), valid, n=1, cutoff=0.6) if path else []
        if close:
            return f"{message}; did you mean {close[0]!r}?"
        return f"{message}; valid keys here: {', '.join(valid)}" if valid else message
    message = item["msg"].removeprefix("Value error, ")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"must be a mapping of keys, got {kind_of(value)}"
    if kind == "missing":
        # The key is absent, so `path` stops at its parent: name the key itself.
        return f"required key {item['loc'][-1]!r} is missing"
    if isinstance(value, dict | list | tuple):
        return message
    message = f"{message} (got {value!r})"
    if kind == "string_type" and isinstance(value, bool | int | float):
        # YAML 1.1 turns unquoted yes/no/on/off into booleans and 1e3 into a number.
        message += "; put the text in quotes"
    if kind == "literal_error" and isinstance(value, str):
        # A validator may check a choice the annotation does not show: its error lists them.
        choices = [str(c) for c in literal_choices(annotation_at(root, path))] or re.findall(
            r"'([^']*)'", str(item.get("ctx", {}).get("expected", ""))
        )
        close = difflib.get_close_matches(value, choices, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean {close[0]!r}?"
    return message
