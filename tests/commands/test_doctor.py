"""`edge-agent doctor` run as an integrator runs it: real config files, models, sources and
brokers, no network beyond 127.0.0.1."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from edge_agent.cli import main
from edge_agent.commands import doctor
from edge_agent.commands.doctor import base
from edge_agent.commands.doctor.base import SERVICE, Status
from edge_agent.commands.doctor.broker import describe_connect_error, describe_refusal
from edge_agent.commands.doctor.clock import STA_UNSYNC, TIME_ERROR, check_clock, clock_result
from edge_agent.commands.doctor.config import parse_environment_file
from edge_agent.commands.doctor.service import KIOSK_SERVICE, service_result
from edge_agent.installed import default_models_dir
from edge_agent.telemetry.outbox import Outbox
from edge_agent.telemetry.stage import OUTBOX_FILE
from edge_agent.vision.models import detector_model
from edge_agent.vision.values import VisionSettings
from tests.support.mqtt_broker import free_port
from tests.support.paths import REPO

ASTRONAUT = REPO / "samples" / "astronaut.jpg"
# What a default config loads: the default detector and the int8 age and gender models.
DEFAULT_DETECTOR_MODEL = detector_model(VisionSettings(models_dir=Path()).detector)
NEEDED_MODELS = (DEFAULT_DETECTOR_MODEL, "gender_int8.tflite", "age_int8.tflite")


@pytest.fixture(autouse=True)
def no_installed_files(tmp_path, monkeypatch):
    """The host's /etc/edge-agent, if it has one, must not leak into what a test sees."""
    monkeypatch.setattr(base, "DEFAULT_CONFIG", tmp_path / "no-config.yaml")
    monkeypatch.setattr(base, "DEFAULT_ENV_FILE", tmp_path / "no-environment")
    for name in list(os.environ):
        if name.upper().startswith("EDGE_AGENT__"):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, **sections: dict[str, object]) -> Path:
    """A config whose source is a still image played at 30 fps, with ads and MQTT off and the
    state folder in tmp_path; `sections` replace or add whole sections."""
    config: dict[str, object] = {
        "source": {"spec": str(ASTRONAUT), "fps": 30},
        "ads": {"enabled": False},
        "mqtt": {"enabled": False},
        "state": {"dir": str(tmp_path / "state")},
        **sections,
    }
    path = tmp_path / "config.yaml"
    # JSON is YAML.
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


def run_doctor(capsys, config: Path | None, *options: str) -> tuple[int, dict[str, dict]]:
    """The real command with --json: (exit code, rows by check name)."""
    argv = ["doctor", "--json", *options]
    if config is not None:
        argv += ["--config", str(config)]
    code = main(argv)
    rows = json.loads(capsys.readouterr().out)
    names, order = [row["check"] for row in rows], [check.name for check in doctor.CHECKS]
    assert names == sorted(names, key=order.index), "rows come in the documented order"
    return code, {row["check"]: row for row in rows}


def mqtt_section(port: int, **settings: object) -> dict[str, object]:
    return {"enabled": True, "host": "127.0.0.1", "port": port, **settings}


# -- broker ------------------------------------------------------------------------------------


def test_everything_passes_with_a_reachable_broker(tmp_path, capsys, broker):
    # A small outbox bound: the disk check must not depend on the test machine's free space.
    config = write_config(tmp_path, mqtt=mqtt_section(broker.port, outbox_max_mb=1))
    code, rows = run_doctor(
        capsys, config, "--skip", "clock", "--skip", "service", "--camera-seconds", "5"
    )
    assert code == 0, rows
    statuses = {name: row["status"] for name, row in rows.items()}
    assert statuses == {
        "config": "PASS",
        "privacy": "PASS",
        "models": "PASS",
        "runtime": "PASS",
        "rules": "SKIP",  # ads are off
        "camera": "PASS",
        "broker": "PASS",
        "disk": "PASS",
        "clock": "SKIP",
        "service": "SKIP",
    }
    assert rows["broker"]["detail"] == f"connected to 127.0.0.1:{broker.port} (no TLS, anonymously)"
    assert rows["clock"]["detail"] == "skipped (--skip)"
    assert all(row["fix"] is None for row in rows.values())
    # Connecting must not create the outbox, the daemon's file.
    assert not (tmp_path / "state" / OUTBOX_FILE).exists()


def test_nothing_listening_is_refused_with_a_fix(tmp_path, capsys):
    port = free_port()
    config = write_config(tmp_path, mqtt=mqtt_section(port))
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert code == 1
    assert list(rows) == ["config", "broker"]
    broker_row = rows["broker"]
    assert broker_row["status"] == "FAIL"
    assert f"connection refused by 127.0.0.1:{port}" in broker_row["detail"]
    assert "mosquitto" in broker_row["fix"]


def test_wrong_password_is_named_as_the_refusal(tmp_path, capsys, broker_factory):
    broker = broker_factory(users={"display": "right-horse-battery"})
    settings = mqtt_section(broker.port, username="display", password="wrong-horse-battery")
    config = write_config(tmp_path, mqtt=settings)
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert code == 1
    row = rows["broker"]
    assert row["status"] == "FAIL"
    assert row["detail"].startswith(f"127.0.0.1:{broker.port} refused the login")
    assert "user display" in row["detail"]
    assert "EDGE_AGENT__MQTT__PASSWORD" in row["fix"]
    assert "horse" not in json.dumps(rows)


def test_password_from_the_env_file_only(tmp_path, capsys, broker_factory):
    broker = broker_factory(users={"display": "right-horse-battery"})
    config = write_config(tmp_path, mqtt=mqtt_section(broker.port, username="display"))
    env_file = tmp_path / "environment"
    env_file.write_text(
        "# secrets for edge-agent.service\n"
        "\n"
        'EDGE_AGENT__MQTT__PASSWORD="right-horse-battery"\n'
        "EDGE_AGENT__MQTT__KEEPALIVE_S=20\n"
    )
    code, rows = run_doctor(capsys, config, "--only", "broker", "--env-file", str(env_file))
    assert code == 0, rows
    assert rows["config"]["detail"] == f"{config} loaded + 2 overrides from {env_file}"
    assert rows["broker"]["status"] == "PASS"
    assert rows["broker"]["detail"].endswith("(no TLS, as user display)")
    # Without the file the same config is refused: the password really came from it.
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert (code, rows["broker"]["status"]) == (1, "FAIL")


def test_unreadable_env_file_is_a_failed_row_not_a_crash(tmp_path, capsys):
    config = write_config(tmp_path)
    missing = tmp_path / "absent-environment"
    code, rows = run_doctor(capsys, config, "--only", "privacy", "--env-file", str(missing))
    assert code == 1
    assert rows["config"]["status"] == "FAIL"
    assert f"cannot read {missing}" in rows["config"]["detail"]
    assert rows["config"]["fix"] == "check the path given to --env-file"
    assert rows["privacy"]["status"] == "PASS"  # the config itself loaded; the rest still runs


def test_environment_file_syntax():
    text = (
        "# comment\n"
        "; also a comment\n"
        "\n"
        "PLAIN=value with spaces  \n"
        "  SPACED = padded\n"
        'DOUBLE="say \\"hi\\" # not a comment"\n'
        "SINGLE='$literal \\n'\n"
        "EMPTY=\n"
        "no equals sign here\n"
    )
    assert parse_environment_file(text) == {
        "PLAIN": "value with spaces",
        "SPACED": "padded",
        "DOUBLE": 'say "hi" # not a comment',
        "SINGLE": "$literal \\n",
        "EMPTY": "",
    }


# -- models ------------------------------------------------------------------------------------


def test_corrupted_and_missing_models_are_all_named_with_their_sha256(tmp_path, capsys):
    source = default_models_dir()
    models = tmp_path / "models"
    models.mkdir()
    for name in ("manifest.json", *NEEDED_MODELS):
        shutil.copyfile(source / name, models / name)
    corrupted = models / "gender_int8.tflite"
    data = bytearray(corrupted.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    (models / "age_int8.tflite").unlink()
    manifest = json.loads((models / "manifest.json").read_text())["files"]

    config = write_config(tmp_path, vision={"models_dir": str(models)})
    code, rows = run_doctor(capsys, config, "--only", "models", "--only", "runtime")
    assert code == 1
    row = rows["models"]
    assert row["status"] == "FAIL"
    problems = row["detail"].splitlines()
    assert len(problems) == 2, problems
    corrupt_line, missing_line = problems
    assert corrupt_line.startswith(f"{corrupted}: sha256 is ")
    assert f"expected {manifest['gender_int8.tflite']['sha256']}" in corrupt_line
    assert missing_line == (
        f"{models / 'age_int8.tflite'}: model file missing"
        f" (expected sha256 {manifest['age_int8.tflite']['sha256']})"
    )
    assert str(models) in row["fix"]
    assert rows["runtime"]["status"] == "SKIP"


@pytest.mark.parametrize("damage", ["corrupted", "missing"])
def test_run_refuses_a_bad_model_with_the_message_doctor_shows(tmp_path, capsys, damage):
    """The acceptance pair: `run` exits non-zero naming the file and its expected sha256, and
    doctor's models row says exactly the same."""
    models = tmp_path / "models"
    shutil.copytree(default_models_dir(), models, ignore=shutil.ignore_patterns("*float32*"))
    detector = models / DEFAULT_DETECTOR_MODEL
    if damage == "missing":
        detector.unlink()
    else:
        detector.write_bytes(detector.read_bytes()[:-1] + b"\0")
    expected = json.loads((models / "manifest.json").read_text())["files"][detector.name]["sha256"]
    config = write_config(tmp_path, vision={"models_dir": str(models)})

    assert main(["run", "--config", str(config), "--max-frames", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"edge-agent: error: {detector}: ")
    assert f"expected {expected}" in error or f"expected sha256 {expected}" in error

    code, rows = run_doctor(capsys, config, "--only", "models")
    assert code == 1 and rows["models"]["status"] == "FAIL"
    assert rows["models"]["detail"] == error.removeprefix("edge-agent: error: ")


def test_missing_edgetpu_twins_are_reported(tmp_path, capsys):
    config = write_config(tmp_path, vision={"delegate": "edgetpu"})
    code, rows = run_doctor(capsys, config, "--only", "models")
    assert code == 1
    problems = rows["models"]["detail"].splitlines()
    assert len(problems) == 3
    assert all(" missing (the Edge TPU twin of " in line for line in problems)
    assert "gender_int8_edgetpu.tflite" in rows["models"]["detail"]


# -- camera ------------------------------------------------------------------------------------


def test_camera_reports_resolution_and_rate(tmp_path, capsys):
    height, width = cv2.imread(str(ASTRONAUT)).shape[:2]
    code, rows = run_doctor(capsys, write_config(tmp_path), "--only", "camera")
    assert code == 0
    row = rows["camera"]
    assert row["status"] == "PASS"
    assert row["detail"].startswith(f"images {ASTRONAUT}: {width}x{height}, ")
    assert " fps" in row["detail"]


def test_video_file_that_ends_early_still_passes(tmp_path, capsys):
    video = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for _ in range(3):
        writer.write(cv2.resize(cv2.imread(str(ASTRONAUT)), (320, 240)))
    writer.release()
    config = write_config(tmp_path, source={"spec": str(video), "loop": False, "realtime": False})
    code, rows = run_doctor(capsys, config, "--only", "camera")
    assert code == 0
    assert rows["camera"]["detail"] == f"video file {video}: 320x240, 3 frames (end of the file)"


def test_missing_source_fails(tmp_path, capsys):
    missing = tmp_path / "no-such-video.mp4"
    config = write_config(tmp_path, source={"spec": str(missing)})
    code, rows = run_doctor(capsys, config, "--only", "camera", "--camera-seconds", "2")
    assert code == 1
    row = rows["camera"]
    assert row["status"] == "FAIL"
    assert row["detail"] == f"video file not found: {missing}"
    assert "source.spec" in row["fix"]


# -- config, privacy, rules --------------------------------------------------------------------


def test_config_error_names_file_and_line_and_skips_the_rest(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  spec: samples/demo.mp4\nvision:\n  threads: 0\n")
    code, rows = run_doctor(capsys, config)
    assert code == 1
    assert rows["config"]["status"] == "FAIL"
    assert rows["config"]["detail"].startswith(f"{config}:4: vision.threads:")
    assert "edge-agent config check" in rows["config"]["fix"]
    needs_config = [check.name for check in doctor.CHECKS if check.needs_config]
    assert needs_config == ["privacy", "models", "runtime", "rules", "camera", "broker", "disk"]
    for name in needs_config:
        assert (rows[name]["status"], rows[name]["detail"]) == ("SKIP", "no valid config")
    # The clock and the service do not depend on the config.
    assert rows["clock"]["status"] in {"PASS", "WARN", "FAIL"}


def test_annotated_frames_fail_privacy(tmp_path, capsys):
    frames = tmp_path / "annotated"
    config = write_config(tmp_path, debug={"save_annotated_frames_dir": str(frames)})
    code, rows = run_doctor(capsys, config, "--only", "privacy")
    assert code == 1
    row = rows["privacy"]
    assert row["status"] == "FAIL"
    assert str(frames) in row["detail"] and "faces" in row["detail"]
    assert "debug.save_annotated_frames_dir" in row["fix"]


def test_rules_pass_and_fail_with_file_and_line(tmp_path, capsys):
    rules = REPO / "ads" / "rules.yaml"
    config = write_config(tmp_path, ads={"enabled": True, "rules": str(rules), "player": "none"})
    code, rows = run_doctor(capsys, config, "--only", "rules")
    assert code == 0
    assert rows["rules"]["status"] == "PASS"
    assert rows["rules"]["detail"].startswith(f"{rules}: ")
    assert " rules (" in rows["rules"]["detail"] and " creatives" in rows["rules"]["detail"]

    broken = tmp_path / "rules.yaml"
    broken.write_text("version: 1\ndefault_playlist: [nowhere]\ncreatives: []\nrules: []\n")
    config = write_config(tmp_path, ads={"enabled": True, "rules": str(broken), "player": "none"})
    code, rows = run_doctor(capsys, config, "--only", "rules")
    assert code == 1
    assert rows["rules"]["status"] == "FAIL"
    problems = rows["rules"]["detail"].splitlines()
    assert f"{broken}:3: creatives: " in problems[0]
    assert all(line.startswith(f"{broken}:") for line in problems)
    assert "edge-agent rules check" in rows["rules"]["fix"]


# -- disk --------------------------------------------------------------------------------------


def test_disk_counts_the_outbox_backlog_without_touching_it(tmp_path, capsys):
    state = tmp_path / "state"
    config = write_config(tmp_path)

    def files() -> dict[str, int]:
        return {path.name: path.stat().st_mtime_ns for path in state.iterdir()}

    with Outbox(state / OUTBOX_FILE) as outbox:
        for number in range(3):
            outbox.put("edge-agent/s/d/report", b"{}", message_id=f"m{number}")
        # As while the daemon runs: the journal files are there, and the count includes them.
        before = files()
        code, rows = run_doctor(capsys, config, "--only", "disk")
        assert code == 0
        assert "; 3 messages wait in the outbox, the oldest " in rows["disk"]["detail"]
        assert set(files()) == set(before)
    # As after a clean stop: one file, which must stay the only one, unchanged.
    before = files()
    assert list(before) == [OUTBOX_FILE]
    code, rows = run_doctor(capsys, config, "--only", "disk")
    assert code == 0
    row = rows["disk"]
    assert row["status"] == "PASS"
    assert re.fullmatch(
        rf"[\d,]+ MB free for {re.escape(str(state))}; 3 messages wait in the outbox,"
        r" the oldest \d+ s old",
        row["detail"],
    ), row["detail"]
    assert files() == before


def test_disk_fails_when_the_outbox_could_not_fit(tmp_path, capsys):
    config = write_config(tmp_path, mqtt={"enabled": False, "outbox_max_mb": 1e12})
    # MQTT off: the outbox bound does not apply.
    code, rows = run_doctor(capsys, config, "--only", "disk")
    assert (code, rows["disk"]["status"]) == (0, "PASS")
    config = write_config(tmp_path, mqtt=mqtt_section(free_port(), outbox_max_mb=1e12))
    code, rows = run_doctor(capsys, config, "--only", "disk")
    assert code == 1
    assert rows["disk"]["status"] == "FAIL"
    assert "it does not exist yet" in rows["disk"]["detail"]
    assert "mqtt.outbox_max_mb" in rows["disk"]["fix"]
    assert not (tmp_path / "state").exists()


# -- clock and service -------------------------------------------------------------------------


def test_clock_decision():
    synchronised = clock_result(0, 0x2001, 16_500)  # TIME_OK, STA_PLL | STA_NANO
    assert synchronised.status is Status.PASS
    assert synchronised.detail == "synchronised (NTP), estimated maximum error 16.5 ms"
    assert synchronised.fix is None
    for unsynchronised in (
        clock_result(TIME_ERROR, 0, 16_000_000),
        clock_result(0, STA_UNSYNC, 16_000_000),
    ):
        assert unsynchronised.status is Status.FAIL
        assert "not synchronised" in unsynchronised.detail
        assert "timedatectl set-ntp true" in unsynchronised.fix


def test_clock_reads_the_kernel_without_raising(tmp_path, capsys):
    result = check_clock(None)  # type: ignore[arg-type]  # the clock needs no config
    assert result.check == "clock"
    # WARN: this kernel would not say (a sandbox); PASS or FAIL depend on the host's NTP.
    assert result.status in {Status.PASS, Status.FAIL, Status.WARN}
    code, rows = run_doctor(capsys, write_config(tmp_path), "--only", "clock")
    assert rows["clock"]["status"] in {"PASS", "FAIL", "WARN"}
    assert code == (1 if rows["clock"]["status"] == "FAIL" else 0)


def test_service_decision():
    running = service_result(
        {
            SERVICE: ("enabled", "active"),
            KIOSK_SERVICE: ("enabled", "active"),
        }
    )
    assert running.status is Status.PASS
    assert running.detail == (
        "edge-agent.service enabled, active; edge-agent-kiosk.service enabled, active"
    )
    stopped = service_result({SERVICE: ("enabled", "failed"), KIOSK_SERVICE: ("not-found", "")})
    assert stopped.status is Status.WARN
    assert "edge-agent.service enabled, failed" in stopped.detail
    assert "edge-agent-kiosk.service not installed" in stopped.detail
    assert "journalctl -u edge-agent" in stopped.fix
    absent = service_result({SERVICE: ("", ""), KIOSK_SERVICE: ("", "")})
    assert absent.status is Status.PASS
    assert "not installed" in absent.detail


# -- the command itself ------------------------------------------------------------------------


def test_table_output_and_summary(tmp_path, capsys, broker_factory):
    broker = broker_factory(users={"display": "right-horse-battery"})
    settings = mqtt_section(broker.port, username="display", password="right-horse-battery")
    config = write_config(
        tmp_path, mqtt=settings, debug={"save_annotated_frames_dir": str(tmp_path / "frames")}
    )
    code = main(["doctor", "--config", str(config), "--only", "privacy", "--only", "broker"])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert any(line.split()[:2] == ["privacy", "FAIL"] for line in lines if line.strip())
    assert any(line.split()[:2] == ["broker", "PASS"] for line in lines if line.strip())
    assert lines[-1] == "2 passed, 0 warnings, 1 failed"
    assert "horse" not in out
    assert "\x1b[" not in out  # no colours when stdout is not a terminal


def test_bad_usage_exits_2(capsys):
    for argv in (["--skip", "nonsense"], ["--camera-seconds", "0"], ["--skip", "config"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["doctor", *argv])
        assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_module_imports_nothing_heavy():
    heavy = ["cv2", "numpy", "paho", "ai_edge_litert", "tflite_runtime", "rich", "yaml"]
    code = (
        "import sys, edge_agent.commands.doctor\n"
        f"print([name for name in {heavy!r} if name in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert out.strip() == "[]"


def test_tls_trusted_and_untrusted(tmp_path, capsys, broker_factory):
    broker = broker_factory(tls=True)
    tls = {"enabled": True, "ca_file": str(broker.ca_file)}
    config = write_config(tmp_path, mqtt=mqtt_section(broker.tls_port, tls=tls))
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert code == 0, rows
    assert rows["broker"]["detail"].endswith("(TLS, anonymously)")

    # The system's CAs do not know the broker's test CA.
    config = write_config(tmp_path, mqtt=mqtt_section(broker.tls_port, tls={"enabled": True}))
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert code == 1
    assert rows["broker"]["detail"].startswith(
        f"TLS: the certificate of 127.0.0.1:{broker.tls_port} is not trusted"
    )
    assert "mqtt.tls.ca_file" in rows["broker"]["fix"]

    # TLS asked of a plain listener.
    config = write_config(tmp_path, mqtt=mqtt_section(broker.port, tls=tls))
    code, rows = run_doctor(capsys, config, "--only", "broker")
    assert code == 1
    assert rows["broker"]["detail"].startswith(f"TLS handshake with 127.0.0.1:{broker.port}")


@pytest.mark.parametrize(
    ("error", "detail", "fix"),
    [
        (
            socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
            "cannot resolve the host name 'broker.example': Name or service not known",
            "DNS",
        ),
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
            "connection refused by broker.example:1883: nothing listens there",
            "sudo apt install mosquitto",
        ),
        (
            TimeoutError("timed out"),
            "no answer from broker.example:1883 within 5 s (timed out)",
            "firewall",
        ),
        (
            OSError(errno.EHOSTUNREACH, "No route to host"),
            "broker.example:1883 is unreachable: No route to host",
            "mqtt.host",
        ),
    ],
)
def test_connection_errors_read_as_causes(error, detail, fix):
    text, advice = describe_connect_error(error, "broker.example", 1883, timeout=5, tls=False)
    assert text == detail
    assert fix in advice


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        (134, "h:1 refused the login: bad user name or password for user display"),
        (
            135,
            "h:1 refused the login: user display is not authorised"
            " (wrong password or unknown user)",
        ),
        (136, "h:1 refused the connection: Server unavailable"),
    ],
)
def test_connack_refusals(code, detail):
    reason = ReasonCode(PacketTypes.CONNACK, identifier=code)
    text, fix = describe_refusal(reason, "h:1", "display")
    assert text == detail
    assert ("EDGE_AGENT__MQTT__PASSWORD" in fix) == (code != 136)


def test_installed_files_are_the_defaults(tmp_path, capsys, monkeypatch):
    config = write_config(tmp_path)
    unreadable = tmp_path / "environment"
    unreadable.mkdir()  # as good as root's 0600 file for a test that may itself run as root
    monkeypatch.setattr(base, "DEFAULT_CONFIG", config)
    monkeypatch.setattr(base, "DEFAULT_ENV_FILE", unreadable)
    code, rows = run_doctor(capsys, None, "--only", "privacy")
    # Not given on the command line: an unreadable default is a warning, not a failure.
    assert code == 0
    assert rows["config"]["status"] == "WARN"
    assert rows["config"]["detail"].startswith(f"{config} loaded; cannot read {unreadable}")
    assert "sudo edge-agent doctor" in rows["config"]["fix"]
