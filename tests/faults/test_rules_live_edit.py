"""A marketer saves a broken rules file while the daemon runs: whatever the breakage (a tag
with a bad value, bad UTF-8, a bomb, a huge file, a FIFO or a directory in its place), the
last good rules keep playing, the problem is reported with file and line, and a restart
starts from the last good copy. Real files and the real reload component; one test drives a
real `edge-agent run` subprocess."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_agent.ads.players import make_player
from edge_agent.ads.reload import RulesWatcher
from edge_agent.ads.rules import RulesError
from edge_agent.ads.stage import AdStage
from edge_agent.validated_yaml import MAX_YAML_BYTES
from tests.support.ads import BASE, write_rules
from tests.support.paths import REPO

GOOD = BASE + "rules:\n  - {id: for-all, creatives: [t1]}\n"
BOMB = "".join(
    f"x-laugh{n}: &l{n} [{', '.join(['lol'] * 10 if n == 0 else [f'*l{n - 1}'] * 10)}]\n"
    for n in range(9)
)


def _replace(path: Path, data: bytes) -> None:
    """Save as an editor does: a new file renamed over the old one (so a new inode)."""
    temporary = path.with_name(path.name + ".saving")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _text(text: str) -> Callable[[Path], None]:
    return lambda path: _replace(path, text.encode())


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda path: _replace(path, data)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _dev_zero(path: Path) -> None:
    path.unlink()
    path.symlink_to("/dev/zero")


POISONS: dict[str, Callable[[Path], None]] = {
    "bool-maybe": _text(GOOD.replace("default_min_play_s: 2", "default_min_play_s: !!bool maybe")),
    "timestamp-x": _text(GOOD.replace("timezone: UTC", "timezone: !!timestamp x")),
    "int-x": _text(GOOD.replace("duration_s: 10}", "duration_s: !!int x}", 1)),
    "float-x": _text(GOOD.replace("duration_s: 10}", "duration_s: !!float x}", 1)),
    "binary": _text(GOOD.replace("timezone: UTC", "timezone: !!binary ???")),
    "python-tag": _text(GOOD.replace("timezone: UTC", "timezone: !!python/object:os.system {}")),
    "unknown-tag": _text(GOOD.replace("timezone: UTC", "timezone: !local UTC")),
    "merge-scalar": _text(GOOD.replace("minors: {playlist: [n]}", "minors: {<<: 5}")),
    "bad-utf8": _bytes(GOOD.replace("timezone: UTC", "timezone: U\xffTC").encode("latin-1")),
    "bomb": _text(BOMB + GOOD),
    "deep": _text(GOOD + "x: " + "[" * 5000 + "]" * 5000 + "\n"),
    "huge": _text(GOOD + "#" * MAX_YAML_BYTES + "\n"),
    "too-many-creatives": _text(
        GOOD.replace("creatives:\n", "creatives:\n" + "  - {id: a, file: media/a.png}\n" * 600)
    ),
    "missing-media": _text(GOOD.replace("media/t1.png", "media/gone.png")),
    "empty": _text(""),
    "fifo": _fifo,
    "directory": _directory,
    "dev-zero": _dev_zero,
}


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    return write_rules(tmp_path, "- {id: for-all, creatives: [t1]}\n")


def _watcher(rules: Path, reported: list[RulesError]) -> RulesWatcher:
    return RulesWatcher(rules, last_good=rules.parent / "state" / "last-good.yaml",
                        on_error=reported.append)  # fmt: skip


def _settle(watcher: RulesWatcher) -> object:
    """What the frame loop sees: the tick that notices the change only starts the load."""
    assert watcher.poll_in_background() is None
    assert watcher.wait_for_reload(10), "the rules load did not finish within 10 s"
    return watcher.poll_in_background()


def _names_the_file_and_a_line(error: RulesError, rules: Path) -> None:
    for problem in error.problems:
        assert problem.file == str(rules) and problem.line is not None, problem
        assert str(problem).startswith(f"{rules}:"), problem


@pytest.mark.parametrize("poison", POISONS)
def test_a_poisoned_edit_keeps_the_last_good_rules_and_a_restart_uses_them(
    poison: str, rules: Path
) -> None:
    assert rules.read_text() == GOOD
    reported: list[RulesError] = []
    watcher = _watcher(rules, reported)
    good = watcher.load_initial()
    POISONS[poison](rules)
    assert _settle(watcher) is None  # not taken...
    (error,) = reported  # ...but reported, once, with file and line
    _names_the_file_and_a_line(error, rules)
    assert watcher.last_good is not None and watcher.last_good.read_text() == GOOD
    assert watcher.poll_in_background() is None and len(reported) == 1

    # A restart (power cut, systemd) with the poisoned file still there: the last good copy.
    restarted = _watcher(rules, reported)
    table = restarted.load_initial()
    assert table.version_id == good.version_id
    assert [c.creative_id for c in table.default_playlist] == ["a", "b"]
    assert len(reported) == 2

    # Fixed: taken on the next ticks.
    if rules.is_dir():
        rules.rmdir()
    _replace(rules, GOOD.replace("default_playlist: [a, b]", "default_playlist: [b]").encode())
    fixed = _settle(restarted)
    assert fixed is not None and [c.creative_id for c in fixed.default_playlist] == ["b"]


def test_the_frame_loop_never_waits_for_a_load(rules: Path) -> None:
    """The stage's tick only notices a change; the load (up to a 1 MiB file, every media
    file opened) runs on a worker thread and its outcome is taken by a later tick."""
    stage = AdStage(_watcher(rules, []), make_player("none"), reload_check_s=0.0)
    stage.start(0.0, 0.0)
    assert stage.scheduler is not None
    first = stage.scheduler.table
    _replace(rules, GOOD.replace("default_playlist: [a, b]", "default_playlist: [b]").encode())
    stage.tick((), 1.0, 1.0)
    assert stage.scheduler.table is first  # noticed, loading elsewhere
    assert stage.watcher.wait_for_reload(10)
    stage.tick((), 2.0, 2.0)
    assert [c.creative_id for c in stage.scheduler.table.default_playlist] == ["b"]
    stage.stop(3.0, 3.0)


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _fill(folder: Path) -> None:
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 4096)
            filler.flush()


@pytest.mark.parametrize("disk", ["full", "read-only"])
def test_a_full_or_read_only_state_disk_is_said_once_and_the_rules_still_change(
    disk: str, rules: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    options = "size=64k" if disk == "full" else "size=64k,ro"
    with _tmpfs(tmp_path / "state", options) as state:
        if disk == "full":
            _fill(state)
        watcher = RulesWatcher(rules, last_good=state / "rules.last-good.yaml")
        caplog.set_level(logging.INFO, logger="edge_agent.ads.reload")
        watcher.load_initial()
        for playlist in ("[b]", "[a]", "[b, a]"):
            edit = GOOD.replace("default_playlist: [a, b]", f"default_playlist: {playlist}")
            _replace(rules, edit.encode())
            table = _settle(watcher)
            assert (
                table is not None
                and table.default_playlist[0].creative_id
                == edit[edit.index("default_playlist: [") + 19]
            )
        said = [r for r in caplog.records if "cannot keep a copy" in r.getMessage()]
        assert len(said) == 1, [r.getMessage() for r in said]
        assert not (state / "rules.last-good.yaml.tmp").exists()


# --------------------------------------------------------------------------------------------
# The real daemon


def _config(tmp_path: Path, rules: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        "source:\n"
        f"  spec: {REPO / 'samples' / 'demo.mp4'}\n"
        "  loop: true\n"
        "  realtime: true\n"
        "ads:\n"
        f"  rules: {rules}\n"
        "  player: none\n"
        "  reload_check_s: 0.2\n"
        "state:\n"
        f"  dir: {tmp_path / 'state'}\n"
        "mqtt:\n"
        "  enabled: false\n"
    )
    return config


class _Daemon:
    """`edge-agent run` as a child process, its log read line by line."""

    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []

    def wait_for(self, pattern: str, timeout_s: float = 60) -> re.Match[str]:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        os.set_blocking(self.process.stdout.fileno(), False)
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                assert self.process.poll() is None, "the daemon exited:\n" + "".join(self.lines)
                time.sleep(0.05)
                continue
            self.lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"no {pattern!r} within {timeout_s} s:\n" + "".join(self.lines))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        finally:
            if self.process.poll() is None:
                self.process.kill()


PLAY = r'"creative_id": "(\w+)"'


def test_a_running_daemon_survives_a_poisoned_save_and_restarts_from_the_last_good(
    tmp_path: Path,
) -> None:
    # Plays of one second, so that the log shows which playlist is running.
    short = GOOD.replace("duration_s: 10", "duration_s: 1")
    short = short.replace("default_min_play_s: 2", "default_min_play_s: 0")
    rules = write_rules(tmp_path / "ads", head=short.split("rules:\n")[0])
    config = _config(tmp_path, rules)
    daemon = _Daemon(config)
    try:
        assert daemon.wait_for(PLAY).group(1) in ("a", "b")
        poisoned = (
            short.split("rules:\n")[0]
            .replace("default_playlist: [a, b]", "default_playlist: [n]")
            .replace("default_min_play_s: 0", "default_min_play_s: !!bool maybe")
        )
        _replace(rules, poisoned.encode())
        daemon.wait_for(rf"rules file rejected.*|{re.escape(str(rules))}:\d+")
        for _ in range(3):  # still running, still the good playlist
            assert daemon.wait_for(PLAY).group(1) in ("a", "b")
        assert daemon.process.poll() is None
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.lines)

    restarted = _Daemon(config)
    try:
        restarted.wait_for(r"starting with the last good rules")
        assert restarted.wait_for(PLAY).group(1) in ("a", "b")
    finally:
        code = restarted.stop()
    assert code == 0, "".join(restarted.lines)
