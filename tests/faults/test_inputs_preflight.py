"""`run` and `config check` share one preflight: the paths a valid config names must work on
this machine. `config check` lists every problem; `run` refuses to start with one line each,
never a traceback, before it opens the camera or the broker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.faults.inputs_support import edge_agent, write_config, write_video

GUARD_S = 60


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "short.avi", 3)


def line_of(config: Path, text: str) -> int:
    return next(n for n, line in enumerate(config.read_text().splitlines(), 1) if text in line)


def refused(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("edge-agent: error: "), done.stderr
    return lines


def test_config_check_passes_a_config_whose_paths_all_work(tmp_path, video):
    done = edge_agent("config", "check", str(write_config(tmp_path, video)), timeout=GUARD_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(": OK\n")


def test_config_check_names_a_missing_rules_file_and_video_with_their_lines(tmp_path):
    config = write_config(
        tmp_path, tmp_path / "gone.mp4", ads={"rules": str(tmp_path / "no-rules.yaml")}
    )
    lines = refused(edge_agent("config", "check", str(config), timeout=GUARD_S))
    rules_line, spec_line = line_of(config, "no-rules.yaml"), line_of(config, "gone.mp4")
    assert any(
        f"{config}:{rules_line}: ads.rules: no such file: {tmp_path / 'no-rules.yaml'}" in line
        for line in lines
    ), lines
    assert any(
        f"{config}:{spec_line}: source.spec: no such file: {tmp_path / 'gone.mp4'}" in line
        for line in lines
    ), lines


def test_run_refuses_a_state_dir_that_is_a_file(tmp_path, video):
    state = tmp_path / "state-file"
    state.write_text("")
    config = write_config(tmp_path, video, state={"dir": str(state)})
    (line,) = refused(edge_agent("run", "--config", str(config), timeout=GUARD_S))
    assert f"state.dir: {state} is not a folder" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only file system needs root")
def test_run_refuses_a_state_dir_it_cannot_write_in(tmp_path, video):
    state = tmp_path / "read-only"
    state.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(state)], check=True)
    try:
        config = write_config(tmp_path, video, state={"dir": str(state)})
        check = refused(edge_agent("config", "check", str(config), timeout=GUARD_S))
        (line,) = refused(edge_agent("run", "--config", str(config), timeout=GUARD_S))
    finally:
        subprocess.run(["umount", str(state)], check=True)
    assert f"state.dir: cannot write in {state}: Read-only file system" in line
    assert check == [line]


def test_run_refuses_a_debug_folder_it_cannot_create(tmp_path, video):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    debug = blocker / "frames"
    config = write_config(tmp_path, video, debug={"save_annotated_frames_dir": str(debug)})
    (line,) = refused(edge_agent("run", "--config", str(config), timeout=GUARD_S))
    assert (
        f"debug.save_annotated_frames_dir: cannot create {debug}: {blocker} is not a folder" in line
    )


def test_run_refuses_a_missing_tls_file_and_names_it(tmp_path, video):
    ca = tmp_path / "ca.pem"
    config = write_config(
        tmp_path, video, mqtt={"enabled": True, "tls": {"enabled": True, "ca_file": str(ca)}}
    )
    (line,) = refused(edge_agent("run", "--config", str(config), timeout=GUARD_S))
    assert f"mqtt.tls.ca_file: {ca}: no such file" in line


def test_run_refuses_a_tls_file_that_is_not_pem_and_names_it(tmp_path, video):
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate\n")
    config = write_config(
        tmp_path, video, mqtt={"enabled": True, "tls": {"enabled": True, "ca_file": str(ca)}}
    )
    (line,) = refused(edge_agent("run", "--config", str(config), timeout=GUARD_S))
    assert f"mqtt.tls.ca_file: {ca}: not a PEM file" in line


def test_a_problem_set_from_the_environment_names_the_variable(tmp_path, video):
    config = write_config(tmp_path, video)
    gone = tmp_path / "gone.mp4"
    done = edge_agent(
        "config", "check", str(config), env={"EDGE_AGENT__SOURCE__SPEC": str(gone)}, timeout=GUARD_S
    )
    (line,) = refused(done)
    assert line.endswith(
        f"environment variable EDGE_AGENT__SOURCE__SPEC: source.spec: no such file: {gone}"
    )


def test_config_check_lists_every_problem_at_once(tmp_path):
    state = tmp_path / "state-file"
    state.write_text("")
    config = write_config(
        tmp_path,
        tmp_path / "gone.mp4",
        state={"dir": str(state)},
        ads={"rules": str(tmp_path / "no-rules.yaml")},
        mqtt={"enabled": True, "tls": {"enabled": True, "ca_file": str(tmp_path / "ca.pem")}},
    )
    lines = refused(edge_agent("config", "check", str(config), timeout=GUARD_S))
    keys = ["state.dir", "ads.rules", "source.spec", "mqtt.tls.ca_file"]
    assert len(lines) == len(keys), lines
    for key in keys:
        assert sum(f": {key}: " in line for line in lines) == 1, (key, lines)


def test_run_starts_on_a_missing_rules_file_when_a_last_good_copy_exists(tmp_path, video):
    """The preflight does not refuse what the daemon copes with: the last good rules."""
    from tests.support.paths import REPO

    state = tmp_path / "state"
    state.mkdir()
    (state / "rules.last-good.yaml").write_text((REPO / "ads" / "rules.yaml").read_text())
    # Media in the copy resolve against the missing file's folder: they are there.
    (tmp_path / "creatives").symlink_to(REPO / "ads" / "creatives")
    config = write_config(tmp_path, video, ads={"rules": str(tmp_path / "no-rules.yaml")})
    done = edge_agent("run", "--config", str(config), timeout=120)
    assert "ads.rules: no such file" in done.stderr
    assert "starting with the last good rules" in done.stderr
    assert done.returncode == 0, done.stderr


def test_doctor_fails_the_config_check_on_what_run_would_refuse(tmp_path, video):
    import json

    state = tmp_path / "state-file"
    state.write_text("")
    config = write_config(tmp_path, video, state={"dir": str(state)})
    done = edge_agent(
        "doctor", "--config", str(config), "--only", "clock", "--json", timeout=GUARD_S
    )
    rows = {row["check"]: row for row in json.loads(done.stdout)}
    assert done.returncode == 1, done.stderr
    assert rows["config"]["status"] == "FAIL"
    assert f"state.dir: {state} is not a folder" in rows["config"]["detail"]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system needs root")
def test_a_full_state_disk_does_not_stop_the_start(tmp_path, video):
    """A full disk is for the daemon to ride out, not a setting to correct: systemd would
    otherwise restart a daemon that refuses to start, again and again, with a dark screen."""
    from edge_agent.commands.preflight import preflight
    from edge_agent.config import load_config

    state = tmp_path / "full"
    state.mkdir()
    # Two inodes: the root folder and one file; the next file cannot be created.
    mount = ["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=2", "tmpfs", str(state)]
    subprocess.run(mount, check=True)
    try:
        (state / "fill").write_text("")
        with pytest.raises(OSError, match="No space left"):
            (state / "one-more").write_text("")
        config = write_config(tmp_path, video, state={"dir": str(state)})
        findings = preflight(load_config(config, environ={}), config, environ={})
    finally:
        subprocess.run(["umount", str(state)], check=True)
    assert findings == []
