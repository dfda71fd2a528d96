"""RulesWatcher with real files: good edits are taken, bad ones reported once and ignored,
and a reboot after a bad edit starts with the last good copy."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.ads import reload
from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.rules import TOP_LEVEL, RulesError

RULES = """\
version: 1
default_playlist: [welcome]
creatives:
  - {id: welcome, file: creatives/welcome.png, duration_s: 5}
  - {id: promo, file: creatives/promo.png, duration_s: 5}
rules:
  - id: promo-for-all
    priority: 1
    creatives: [promo]
"""
PRIORITY_LINE = 8
BROKEN = RULES.replace("priority: 1", "priority: high")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "creatives").mkdir()
    for name in ("welcome", "promo"):
        image = np.zeros((9, 16, 3), np.uint8)
        assert cv2.imwrite(str(tmp_path / "creatives" / f"{name}.png"), image)
    (tmp_path / "rules.yaml").write_text(RULES)
    return tmp_path


@pytest.fixture
def rules(folder: Path) -> Path:
    return folder / "rules.yaml"


@pytest.fixture
def reported() -> list[RulesError]:
    return []


@pytest.fixture
def watcher(rules: Path, folder: Path, reported: list[RulesError]) -> RulesWatcher:
    return RulesWatcher(
        rules, last_good=folder / "state" / "last-good.yaml", on_error=reported.append
    )


def edit(path: Path, text: str) -> None:
    """Write in place with a later mtime. Set explicitly: an edit of the same size within the
    filesystem's timestamp granularity would otherwise look unchanged to the watcher."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    later = max(before + 1_000_000_000, path.stat().st_mtime_ns)
    os.utime(path, ns=(later, later))


def test_an_unchanged_file_is_not_reloaded(
    watcher: RulesWatcher, reported: list[RulesError]
) -> None:
    watcher.load_initial()
    assert watcher.poll() is None
    assert watcher.poll() is None
    assert reported == []
    assert watcher.last_error is None


def test_a_good_edit_is_taken(
    watcher: RulesWatcher, rules: Path, reported: list[RulesError]
) -> None:
    first = watcher.load_initial()
    edit(rules, RULES.replace("priority: 1", "priority: 7"))

    table = watcher.poll()
    assert table is not None
    assert table.version_id != first.version_id
    assert table.rules[0].priority == 7
    assert watcher.poll() is None  # taken once
    assert reported == []


def test_a_bad_edit_is_reported_once_and_the_good_rules_stay(
    watcher: RulesWatcher, rules: Path, reported: list[RulesError]
) -> None:
    current = first = watcher.load_initial()

    edit(rules, BROKEN)
    assert watcher.poll() is None
    assert watcher.poll() is None  # unchanged since: not reported again
    assert len(reported) == 1 and reported[0] is watcher.last_error
    [problem] = reported[0].problems
    assert (problem.file, problem.line, problem.key_path) == (
        str(rules),
        PRIORITY_LINE,
        "rules[0].priority",
    )
    assert f"{rules}:{PRIORITY_LINE}: rules[0].priority: " in str(reported[0])
    assert "'high'" in problem.message

    # The caller swaps tables only on a new one: a rejected edit leaves its table alone.
    current = watcher.poll() or current
    assert current is first

    edit(rules, RULES.replace("priority: 1", "priority: 3"))
    fixed = watcher.poll()
    assert fixed is not None and fixed.rules[0].priority == 3
    assert watcher.last_error is None
    assert len(reported) == 1


def test_an_editor_save_by_rename_is_noticed(
    watcher: RulesWatcher, rules: Path, folder: Path
) -> None:
    first = watcher.load_initial()
    old = rules.stat()
    # Same size and same mtime: only the inode tells this save from no save at all.
    fresh = folder / ".rules.yaml.swp"
    fresh.write_text(RULES.replace("priority: 1", "priority: 2"))
    os.utime(fresh, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(fresh, rules)
    assert rules.stat().st_size == old.st_size

    table = watcher.poll()
    assert table is not None
    assert table.rules[0].priority == 2
    assert table.version_id != first.version_id


def test_a_deleted_file_is_an_error_until_it_is_back(
    watcher: RulesWatcher, rules: Path, reported: list[RulesError]
) -> None:
    first = watcher.load_initial()

    rules.unlink()
    assert watcher.poll() is None
    assert watcher.poll() is None
    assert len(reported) == 1
    [problem] = reported[0].problems
    assert (problem.file, problem.line, problem.key_path) == (str(rules), 1, TOP_LEVEL)
    assert "cannot read the rules file" in problem.message

    edit(rules, RULES)
    table = watcher.poll()
    assert table is not None
    assert table.version_id == first.version_id  # the same text: the same version
    assert watcher.last_error is None


def test_a_reboot_after_a_bad_edit_starts_with_the_last_good_copy(
    watcher: RulesWatcher, rules: Path, folder: Path
) -> None:
    good = watcher.load_initial()
    assert watcher.last_good is not None
    assert watcher.last_good.read_text() == RULES
    edit(rules, BROKEN)
    assert watcher.poll() is None
    assert watcher.last_good.read_text() == RULES  # a rejected edit is never copied

    reported: list[RulesError] = []
    rebooted = RulesWatcher(rules, last_good=watcher.last_good, on_error=reported.append)
    table = rebooted.load_initial()
    assert table.version_id == good.version_id
    assert table.rules == good.rules
    # Media resolve against the rules file's folder, not the copy's.
    assert table.creatives["promo"].path == folder / "creatives" / "promo.png"
    assert len(reported) == 1
    assert reported[0].problems[0].key_path == "rules[0].priority"
    assert rebooted.last_error is reported[0]

    # Once fixed, the file takes over again.
    edit(rules, RULES.replace("priority: 1", "priority: 4"))
    fixed = rebooted.poll()
    assert fixed is not None and fixed.rules[0].priority == 4
    assert watcher.last_good.read_text() == RULES.replace("priority: 1", "priority: 4")


def test_a_broken_file_without_a_last_good_copy_does_not_start(rules: Path, folder: Path) -> None:
    edit(rules, BROKEN)
    for last_good in (None, folder / "state" / "never-written.yaml"):
        with pytest.raises(RulesError) as error:
            RulesWatcher(rules, last_good=last_good).load_initial()
        assert error.value.problems[0].key_path == "rules[0].priority"


def test_a_broken_last_good_copy_does_not_start_either(watcher: RulesWatcher, rules: Path) -> None:
    watcher.load_initial()
    assert watcher.last_good is not None
    watcher.last_good.write_bytes(b"\xff not the rules")
    edit(rules, BROKEN)
    with pytest.raises(RulesError) as error:
        RulesWatcher(rules, last_good=watcher.last_good).load_initial()
    assert error.value.problems[0].key_path == "rules[0].priority"  # the file's own error


def test_the_last_good_copy_is_replaced_whole(
    watcher: RulesWatcher, rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher.load_initial()
    last_good = watcher.last_good
    assert last_good is not None
    renames: list[tuple[Path, Path, bytes]] = []
    real_replace = os.replace

    def spy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        renames.append((Path(source), Path(target), Path(source).read_bytes()))
        real_replace(source, target)

    monkeypatch.setattr(reload.os, "replace", spy)
    edited = RULES.replace("priority: 1", "priority: 9")
    edit(rules, edited)
    assert watcher.poll() is not None

    # Written beside it (same filesystem, so the rename is atomic), complete, then renamed.
    [(source, target, content)] = renames
    assert target == last_good
    assert source.parent == last_good.parent and source != last_good
    assert content == edited.encode()
    assert last_good.read_text() == edited
    assert sorted(p.name for p in last_good.parent.iterdir()) == [last_good.name]


def test_a_failed_copy_keeps_the_previous_one_and_the_new_rules(
    watcher: RulesWatcher, rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watcher.load_initial()
    assert watcher.last_good is not None

    def full_disk(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reload.os, "replace", full_disk)
    edit(rules, RULES.replace("priority: 1", "priority: 9"))
    table = watcher.poll()
    assert table is not None and table.rules[0].priority == 9  # keeping a copy is no reason
    assert watcher.last_good.read_text() == RULES  # the previous copy, whole


def test_a_failing_error_handler_does_not_break_the_poll(rules: Path) -> None:
    def handler(error: RulesError) -> None:
        raise RuntimeError("the alerting is down")

    watcher = RulesWatcher(rules, on_error=handler)
    watcher.load_initial()
    edit(rules, BROKEN)
    assert watcher.poll() is None
    assert isinstance(watcher.last_error, RulesError)
