"""Property-based fuzz of the two files users write, config.yaml and ads/rules.yaml, through
the real loaders: YAML tags with bad values, bad UTF-8, alias bombs (also with an
EDGE_AGENT__ override set), files over the size limit, too many creatives, deep nesting,
special files and random byte flips of the shipped files.

Every case must end within a hang guard either loaded or rejected with the project's own
error, each problem naming the file and a line (a size or special-file refusal names the
file). The suite runs 200 examples per property; the acceptance run is 1,000:

    EDGE_AGENT_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/faults/test_yaml_fuzz.py -s

which prints a tally per file kind (and writes it as JSON to $EDGE_AGENT_FUZZ_REPORT if set).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge_agent.ads.rules import RulesError, load_rules
from edge_agent.config import ConfigError, load_config
from edge_agent.validated_yaml import MAX_YAML_BYTES, ProblemsError
from tests.support.paths import REPO

EXAMPLES = int(os.environ.get("EDGE_AGENT_FUZZ_EXAMPLES", "200"))
HANG_GUARD_S = 10
SHIPPED_CONFIG = (REPO / "config.yaml").read_bytes()
SHIPPED_RULES = (REPO / "ads" / "rules.yaml").read_bytes()

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Values no constructor of the safe loader accepts, or tags it does not know.
BAD_TAGGED_VALUES = [
    "!!bool maybe",
    "!!timestamp x",
    "!!timestamp 2026-13-45",
    "!!int x",
    "!!int 0x",
    "!!float x",
    "!!binary ???",
    "!!null x",
    "!!set [1]",
    "!!omap 3",
    "!!pairs x",
    "!!map [1]",
    "!!seq {a: 1}",
    "!!str [1]",
    "!!python/object:os.system {a: 1}",
    "!!python/name:os.system ''",
    "!!python/tuple [1]",
    "!unknown 1",
    "!<tag:example.com,2026:x> 1",
    "{<<: 5}",
    "{<<: [1, 2]}",
    "{<<: *undefined}",
    "&self [*self]",
]
BAD_UTF8 = [b"\xff", b"\xfe", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88"]


@dataclass(frozen=True)
class Case:
    """One input: bytes to write, or a special file to point the loader at."""

    kind: str
    data: bytes = b""
    special: str | None = None  # "dev-zero", "fifo", "directory"
    environ: dict[str, str] = field(default_factory=dict)


def _replace_a_value(original: bytes, index: int, value: str) -> bytes:
    lines = original.decode().splitlines(keepends=True)
    candidates = [
        n
        for n, line in enumerate(lines)
        if ":" in line
        and not line.lstrip().startswith("#")
        and line.rstrip().endswith(":") is False
    ]
    n = candidates[index % len(candidates)]
    key, _, _ = lines[n].partition(": ")
    if not _:
        key = lines[n].rstrip("\n").rstrip(":")
    lines[n] = f"{key}: {value}\n"
    return "".join(lines).encode()


def _bomb(levels: int, width: int) -> str:
    rows = [f"x-laugh0: &l0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        rows.append(f"x-laugh{level}: &l{level} [{', '.join([f'*l{level - 1}'] * width)}]")
    return "\n".join(rows) + "\n"


def cases(original: bytes, env_override: bool) -> st.SearchStrategy[Case]:
    """Mutations of `original` in every class the issue names."""
    environs = (
        st.sampled_from([{}, {"EDGE_AGENT__MQTT__PASSWORD": "s3cret"}])
        if env_override
        else st.just({})
    )
    size = len(original)
    tagged = st.builds(
        lambda index, value, environ: Case(
            "tag", _replace_a_value(original, index, value), environ=environ
        ),
        st.integers(0, 10_000),
        st.sampled_from(BAD_TAGGED_VALUES),
        environs,
    )
    bad_utf8 = st.builds(
        lambda at, bad, environ: Case(
            "utf8", original[: at % size] + bad + original[at % size :], environ=environ
        ),
        st.integers(0, 10_000_000),
        st.sampled_from(BAD_UTF8),
        environs,
    )
    bomb = st.builds(
        lambda levels, width, index, environ: Case(
            "bomb",
            _bomb(levels, width).encode() + _replace_a_value(original, index, f"*l{levels - 1}"),
            environ=environ,
        ),
        st.integers(5, 12),
        st.integers(8, 12),
        st.integers(0, 10_000),
        environs,
    )
    huge = st.builds(
        lambda extra, environ: Case(
            "huge", original + b"#" * (MAX_YAML_BYTES - size + extra) + b"\n", environ=environ
        ),
        st.integers(0, 4 * MAX_YAML_BYTES),
        environs,
    )
    deep = st.builds(
        lambda depth, environ: Case("deep", b"x: " + b"[" * depth + b"]" * depth, environ=environ),
        st.integers(60, 200_000),
        environs,
    )
    special = st.builds(
        lambda what, environ: Case("special", special=what, environ=environ),
        st.sampled_from(["dev-zero", "fifo", "directory"]),
        environs,
    )

    def flip(positions: list[tuple[int, int]], environ: dict[str, str]) -> Case:
        data = bytearray(original)
        for at, value in positions:
            data[at % size] = value
        return Case("flip", bytes(data), environ=environ)

    flips = st.builds(
        flip,
        st.lists(
            st.tuples(st.integers(0, 10_000_000), st.integers(0, 255)), min_size=1, max_size=8
        ),
        environs,
    )
    truncated = st.builds(
        lambda at, environ: Case("truncated", original[: at % size], environ=environ),
        st.integers(0, 10_000_000),
        environs,
    )
    return st.one_of(tagged, bad_utf8, bomb, huge, deep, special, flips, truncated)


# --------------------------------------------------------------------------------------------
# Running a case


class Hang(Exception):
    pass


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0

    def report(self, name: str) -> dict[str, Any]:
        result = {
            "examples": sum(self.outcomes.values()),
            "outcomes": dict(self.outcomes),
            "kinds": dict(self.kinds),
            "slowest_s": round(self.slowest_s, 3),
        }
        print(f"\n{name}: {json.dumps(result)}")
        report = os.environ.get("EDGE_AGENT_FUZZ_REPORT")
        if report:
            path = Path(report)
            existing = json.loads(path.read_text()) if path.is_file() else {}
            path.write_text(json.dumps({**existing, name: result}, indent=2))
        return result


def place(case: Case, folder: Path, name: str) -> Path:
    """The path the loader gets for `case`: a real file, or a real special file."""
    if case.special == "dev-zero":
        return Path("/dev/zero")
    target = folder / name
    if target.is_dir():
        target.rmdir()
    else:
        target.unlink(missing_ok=True)
    if case.special == "fifo":
        os.mkfifo(target)
    elif case.special == "directory":
        target.mkdir()
    else:
        target.write_bytes(case.data)
    return target


def check(
    case: Case,
    path: Path,
    load: Callable[[Path, dict[str, str]], object],
    error_type: type[ProblemsError],
    tally: Tally,
) -> None:
    tally.kinds[case.kind] += 1
    started = time.monotonic()
    try:
        with hang_guard(HANG_GUARD_S):
            load(path, case.environ)
        outcome = "loaded"
    except error_type as error:
        outcome = "rejected"
        assert error.problems, "a rejection without a reason"
        for problem in error.problems:
            if problem.env_var is not None:
                assert problem.env_var in case.environ
                continue
            assert problem.file == os.fspath(path), problem
            assert str(problem).startswith(os.fspath(path)), problem
            refused_whole = problem.message.startswith("cannot read the")
            if not refused_whole:
                assert problem.line is not None and problem.line >= 1, problem
            assert "\n" not in str(problem), problem
    finally:
        tally.slowest_s = max(tally.slowest_s, time.monotonic() - started)
    tally.outcomes[outcome] += 1
    if case.kind in ("utf8", "bomb", "huge", "deep", "special"):
        assert outcome == "rejected", case.kind  # never a valid file


# --------------------------------------------------------------------------------------------
# The properties


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz")
    # The shipped rules name media under creatives/: the mutated copies see the real ones.
    (folder / "creatives").symlink_to(REPO / "ads" / "creatives")
    return folder


@pytest.fixture(scope="module")
def config_tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    result = tally.report("config")
    assert result["examples"] >= EXAMPLES


@pytest.fixture(scope="module")
def rules_tally() -> Iterator[Tally]:
    tally = Tally()
    yield tally
    result = tally.report("rules")
    assert result["examples"] >= EXAMPLES


def _load_config(path: Path, environ: dict[str, str]) -> object:
    return load_config(path, environ=environ)


def _load_rules(path: Path, environ: dict[str, str]) -> object:
    return load_rules(path)


@FUZZ_SETTINGS
@given(case=cases(SHIPPED_CONFIG, env_override=True))
def test_mutated_config_files_load_or_are_rejected_with_a_line(
    case: Case, workdir: Path, config_tally: Tally
) -> None:
    check(case, place(case, workdir, "config.yaml"), _load_config, ConfigError, config_tally)


@FUZZ_SETTINGS
@given(case=cases(SHIPPED_RULES, env_override=False))
def test_mutated_rules_files_load_or_are_rejected_with_a_line(
    case: Case, workdir: Path, rules_tally: Tally
) -> None:
    check(case, place(case, workdir, "rules.yaml"), _load_rules, RulesError, rules_tally)


def test_the_shipped_files_load(workdir: Path) -> None:
    """The mutations start from good files: otherwise every case is trivially rejected."""
    load_config(place(Case("good", SHIPPED_CONFIG), workdir, "config.yaml"), environ={})
    load_rules(place(Case("good", SHIPPED_RULES), workdir, "rules.yaml"))
