"""Property-based fuzz of the rules file through the hot reload.

Acceptance: 1,000 mutated rule files, 0 crashes, every bad one rejected with file/line/key,
the last good rules active throughout. Each example writes a mutation of the repository's
`ads/rules.yaml` over the watched file, polls one long-lived `RulesWatcher` and ticks one
long-lived `AdScheduler`, as the daemon does after a marketer's edit.

    .venv/bin/python -m pytest tests/ads/test_rules_fuzz.py -q -s     # prints the tally
    EDGE_AGENT_FUZZ_REPORT=fuzz.json ...                           # and writes it as JSON
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import signal
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.rules import (
    TOP_LEVEL,
    RulesError,
    RuleTable,
    load_rules,
    parse_rules,
)
from edge_agent.ads.rules_schema import IMAGE_SUFFIXES
from edge_agent.ads.scheduler import AdScheduler
from tests.support.paths import REPO

EXAMPLE_RULES = REPO / "ads" / "rules.yaml"
PRISTINE = EXAMPLE_RULES.read_bytes()
PRISTINE_TREE = yaml.safe_load(PRISTINE)
EXAMPLES = 1000
# A Monday in Berlin's winter: 1,000 examples 601 s apart walk through a week, so the
# weekday, time-of-day and Black Friday rules all get their turn at being decided.
WALL_START = dt.datetime(2026, 11, 23, tzinfo=dt.UTC).timestamp()
STEP_S = 601.0
# Every 10th example first writes the pristine file back, so that the last good rules change
# over the run (besides the mutations that are good) rather than staying the first ones.
RESTORE_EVERY = 10

Tree = Any  # what yaml.safe_load gives
Loc = tuple[Any, ...]  # keys and indexes from the root of a tree


# --------------------------------------------------------------------------------------------
# The media the example rules name, made small rather than copied


def make_media(folder: Path, rules: Tree) -> None:
    """A tiny PNG or WebM for every creative of `rules`, under `folder`."""
    for creative in rules["creatives"]:
        path = folder / creative["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            assert cv2.imwrite(str(path), np.full((36, 64, 3), 90, np.uint8))
            continue
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 10.0, (64, 36))
        assert writer.isOpened(), f"no WebM writer for {path}"
        for index in range(10):  # 1 s: the length a video creative without duration_s plays
            writer.write(np.full((36, 64, 3), index * 25, np.uint8))
        writer.release()


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules-fuzz")
    make_media(folder, PRISTINE_TREE)
    (folder / "rules.yaml").write_bytes(PRISTINE)
    return folder


# --------------------------------------------------------------------------------------------
# Mutations of the parsed tree


def locations(tree: Tree, path: Loc = ()) -> list[Loc]:
    """Every key and list item below `tree`, depth first."""
    if isinstance(tree, dict):
        items: Any = tree.items()
    elif isinstance(tree, list):
        items = enumerate(tree)
    else:
        return []
    found: list[Loc] = []
    for key, value in items:
        found.append((*path, key))
        found += locations(value, (*path, key))
    return found


def at(tree: Tree, loc: Loc) -> Tree:
    for key in loc:
        tree = tree[key]
    return tree


ENUM_WORDS = (
    *("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    *("female", "male", "any", "all", "majority", "attention"),
    *("Europe/Berlin", "20-34", "welcome", "store-hours", "true", "16:00"),
)
TYPO_CHARS = "abcxyz_-. 0:/"


@st.composite
def typo(draw: st.DrawFn, word: str) -> str:
    """`word` with one character dropped, inserted, swapped with the next or its case flipped."""
    kind = draw(st.sampled_from(("drop", "insert", "swap", "case")))
    if not word or kind == "insert":
        where = draw(st.integers(0, len(word)))
        return word[:where] + draw(st.sampled_from(TYPO_CHARS)) + word[where:]
    where = draw(st.integers(0, len(word) - 1))
    if kind == "drop":
        return word[:where] + word[where + 1 :]
    if kind == "swap" and len(word) > 1:
        where = min(where, len(word) - 2)
        return word[:where] + word[where + 1] + word[where] + word[where + 2 :]
    return word[:where] + word[where].swapcase() + word[where + 1 :]


SPECIAL_NUMBERS = (
    *(0, -1, 1, 2, 17, 18, 41, 1000, 1001, 3600, 3601, 24 * 60, 2**31, 2**63, -(2**63)),
    *(10**30, -(10**30), 0.0, -0.0, 1e-9, 0.5, 1e308),
    *(float("nan"), float("inf"), float("-inf")),
)
SPECIAL_STRINGS = (
    *("25:00", "24:00", "23:60", "7:00", "07:00", "", " ", "null", "~", "yes", "no"),
    *("1e400", "-0", "0x1F", "2026-02-30", "2026-11-27", "2026-11-27 10:00:00"),
    # Timezones: a tzdata folder and an over-long name made ZoneInfo raise OSError.
    *("Europe", "Etc", "Mars/Olympus", "UTC", "../../etc/passwd", "x" * 300),
    *("nul\x00byte", "tab\there", "bell\x07", "line\nbreak", "\ufeffbom", "∞ 🙂", "!!tag"),
)
# What a creative's `file` may wrongly name, next to what it may rightly name.
MEDIA_NAMES = (
    *("creatives/missing.png", "creatives/welcome.PNG", "creatives/welcome.txt"),
    *("creatives", "creatives/", "rules.yaml", "/dev/null", "/dev/null.png", ".png"),
    *("creatives/sneakers.png", "creatives/welcome.webm", "creatives/sneakers.webm"),
    *("creatives/./welcome.png", "../creatives/welcome.png", "creatives/nul\x00.png"),
    "creatives/" + "w" * 300 + ".png",
)
UNKNOWN_IDS = ("no-such-creative", "welcom", "Welcome", "welcome ", "sneakers.webm", "")

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(SPECIAL_NUMBERS),
    st.integers(),
    st.floats(),
    st.sampled_from(SPECIAL_STRINGS),
    st.sampled_from(ENUM_WORDS).flatmap(typo),
    st.text(max_size=12),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=8), SCALARS, max_size=3),
)

# A tree mutation changes the tree in place and says what it did, or None where it does not
# apply to this tree (the caller then mutates the text instead).
TreeMutation = Callable[[st.DrawFn, Tree], str | None]


def delete_key(draw: st.DrawFn, tree: Tree) -> str | None:
    keys = [loc for loc in locations(tree) if isinstance(at(tree, loc[:-1]), dict)]
    if not keys:
        return None
    loc = draw(st.sampled_from(keys))
    del at(tree, loc[:-1])[loc[-1]]
    return f"delete {loc}"


def replace_value(draw: st.DrawFn, tree: Tree) -> str | None:
    everywhere = locations(tree)
    if not everywhere:
        return None
    loc = draw(st.sampled_from(everywhere))
    value = draw(VALUES)
    at(tree, loc[:-1])[loc[-1]] = value
    return f"set {loc} = {value!r:.40}"


def rename_key(draw: st.DrawFn, tree: Tree) -> str | None:
    keys = [loc for loc in locations(tree) if isinstance(loc[-1], str)]
    keys = [loc for loc in keys if isinstance(at(tree, loc[:-1]), dict)]
    if not keys:
        return None
    loc = draw(st.sampled_from(keys))
    new = draw(typo(loc[-1]))
    parent = at(tree, loc[:-1])
    items = [(new if key == loc[-1] else key, value) for key, value in parent.items()]
    parent.clear()
    parent.update(items)  # in place and in order: the typo stays on the key's own line
    return f"rename {loc} -> {new!r}"


def duplicate_or_drop_item(draw: st.DrawFn, tree: Tree) -> str | None:
    items = [loc for loc in locations(tree) if isinstance(at(tree, loc[:-1]), list)]
    if not items:
        return None
    loc = draw(st.sampled_from(items))
    parent = at(tree, loc[:-1])
    if draw(st.booleans()):
        parent.insert(loc[-1], copy.deepcopy(parent[loc[-1]]))
        return f"duplicate {loc}"
    del parent[loc[-1]]
    return f"drop {loc}"


def unknown_creative(draw: st.DrawFn, tree: Tree) -> str | None:
    lists = ("default_playlist", "playlist", "creatives")
    refs = [
        loc
        for loc in locations(tree)
        if len(loc) >= 2
        and loc[-2] in lists
        and isinstance(loc[-1], int)
        and isinstance(at(tree, loc), str)
    ]
    if not refs:
        return None
    loc = draw(st.sampled_from(refs))
    at(tree, loc[:-1])[loc[-1]] = name = draw(st.sampled_from(UNKNOWN_IDS))
    return f"reference {loc} -> {name!r}"


def change_media(draw: st.DrawFn, tree: Tree) -> str | None:
    files = [loc for loc in locations(tree) if loc[-1] == "file"]
    if not files:
        return None
    loc = draw(st.sampled_from(files))
    at(tree, loc[:-1])["file"] = name = draw(st.sampled_from(MEDIA_NAMES))
    return f"media {loc} -> {name!r:.40}"


def swap_min_max(draw: st.DrawFn, tree: Tree) -> str | None:
    ranges = [loc for loc in [(), *locations(tree)] if isinstance(at(tree, loc), dict)]
    ranges = [loc for loc in ranges if "min" in at(tree, loc)]
    if not ranges:
        return None
    loc = draw(st.sampled_from(ranges))
    bounds = at(tree, loc)
    if "max" in bounds:
        bounds["min"], bounds["max"] = bounds["max"], bounds["min"]
        return f"swap min/max at {loc}"
    low = bounds["min"]
    if not isinstance(low, int | float) or isinstance(low, bool):
        return None
    bounds["max"] = low - 1
    return f"max below min at {loc}"


def backwards_dates(draw: st.DrawFn, tree: Tree) -> str | None:
    spans = [loc for loc in locations(tree) if isinstance(at(tree, loc), dict)]
    spans = [loc for loc in spans if {"from", "to"} <= at(tree, loc).keys()]
    if not spans:
        return None
    loc = draw(st.sampled_from(spans))
    span = at(tree, loc)
    if draw(st.booleans()):
        # A date range backwards is an error; a time window backwards passes midnight.
        span["from"], span["to"] = span["to"], span["from"]
        return f"swap from/to at {loc}"
    span["to"] = span["from"]
    return f"from == to at {loc}"


TREE_MUTATIONS: tuple[TreeMutation, ...] = (
    delete_key,
    replace_value,
    replace_value,  # the widest net: twice the chance
    rename_key,
    duplicate_or_drop_item,
    unknown_creative,
    change_media,
    swap_min_max,
    backwards_dates,
)


# --------------------------------------------------------------------------------------------
# Mutations of the raw bytes

TextMutation = Callable[[st.DrawFn, bytes], tuple[bytes, str]]

INSERTS = (
    *(b":", b"-", b"[", b"{", b"]", b"}", b'"', b"'", b"\t", b",", b"?", b"!", b"#", b"%"),
    *(b"@", b"`", b"|", b">", b"&a ", b"*a", b"\n", b"\r", b" ", b"- ", b": "),
    b"\x00",  # the YAML reader refuses it before any parsing
    b"\x01",
    b"\xef\xbb\xbf",  # a byte order mark in the middle
    "\u2028".encode(),  # a YAML line break that is no "\n"
    "é".encode(),
    b"\xff",  # never valid UTF-8
    b"\xc3",  # a cut multi-byte sequence
    b"\xed\xa0\x80",  # an encoded surrogate: invalid UTF-8
)
JUNK_FILES = (
    *(b"", b"\n", b"null", b"~", b"[]", b"{}", b"42", b"- a\n- b\n", b"version: 1\n"),
    *(b"---\n...\n", b"--- a\n--- b\n", b"# only a comment\n", b"\xff\xfe\x00\x00"),
    *(b"\x00", b"a: b: c", b"&a [*a]", b"!!python/object:os.system x"),
)


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def delete_line(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = lines_of(data)
    index = draw(st.integers(0, len(lines) - 1))
    return b"".join(lines[:index] + lines[index + 1 :]), f"delete line {index + 1}"


def duplicate_line(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = lines_of(data)
    index = draw(st.integers(0, len(lines) - 1))
    return b"".join(lines[: index + 1] + lines[index:]), f"duplicate line {index + 1}"


def reindent_line(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    lines = lines_of(data)
    index = draw(st.integers(0, len(lines) - 1))
    indent = draw(st.sampled_from((b"", b" ", b"  ", b"   ", b"      ", b"\t", b"  \t")))
    lines[index] = indent + lines[index].lstrip(b" \t")
    return b"".join(lines), f"indent line {index + 1} with {indent!r}"


def insert_chars(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    where = draw(st.integers(0, len(data)))
    chunk = b"".join(draw(st.lists(st.sampled_from(INSERTS), min_size=1, max_size=4)))
    return data[:where] + chunk + data[where:], f"insert {chunk!r} at {where}"


def truncate(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    where = draw(st.integers(0, len(data)))
    return data[:where], f"truncate at {where}"


def replace_file(draw: st.DrawFn, data: bytes) -> tuple[bytes, str]:
    junk = draw(st.one_of(st.sampled_from(JUNK_FILES), st.binary(max_size=64)))
    return junk, f"replace the file with {junk!r:.40}"


TEXT_MUTATIONS: tuple[TextMutation, ...] = (
    delete_line,
    duplicate_line,
    reindent_line,
    insert_chars,
    insert_chars,
    truncate,
    replace_file,
)


def dump(tree: Tree) -> bytes:
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True).encode()


def acyclic(tree: Tree, inside: frozenset[int] = frozenset()) -> bool:
    if not isinstance(tree, dict | list):
        return True
    if id(tree) in inside:
        return False
    inside |= {id(tree)}
    return all(
        acyclic(value, inside) for value in (tree.values() if isinstance(tree, dict) else tree)
    )


def reparse(data: bytes) -> Tree | None:
    """The tree of a mutated text, or None where it no longer is one: not a collection, or a
    cycle that inserted anchors and aliases made (`&a [*a]`), which no walk would end."""
    try:
        tree = yaml.safe_load(data)
        if isinstance(tree, dict | list) and acyclic(tree):
            return tree
    except (yaml.YAMLError, ValueError, RecursionError):
        pass
    return None


@dataclass(frozen=True)
class Mutant:
    data: bytes
    steps: tuple[str, ...]
    editor_save: bool  # written as a new file renamed over the old one, not in place


@st.composite
def mutants(draw: st.DrawFn) -> Mutant:
    """The example rules with 1-3 tree or text mutations, in sequence."""
    editor_save = draw(st.booleans())
    tree: Tree = copy.deepcopy(PRISTINE_TREE)
    data: bytes | None = None  # None: `tree` is the current version
    steps: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            candidate = tree if data is None else reparse(data)
            if candidate is not None:
                done = draw(st.sampled_from(TREE_MUTATIONS))(draw, candidate)
                if done is not None:
                    tree, data = candidate, None
                    steps.append(done)
                    continue
        current = dump(tree) if data is None else data
        data, done = draw(st.sampled_from(TEXT_MUTATIONS))(draw, current)
        steps.append(done)
    return Mutant(dump(tree) if data is None else data, tuple(steps), editor_save)


# --------------------------------------------------------------------------------------------
# The run: one watcher and one scheduler through all examples


@dataclass
class Tally:
    examples: int = 0
    accepted: int = 0
    rejected: int = 0
    restores: int = 0  # the pristine file written back between examples
    crashes: int = 0
    crash_kinds: dict[str, str] = field(default_factory=dict)  # kind -> steps of the first

    def reset(self) -> None:
        for name, value in dataclasses.asdict(Tally()).items():
            setattr(self, name, value)

    def summary(self) -> dict[str, Any]:
        return {
            "examples": self.examples,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "crashes": self.crashes,
            "restores": self.restores,
            "crash_kinds": sorted(self.crash_kinds),
        }


@dataclass
class Run:
    """The state examples share: hypothesis runs them all inside one test function."""

    rules: Path
    watcher: RulesWatcher
    scheduler: AdScheduler
    good: RuleTable
    good_bytes: bytes
    errors: list[RulesError]
    now: float = 0.0  # monotonic seconds
    mtime_ns: int = 0


TALLY = Tally()
RUN: list[Run] = []  # module-level holder of the one Run


def yaml_line_count(data: bytes) -> int:
    text = data.decode(errors="replace")  # a bad byte is named by its line too
    return len(re.split("\r\n|[\r\n\x85\u2028\u2029]", text))


def write_rules(run: Run, mutant: Mutant) -> None:
    # A strictly increasing mtime: the watcher must see every example as a change, even one
    # of the same size written within the filesystem's timestamp granularity.
    run.mtime_ns += 1_000_000_000
    if mutant.editor_save:
        fresh = run.rules.with_name(run.rules.name + ".swp")
        fresh.write_bytes(mutant.data)
        os.utime(fresh, ns=(run.mtime_ns, run.mtime_ns))
        os.replace(fresh, run.rules)
    else:
        run.rules.write_bytes(mutant.data)
        os.utime(run.rules, ns=(run.mtime_ns, run.mtime_ns))


def check_rejected(run: Run, mutant: Mutant, reported: list[RulesError]) -> None:
    error = run.watcher.last_error
    assert reported == [error], "on_error must be called once per rejected version"
    assert isinstance(error, RulesError) and error.problems
    most = yaml_line_count(mutant.data) + 1  # a syntax error at the end is on the line after
    for problem in error.problems:
        assert problem.file == str(run.rules), str(problem)
        assert problem.line is not None and 1 <= problem.line <= most, str(problem)
        assert problem.key_path, str(problem)
    with pytest.raises(RulesError) as direct:
        load_rules(run.rules)
    assert str(direct.value) == str(error)
    assert run.scheduler.table is run.good


def check_accepted(run: Run, mutant: Mutant, table: RuleTable, reported: list[RulesError]) -> None:
    assert reported == []
    assert run.watcher.last_error is None
    direct = load_rules(run.rules)
    assert direct.version_id == table.version_id == hashlib.sha256(mutant.data).hexdigest()[:12]
    assert direct == table
    run.scheduler.replace_rules(table)
    run.good, run.good_bytes = table, mutant.data


def restore_pristine(run: Run) -> None:
    """The marketer fixes the file: the pristine version becomes the last good one again."""
    TALLY.restores += 1
    before = len(run.errors)
    restored = Mutant(PRISTINE, ("pristine",), editor_save=False)
    write_rules(run, restored)
    table = run.watcher.poll()
    assert table is not None, str(run.watcher.last_error)
    check_accepted(run, restored, table, run.errors[before:])


def check_example(run: Run, mutant: Mutant) -> None:
    TALLY.examples += 1
    if TALLY.examples % RESTORE_EVERY == 0:
        restore_pristine(run)
    write_rules(run, mutant)
    before = len(run.errors)
    try:
        table = run.watcher.poll()
    except Exception as error:  # counted rather than raised: the tally covers all examples
        TALLY.crashes += 1
        message = " ".join(str(error).replace(str(run.rules.parent), "<dir>").split())
        kind = f"{type(error).__name__}: {message[:80]}"
        TALLY.crash_kinds.setdefault(kind, " / ".join(mutant.steps))
    else:
        reported = run.errors[before:]
        if table is None:
            TALLY.rejected += 1
            check_rejected(run, mutant, reported)
        else:
            TALLY.accepted += 1
            check_accepted(run, mutant, table, reported)

    # Whatever the file did, the screen goes on with the last good rules.
    run.now += STEP_S
    step = run.scheduler.tick([], run.now, WALL_START + run.now)
    assert run.scheduler.table is run.good
    assert run.scheduler.current is not None
    if step.started is not None:
        assert any(step.started.creative is c for c in run.good.creatives.values())
        assert step.started.rule_id in {None, *(rule.id for rule in run.good.rules)}


@pytest.fixture
def run(media_dir: Path) -> Iterator[Run]:
    # Next to the media folder it names, as in the repository; not the example's own copy,
    # which the other tests read as it is.
    rules = media_dir / "watched-rules.yaml"
    rules.write_bytes(PRISTINE)
    errors: list[RulesError] = []
    watcher = RulesWatcher(rules, last_good=media_dir / "state" / "last-good.yaml")
    watcher.on_error = errors.append
    table = watcher.load_initial()
    RUN[:] = [Run(rules, watcher, AdScheduler(table), table, PRISTINE, errors)]
    RUN[0].mtime_ns = rules.stat().st_mtime_ns
    yield RUN[0]
    RUN.clear()


def test_a_thousand_mutated_rule_files(run: Run) -> None:
    TALLY.reset()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        database=None,
        derandomize=True,
    )
    @given(mutant=mutants())
    def property_(mutant: Mutant) -> None:
        check_example(RUN[0], mutant)

    try:
        property_()
    finally:
        summary = TALLY.summary()
        print(f"\nrules fuzz: {json.dumps(summary)}")
        if report := os.environ.get("EDGE_AGENT_FUZZ_REPORT"):
            Path(report).write_text(json.dumps(summary) + "\n")

    assert TALLY.crashes == 0, "\n".join(f"{k} <- {v}" for k, v in TALLY.crash_kinds.items())
    assert TALLY.examples == EXAMPLES
    assert TALLY.rejected > 300, "the mutations hardly exercise the errors"
    assert TALLY.accepted > 0, "no mutation was ever good: the last good never moved to one"
    # The copy a reboot would start with is the last version taken, whole.
    assert run.watcher.last_good is not None
    assert run.watcher.last_good.read_bytes() == run.good_bytes
    assert not list(run.watcher.last_good.parent.glob("*.tmp"))


# --------------------------------------------------------------------------------------------
# Regressions: nasty inputs found or feared along the way


def rules_text() -> str:
    return PRISTINE.decode()


def assert_located(error: RulesError, file: Path, key_path: str | None = None) -> None:
    assert error.problems
    for problem in error.problems:
        assert problem.file == str(file)
        assert problem.line is not None and problem.line >= 1
        assert problem.key_path
    if key_path is not None:
        assert key_path in {problem.key_path for problem in error.problems}, str(error)


def test_the_example_rules_are_good_with_the_made_media(media_dir: Path) -> None:
    table = load_rules(media_dir / "rules.yaml")
    assert len(table.creatives) == len(PRISTINE_TREE["creatives"])
    assert table.creatives["sneakers"].duration_s == pytest.approx(1.0)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(PRISTINE[:400] + b"\x00" + PRISTINE[400:], id="NUL byte"),
        pytest.param(PRISTINE[:400] + b"\x01" + PRISTINE[400:], id="control character"),
        pytest.param(PRISTINE[:400] + b"\xff" + PRISTINE[400:], id="invalid UTF-8"),
        pytest.param(PRISTINE[:400] + b"\xed\xa0\x80" + PRISTINE[400:], id="encoded surrogate"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe\x00\x00", id="UTF-32 mark"),
        pytest.param(b"# nothing but a comment\n", id="comment only"),
    ],
)
def test_undecodable_or_empty_files_are_located_errors(media_dir: Path, data: bytes) -> None:
    path = media_dir / "nasty.yaml"
    path.write_bytes(data)
    with pytest.raises(RulesError) as error:
        load_rules(path)
    assert_located(error.value, path, TOP_LEVEL)

    # Through the hot reload: reported, never raised, the good rules stay.
    path.write_bytes(PRISTINE)
    reported: list[RulesError] = []
    watcher = RulesWatcher(path, on_error=reported.append)
    watcher.load_initial()
    path.write_bytes(data)
    os.utime(path, ns=(1, 1))
    assert watcher.poll() is None
    assert len(reported) == 1 and reported[0] is watcher.last_error


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 10_000 + "]" * 10_000, id="flow lists"),
        pytest.param("[" * 10_000, id="unclosed flow lists"),
        pytest.param("{a: " * 10_000 + "1" + "}" * 10_000, id="flow mappings"),
        pytest.param("- " * 10_000 + "x\n", id="block lists"),
        pytest.param(rules_text() + "extra: " + "[" * 10_000 + "]" * 10_000, id="under a key"),
    ],
)
def test_deep_nesting_is_a_rules_error_not_a_recursion_error(media_dir: Path, text: str) -> None:
    file = media_dir / "rules.yaml"
    with pytest.raises(RulesError) as error:
        parse_rules(text, str(file))
    assert_located(error.value, file)


class _TooSlow(BaseException):
    """Raised by the alarm: a BaseException, so no `except Exception` in the parser eats it."""


def test_an_alias_bomb_is_rejected_quickly(media_dir: Path) -> None:
    # ~300 bytes that expand to 9**9 list items; PyYAML itself shares the nodes, but anything
    # walking the document without noticing the sharing never ends.
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        name, below = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{below}'] * 9)}]")
    text = "\n".join(lines) + "\n"
    file = media_dir / "rules.yaml"

    def too_slow(signum: int, frame: types.FrameType | None) -> None:
        raise _TooSlow

    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.setitimer(signal.ITIMER_REAL, 3.0)
    try:
        with pytest.raises(RulesError) as error:
            parse_rules(text, str(file))
    except _TooSlow:
        pytest.fail("parsing a 300-byte alias bomb took over 3 s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert_located(error.value, file)


@pytest.mark.parametrize(
    "zone",
    [
        pytest.param("Europe", id="a tzdata folder"),
        pytest.param("Etc", id="another tzdata folder"),
        pytest.param("x" * 300, id="a name too long for the OS"),
        pytest.param("Mars/Olympus", id="unknown"),
    ],
)
def test_a_timezone_that_is_no_zone_file_is_a_located_error(media_dir: Path, zone: str) -> None:
    # "Europe" is a folder of tzdata and "x" * 300 too long a file name: ZoneInfo raised
    # OSError for both, which escaped validation (fixed in RulesFile._known_zone).
    file = media_dir / "rules.yaml"
    with pytest.raises(RulesError) as error:
        parse_rules(rules_text().replace("Europe/Berlin", zone), str(file))
    assert_located(error.value, file, "timezone")
    assert [problem.line for problem in error.value.problems] == [20]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param('"creatives/nul\\0.png"', id="NUL in the name"),
        pytest.param("creatives/" + "w" * 300 + ".png", id="name too long for the OS"),
        pytest.param("creatives/" + "w/" * 2100 + "x.png", id="path too long for the OS"),
    ],
)
def test_a_media_name_the_os_refuses_is_a_located_error(media_dir: Path, name: str) -> None:
    file = media_dir / "rules.yaml"
    text = rules_text().replace("creatives/welcome.png", name, 1)
    with pytest.raises(RulesError) as error:
        parse_rules(text, str(file))
    assert_located(error.value, file, "creatives[0].file")


def test_an_integer_too_long_to_convert_is_a_located_error(media_dir: Path) -> None:
    file = media_dir / "rules.yaml"
    text = rules_text().replace("priority: 20", "priority: " + "9" * 5000)
    with pytest.raises(RulesError) as error:
        parse_rules(text, str(file))
    assert_located(error.value, file)
