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
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from edge_agent.ads.rules_schema import (
    IMAGE_SUFFIXES,
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
    KeyPath,
    Problem,
    ProblemsError,
    dotted,
    kind_of,
    line_of,
    parse_yaml,
    problems_from_validation,
)


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
    rule may name.
    """
    file = os.fspath(path)
    try:
        raw = Path(file).read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulesError(
            [Problem(f"cannot read the rules file: {error}", file, 1, key_path=TOP_LEVEL)]
        ) from None
    return parse_rules(text, file, brackets, version_id=hashlib.sha256(raw).hexdigest()[:12])


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
    try:
        spec = RulesFile.model_validate(data)
    except ValidationError as error:
        problems = problems_from_validation(error, RulesFile, data, file, lines)
        raise RulesError(_keyed(sorted(problems, key=lambda p: p.line or 0))) from None
    checker = _CrossCheck(spec, file, lines, brackets)
    table = checker.table(version_id or hashlib.sha256(text.encode()).hexdigest()[:12])
    if checker.problems:
        raise RulesError(sorted(checker.problems, key=lambda p: p.line or 0))
    assert table is not None
    return table


class _CrossCheck:
    """What the schema cannot see: ids that must exist or be unique, media files, brackets."""

    def __init__(
        self, spec: RulesFile, file: str, lines: dict[KeyPath, int], brackets: Brackets
    ) -> None:
        self.spec = spec
        self.file = file
        self.lines = lines
        self.brackets = brackets
        self.folder = Path(file).resolve().parent
        self.problems: list[Problem] = []

    def problem(self, path: KeyPath, message: str) -> None:
        self.problems.append(
            Problem(message, self.file, line_of(self.lines, path) or 1, key_path=dotted(path))
        )

    def table(self, version_id: str) -> RuleTable | None:
        spec = self.spec
        creatives: dict[str, Creative] = {}
        for index, creative_spec in enumerate(spec.creatives):
            path = ("creatives", index)
            if creative_spec.id in creatives or any(
                c.id == creative_spec.id for c in spec.creatives[:index]
            ):
                self.problem((*path, "id"), f"duplicate creative id {creative_spec.id!r}")
                continue
            creative = self.creative(creative_spec, path)
            if creative is not None:
                creatives[creative_spec.id] = creative
        known = {c.id for c in spec.creatives}
        self.refs(("default_playlist",), spec.default_playlist, known)
        if spec.minors.playlist is not None:
            self.refs(("minors", "playlist"), spec.minors.playlist, known)
        seen_rules: set[str] = set()
        for index, rule in enumerate(spec.rules):
            path = ("rules", index)
            if rule.id in seen_rules:
                self.problem((*path, "id"), f"duplicate rule id {rule.id!r}")
            seen_rules.add(rule.id)
            self.refs((*path, "creatives"), rule.creatives, known)
            for bracket_index, bracket in enumerate(rule.audience.brackets or ()):
                if bracket not in self.brackets.labels:
                    self.problem(
                        (*path, "audience", "brackets", bracket_index),
                        f"unknown age bracket {bracket!r}; the config's brackets are"
                        f" {', '.join(self.brackets.labels)}",
                    )
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

    def refs(self, path: KeyPath, ids: tuple[str, ...], known: set[str]) -> None:
        for index, creative_id in enumerate(ids):
            if creative_id not in known:
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
