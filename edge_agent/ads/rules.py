"""The rule table (`ads/rules.yaml`): what the marketer writes, validated into a `RuleTable`.

    table = load_rules(Path("ads/rules.yaml"))     # raises RulesError listing every problem

Every problem is reported as `FILE:LINE: key.path: reason`, pydantic's schema problems and the
cross-checks pydantic cannot see alike (a rule naming a creative that does not exist, a
duplicate id, a missing media file). The file's schema itself is in `ads/rules_schema.py`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError

from edge_agent.ads.rules_schema import (
    IMAGE_SUFFIXES,
    MAX_CREATIVES,
    MAX_PLAYLIST,
    MAX_RULES,
    VIDEO_SUFFIXES,
    CreativeSpec,
    GroupPolicy,
    MinorsPolicy,
    Rule,
    RulesFile,
)
from edge_agent.ads.values import Creative, MediaKind
from edge_agent.segments import DEFAULT_BRACKETS, Brackets
from edge_agent.validated_yaml import (
    MAX_YAML_BYTES,
    KeyPath,
    Problem,
    ProblemsError,
    dotted,
    kind_of,
    line_of,
    parse_yaml,
    problems_from_validation,
    read_user_text,
)

ModelT = TypeVar("ModelT", bound=BaseModel)


class RulesError(ProblemsError):
    """The rules file is unusable; `problems` lists every reason, `str()` one per line."""


# The key path of a problem with the document as a whole (not a mapping, a syntax error
# before the first key), so that every problem names a key.
TOP_LEVEL = "(top level)"


def _keyed(problems: Iterable[Problem]) -> list[Problem]:
    return [
        p if p.key_path else dataclasses.replace(p, key_path=TOP_LEVEL, line=p.line or 1)
        for p in problems
    ]


# --------------------------------------------------------------------------------------------
# The loaded table


@dataclass(frozen=True, slots=True)
class RuleTable:
    """A validated rules file with its media resolved: what the decision works on."""

    source: str  # the file it came from
    version_id: str  # first 12 hex digits of the file's sha256: which rules made a decision
    timezone: ZoneInfo | None
    group_policy: GroupPolicy
    default_min_play_s: float
    minors: MinorsPolicy
    creatives: dict[str, Creative]
    default_playlist: tuple[Creative, ...]
    neutral_playlist: tuple[Creative, ...]
    rules: tuple[Rule, ...]
    brackets: Brackets  # the age brackets `brackets:` in a rule may name

    def creatives_of(self, rule: Rule) -> tuple[Creative, ...]:
        return tuple(self.creatives[creative_id] for creative_id in rule.creatives)


def load_rules(path: str | os.PathLike[str], brackets: Brackets = DEFAULT_BRACKETS) -> RuleTable:
    """Read and validate a rules file; raises `RulesError` listing every problem.

    `brackets` are the age brackets the config defines: their labels are what `brackets:` in a
    rule may name. The file must be a regular file of at most `MAX_YAML_BYTES`.
    """
    return load_rules_with_bytes(path, brackets)[0]


def load_rules_with_bytes(
    path: str | os.PathLike[str], brackets: Brackets = DEFAULT_BRACKETS
) -> tuple[RuleTable, bytes]:
    """`load_rules`, and the exact bytes the table was made from (what a last good copy keeps:
    the file may change again while it is being checked)."""
    file = os.fspath(path)
    try:
        raw, text = read_user_text(file, MAX_YAML_BYTES, "rules file")
    except ProblemsError as error:
        raise RulesError(_keyed(error.problems)) from None
    table = parse_rules(text, file, brackets, version_id=hashlib.sha256(raw).hexdigest()[:12])
    return table, raw


def parse_rules(
    text: str,
    file: str,
    brackets: Brackets = DEFAULT_BRACKETS,
    *,
    version_id: str | None = None,
) -> RuleTable:
    """Validate rules text that came from `file` (media paths are relative to its folder)."""
    try:
        data, lines = parse_yaml(text, file)
    except ProblemsError as error:
        raise RulesError(_keyed(error.problems)) from None
    if not isinstance(data, dict):
        raise RulesError(
            [
                Problem(
                    "the file must be a mapping with default_playlist, creatives and rules,"
                    f" got {kind_of(data)}",
                    file,
                    line_of(lines, ()) or 1,
                    key_path=TOP_LEVEL,
                )
            ]
        )
    checker = _CrossCheck(file, lines, brackets)
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as error:
        problems = problems_from_validation(error, RulesFile, data, file, lines)
        # The parts the schema accepts are cross-checked too (media files, ids), so that
        # every problem is reported at once rather than one round of fixes at a time.
        checker.check_parts(data)
        raise RulesError(_keyed(_by_line(problems + checker.problems))) from None
    table = checker.table(spec, version_id or hashlib.sha256(text.encode()).hexdigest()[:12])
    if checker.problems:
        raise RulesError(_by_line(checker.problems))
    assert table is not None
    return table


def _by_line(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.line or 0)


class _CrossCheck:
    """What the schema cannot see: ids that must exist or be unique, media files, brackets."""

    def __init__(self, file: str, lines: dict[KeyPath, int], brackets: Brackets) -> None:
        self.file = file
        self.lines = lines
        self.brackets = brackets
        # The folder the file is named in (not where a symlinked file points): media stay
        # found when the file is replaced by a link elsewhere and the last good copy is used.
        self.folder = Path(os.path.abspath(file)).parent.resolve()
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(
            Problem(message, self.file, line_of(self.lines, path) or 1, key_path=dotted(path))
        )

    def table(self, spec: RulesFile, version_id: str) -> RuleTable | None:
        creatives = self.creatives(list(enumerate(spec.creatives)))
        known = {c.id for c in spec.creatives}
        self.refs(("default_playlist",), spec.default_playlist, known)
        if spec.minors.playlist is not None:
            self.refs(("minors", "playlist"), spec.minors.playlist, known)
        self.rules(list(enumerate(spec.rules)), known)
        if self.problems:
            return None
        neutral = spec.minors.playlist or spec.default_playlist
        return RuleTable(
            source=self.file,
            version_id=version_id,
            timezone=ZoneInfo(spec.timezone) if spec.timezone else None,
            group_policy=spec.group_policy,
            default_min_play_s=spec.default_min_play_s,
            minors=spec.minors,
            creatives=creatives,
            default_playlist=tuple(creatives[c] for c in spec.default_playlist),
            neutral_playlist=tuple(creatives[c] for c in neutral),
            rules=spec.rules,
            brackets=self.brackets,
        )

    def check_parts(self, data: dict[Any, Any]) -> None:
        """Cross-check a file that failed the schema: each creative and rule that is valid
        on its own, and every playlist entry that names an id."""
        raw_creatives = data.get("creatives")
        known: set[str] | None = None
        if isinstance(raw_creatives, list) and len(raw_creatives) <= MAX_CREATIVES:
            known = {c["id"] for c in raw_creatives if isinstance(c, dict) and _text(c.get("id"))}
            self.creatives(_valid_items(CreativeSpec, raw_creatives))
        raw_rules = data.get("rules")
        if isinstance(raw_rules, list) and len(raw_rules) <= MAX_RULES:
            self.rules(_valid_items(Rule, raw_rules), known)
        if not known:
            return  # no creatives to check names against: every name would be "unknown"
        minors = data.get("minors")
        playlists = [("default_playlist",), ("minors", "playlist")]
        for path, ids in zip(
            playlists,
            (data.get("default_playlist"), minors.get("playlist") if _is_map(minors) else None),
            strict=True,
        ):
            if isinstance(ids, list) and len(ids) <= MAX_PLAYLIST:
                self.refs(path, tuple(i if _text(i) else None for i in ids), known)

    def creatives(self, items: list[tuple[int, CreativeSpec]]) -> dict[str, Creative]:
        creatives: dict[str, Creative] = {}
        seen: set[str] = set()
        for index, creative_spec in items:
            path = ("creatives", index)
            if creative_spec.id in seen:
                self.problem((*path, "id"), f"duplicate creative id {creative_spec.id!r}")
                continue
            seen.add(creative_spec.id)
            creative = self.creative(creative_spec, path)
            if creative is not None:
                creatives[creative_spec.id] = creative
        return creatives

    def rules(self, items: list[tuple[int, Rule]], known: set[str] | None) -> None:
        seen_rules: set[str] = set()
        for index, rule in items:
            path = ("rules", index)
            if rule.id in seen_rules:
                self.problem((*path, "id"), f"duplicate rule id {rule.id!r}")
            seen_rules.add(rule.id)
            if known:
                self.refs((*path, "creatives"), rule.creatives, known)
            for bracket_index, bracket in enumerate(rule.audience.brackets or ()):
                if bracket not in self.brackets.labels:
                    self.problem(
                        (*path, "audience", "brackets", bracket_index),
                        f"unknown age bracket {bracket!r}; the config's brackets are"
                        f" {', '.join(self.brackets.labels)}",
                    )

    def refs(self, path: KeyPath, ids: tuple[str | None, ...], known: set[str]) -> None:
        for index, creative_id in enumerate(ids):
            if creative_id is not None and creative_id not in known:
                self.problem(
                    (*path, index),
                    f"no creative has the id {creative_id!r}; known: {', '.join(sorted(known))}",
                )

    def creative(self, spec: CreativeSpec, path: KeyPath) -> Creative | None:
        try:
            media = (self.folder / spec.file).resolve()
            present = media.is_file()
        except (OSError, ValueError) as error:  # a NUL in the name, a name too long for the OS
            self.problem((*path, "file"), f"not a usable file name: {error}")
            return None
        suffix = media.suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            kind = MediaKind.IMAGE
        elif suffix in VIDEO_SUFFIXES:
            kind = MediaKind.VIDEO
        else:
            known = ", ".join(sorted(IMAGE_SUFFIXES | VIDEO_SUFFIXES))
            self.problem((*path, "file"), f"not an image or video file name ({known})")
            return None
        if not present:
            self.problem((*path, "file"), f"no such file: {media}")
            return None
        if kind is MediaKind.IMAGE:
            if spec.duration_s is None:
                self.problem((*path, "duration_s"), "required for an image: seconds it shows")
                return None
            if not _image_readable(media):
                self.problem((*path, "file"), f"not a readable image: {media}")
                return None
            return Creative(spec.id, media, kind, spec.duration_s)
        length = _video_length_s(media)
        if length is None:
            self.problem((*path, "file"), f"not a readable video: {media}")
            return None
        return Creative(spec.id, media, kind, spec.duration_s or length)


def _valid_items(model: type[ModelT], items: list[Any]) -> list[tuple[int, ModelT]]:
    valid = []
    for index, item in enumerate(items):
        try:
            valid.append((index, model.model_validate(item)))
        except ValidationError:
            continue  # the schema's problems already name it
    return valid


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _is_map(value: Any) -> bool:
    return isinstance(value, dict)


def _image_readable(path: Path) -> bool:
    import cv2

    return bool(cv2.haveImageReader(str(path)))


_video_lengths: dict[tuple[str, int, int], float | None] = {}


def _video_length_s(path: Path) -> float | None:
    """Seconds of video, read once per file version (reloads do not reopen every video)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _video_lengths:
        import cv2

        capture = cv2.VideoCapture(str(path))
        try:
            frames = capture.get(cv2.CAP_PROP_FRAME_COUNT)
            fps = capture.get(cv2.CAP_PROP_FPS)
            ok = capture.isOpened() and frames > 0 and fps > 0
            _video_lengths[key] = frames / fps if ok else None
        finally:
            capture.release()
    return _video_lengths[key]
