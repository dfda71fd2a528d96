"""YAML files validated into pydantic models, with every problem located as FILE:LINE: key.path.

Shared by the configuration (`edge_agent.config`) and the ad rules (`edge_agent.ads.rules`):

    data, lines = parse_yaml(text, file)          # raises ProblemsError on a syntax error
    try:
        model = Root.model_validate(data)
    except ValidationError as error:
        raise ProblemsError(problems_from_validation(error, Root, data, file, lines))

A syntax error still names the key it happened under, found by replaying the YAML events up to
the error, so every problem carries a file, a line and a key path.

Every file a user writes is read through `read_user_file` / `read_user_text` first: only a
regular file, at most `limit` bytes (at most limit + 1 are ever read, so /dev/zero or a FIFO
cannot grow memory or block), and UTF-8 with the line of the first bad byte named. YAML
bombs (aliases that expand past `MAX_EXPANDED_NODES` values), self-referring anchors, nesting
past `MAX_DEPTH` and every constructor failure (`!!bool maybe`, `!!timestamp x`, unknown
tags, a bad `<<` merge) become a `ProblemsError` with the file and line.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

KeyPath = tuple[Any, ...]

# The most a rules or config file may hold; a hand-written one is a few kilobytes.
MAX_YAML_BYTES = 1024 * 1024
# The most a secret's file (`mqtt.password_file`) may hold.
MAX_SECRET_BYTES = 4096
# Values a document may expand to through aliases (each alias counts what it repeats): far
# more than any real file, far less than a "billion laughs" bomb.
MAX_EXPANDED_NODES = 100_000
# Nesting of mappings and lists; deeper would exhaust Python's stack in the constructor.
MAX_DEPTH = 64


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
# Reading


def read_user_file(path: str | os.PathLike[str], limit: int, what: str) -> bytes:
    """The bytes of a file a user wrote; `ProblemsError` (naming the file) unless it is a
    regular file of at most `limit` bytes. Never blocks on a FIFO, never reads more than
    limit + 1 bytes (a file may grow between the size check and the read)."""
    file = os.fspath(path)

    def refused(reason: str) -> ProblemsError:
        return ProblemsError([Problem(f"cannot read the {what}: {reason}", file)])

    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise refused(error.strerror or str(error)) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise refused(f"it is {_file_kind(info.st_mode)}, not a regular file")
        if info.st_size > limit:
            raise refused(f"{info.st_size:,} bytes, over the limit of {limit:,}")
        chunks: list[bytes] = []
        remaining = limit + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as error:
        raise refused(error.strerror or str(error)) from None
    finally:
        os.close(descriptor)
    data = b"".join(chunks)
    if len(data) > limit:
        raise refused(f"over the limit of {limit:,} bytes")
    return data


def _file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a named pipe (FIFO)",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((name for test, name in kinds.items() if test(mode)), "a special file")


def decode_utf8(raw: bytes, file: str | None) -> str:
    """`raw` as text; `ProblemsError` naming the line and column of the first byte that is
    not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        column = error.start - (raw.rfind(b"\n", 0, error.start) + 1) + 1
        byte = raw[error.start : error.start + 1].hex()
        message = f"not UTF-8 text: byte 0x{byte} ({error.reason}); save the file as UTF-8"
        raise ProblemsError([Problem(message, file, line, column)]) from None


def read_user_text(path: str | os.PathLike[str], limit: int, what: str) -> tuple[bytes, str]:
    """`read_user_file`, then `decode_utf8`: the raw bytes and their text."""
    raw = read_user_file(path, limit, what)
    return raw, decode_utf8(raw, os.fspath(path))


# --------------------------------------------------------------------------------------------
# Parsing


def parse_yaml(text: str, file: str | None) -> tuple[Any, dict[KeyPath, int]]:
    """The document as plain Python values, and the 1-based line of every key and list item."""
    try:
        loader = _BoundedLoader(text)
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

    def construct(node: yaml.Node, path: KeyPath) -> Any:
        # A tag's constructor may raise anything: KeyError for `!!bool maybe`,
        # AttributeError for `!!timestamp x`, ValueError, OverflowError, ConstructorError.
        try:
            return loader.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as error:
            reason = error.problem or error.context or "invalid value"
            problems.append(located(f"YAML error: {reason}", node.start_mark, path))
        except Exception as error:  # PyYAML constructors raise any kind (see above)
            problems.append(located(_bad_value(node, error), node.start_mark, path))
        return None

    def build(node: yaml.Node, path: KeyPath) -> Any:
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in walked:  # walk each node once: an alias bomb is 9**9 walks of 9 nodes
            return construct(node, path)
        walked.add(id(node))
        if isinstance(node, yaml.CollectionNode) and node.tag not in _PLAIN_COLLECTION_TAGS:
            return construct(node, path)  # `!!set`, `!!omap`, unknown tags: their constructor
        if isinstance(node, yaml.MappingNode):
            try:
                loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
            except yaml.MarkedYAMLError as error:
                reason = error.problem or "invalid merge key"
                # The error's own mark is where the merged value was defined: name the `<<`.
                merge_keys = [k for k, _ in node.value if k.tag == "tag:yaml.org,2002:merge"]
                mark = (merge_keys[0] if merge_keys else node).start_mark
                problems.append(located(f"YAML error: {reason}", mark, path))
                return None
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = construct(key_node, path)
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
        return construct(node, path)

    try:
        root = loader.get_single_node()
        if root is not None:
            _measure(root)
        data = None if root is None else build(root, ())
    except _Refused as refused:
        raise ProblemsError([located(refused.reason, refused.mark)]) from None
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
        path = _path_at_error(text, mark)
        raise ProblemsError([located(f"YAML syntax error: {reason}", mark, path)]) from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        # Anything the checks above missed still names a file and the reader's line.
        mark = loader.get_mark()
        raise ProblemsError([located(f"YAML error: {error}", mark)]) from None
    finally:
        loader.dispose()
    if problems:
        raise ProblemsError(problems)
    return data, lines


_PLAIN_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


def _bad_value(node: yaml.Node, error: Exception) -> str:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    if isinstance(node, yaml.ScalarNode):
        return f"{node.value!r} is not a valid {tag} value"
    return f"cannot build this {tag} value: {type(error).__name__}: {error}"


class _BoundedLoader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than `MAX_DEPTH` while it composes (the
    composer recurses once per level: a file of 100,000 `[` would exhaust the stack)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Refused(Exception):
    def __init__(self, reason: str, mark: yaml.Mark) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mark = mark


def _measure(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past `MAX_EXPANDED_NODES` values or
    `MAX_DEPTH` levels, or make it contain itself, before anything walks the expansion."""
    measured: dict[int, tuple[int, int]] = {}  # node -> (values it expands to, its height)
    open_nodes: set[int] = set()

    repeated = False  # whether an alias has repeated a value yet

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        nonlocal repeated
        known = measured.get(id(node))
        repeated = repeated or (known is not None and known[0] > 1)
        if known is None:
            if id(node) in open_nodes:
                raise _Refused(
                    "YAML error: an alias refers to a value it is inside of", node.start_mark
                )
            if depth > MAX_DEPTH:
                raise _Refused(
                    f"YAML error: nested more than {MAX_DEPTH} levels deep (through aliases)",
                    node.start_mark,
                )
            open_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                children = [child for pair in node.value for child in pair]
            elif isinstance(node, yaml.SequenceNode):
                children = list(node.value)
            else:
                children = []
            total, height = 1, 0
            for child in children:
                child_total, child_height = measure(child, depth + 1)
                total += child_total
                height = max(height, child_height + 1)
                if total > MAX_EXPANDED_NODES:
                    reason = (
                        f"the aliases here expand to more than {MAX_EXPANDED_NODES:,} values"
                        " (a YAML bomb?)"
                        if repeated
                        else f"more than {MAX_EXPANDED_NODES:,} keys and values from here on,"
                        " the limit for one file"
                    )
                    raise _Refused(f"YAML error: {reason}", node.start_mark)
            open_nodes.discard(id(node))
            known = measured[id(node)] = (total, height)
        if depth + known[1] > MAX_DEPTH:
            raise _Refused(
                f"YAML error: nested more than {MAX_DEPTH} levels deep (through aliases)",
                node.start_mark,
            )
        return known

    measure(root, 1)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _path_at_error(text: str, mark: yaml.Mark | None) -> KeyPath:
    """The key path the parser was inside when it failed, found by replaying the YAML events
    up to the error with a stack of open mappings (and their current key) and sequences."""
    stack: list[_Open] = []
    stop_at = len(text) if mark is None else mark.index
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if event.start_mark.index >= stop_at or len(stack) > MAX_DEPTH:
                break  # the rest is after the error (and may be slow to scan)
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


# A value quoted in an error is cut to this many characters: a 70,000-character topic would
# otherwise fill a terminal or a journal line with itself.
_SHOWN_CHARS = 80


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) <= _SHOWN_CHARS:
        return text
    return f"{text[:_SHOWN_CHARS]}... ({len(text):,} characters)"


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
    message = f"{message} (got {_shown(value)})"
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
