"""Check this display and say what to fix: one row per check, PASS, WARN, FAIL or SKIP.

Checks, in order:
  config    the configuration loads (file + environment overrides, as the service sees them)
  privacy   no debug option writes face images to disk
  models    every model file the config needs is there and has the manifest's sha256
  runtime   the TFLite interpreter imports and the vision pipeline runs with the delegate
  rules     the ad rules file loads (when ads are enabled)
  camera    the source opens and delivers frames: resolution and measured fps
  broker    one MQTT connection with the configured address, TLS and login (no publishing)
  disk      free space for the outbox in state.dir; messages waiting in the outbox
  clock     the kernel clock is synchronised (NTP), so timestamps are right
  service   the edge-agent systemd units: enabled, active

Run it as root (sudo) on a display so it reads /etc/edge-agent/environment, where the service's
secrets are. Stop the service first if the camera check says the camera is busy.

Exit status: 0 when no check failed (warnings allowed), 1 when one did, 2 for bad usage.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import json
import logging
import os
import secrets
import shutil
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent import installed

if TYPE_CHECKING:
    from edge_agent.config import Config

DEFAULT_CONFIG = installed.CONFIG
DEFAULT_ENV_FILE = installed.ENVIRONMENT
SERVICE = "edge-agent.service"
KIOSK_SERVICE = "edge-agent-kiosk.service"

# The camera passes once this many frames arrived; the rate is then measured over up to
# FPS_WINDOW_S more (a rate from 5 frames of a 30 fps camera is mostly noise).
MIN_CAMERA_FRAMES = 5
FPS_WINDOW_S = 1.0
# Free space wanted in state.dir when MQTT is off and no outbox grows there.
MIN_FREE_MB_WITHOUT_OUTBOX = 50.0

# adjtimex(2): the clock state TIME_ERROR and the status bit "not synchronised".
TIME_ERROR = 5
STA_UNSYNC = 0x0040

# MQTT 5 reason codes paho reports for the MQTT 3.1.1 CONNACK return codes 4 and 5.
BAD_USER_NAME_OR_PASSWORD = 134
NOT_AUTHORIZED = 135

PASSWORD_FIX = (
    "set the broker login: mqtt.username in the config, and the password as"
    f" EDGE_AGENT__MQTT__PASSWORD=... in {DEFAULT_ENV_FILE} (or mqtt.password_file);"
    " then sudo systemctl restart edge-agent"
)


class Status(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    status: Status
    detail: str
    fix: str | None = None  # what a person can do about a WARN or FAIL

    def to_json(self) -> dict[str, str | None]:
        return {
            "check": self.check,
            "status": str(self.status),
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass
class DoctorRun:
    """What the checks share: the options, the loaded config, and the results so far."""

    config_path: Path | None
    env_file: Path | None
    env_file_explicit: bool
    camera_seconds: float
    timeout: float
    config: Config | None = None
    environ: dict[str, str] = field(default_factory=dict)
    results: dict[str, CheckResult] = field(default_factory=dict)

    def status_of(self, check: str) -> Status | None:
        result = self.results.get(check)
        return None if result is None else result.status


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    run: Callable[[DoctorRun], CheckResult]
    needs_config: bool = True


# --------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = [check.name for check in CHECKS if check.name != "config"]
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"config.yaml (default: {DEFAULT_CONFIG} when it exists, else the built-in defaults)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="KEY=VALUE environment overrides (secrets), read as systemd's EnvironmentFile="
        f" reads them (default: {DEFAULT_ENV_FILE} when it exists)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=names,
        metavar="CHECK",
        help=f"leave this check out; repeatable. One of: {', '.join(names)}",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=names,
        metavar="CHECK",
        help="run only this check (and config); repeatable",
    )
    parser.add_argument("--json", action="store_true", help="print the results as a JSON list")
    parser.add_argument(
        "--camera-seconds",
        type=_positive_seconds,
        default=10.0,
        metavar="S",
        help="how long to wait for camera frames (default 10)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=5.0,
        metavar="S",
        help="how long to wait for the MQTT broker (default 5)",
    )


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run the checks, print the table (or JSON); 1 when any check failed, else 0."""
    env_file = args.env_file
    if env_file is None and DEFAULT_ENV_FILE.exists():
        env_file = DEFAULT_ENV_FILE
    config_path = args.config
    if config_path is None and DEFAULT_CONFIG.exists():
        config_path = DEFAULT_CONFIG
    doctor = DoctorRun(
        config_path=config_path,
        env_file=env_file,
        env_file_explicit=args.env_file is not None,
        camera_seconds=args.camera_seconds,
        timeout=args.timeout,
    )
    with _quiet_logs(getattr(args, "verbose", False)):
        results = run_checks(doctor, skip=set(args.skip), only=set(args.only))
    results = _without_secrets(results, _secrets_of(doctor))
    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2))
    else:
        print_table(results)
    return 1 if any(result.status is Status.FAIL for result in results) else 0


def run_checks(doctor: DoctorRun, skip: set[str], only: set[str]) -> list[CheckResult]:
    results = []
    for check in CHECKS:
        if only and check.name != "config" and check.name not in only:
            continue
        if check.name in skip:
            result = CheckResult(check.name, Status.SKIP, "skipped (--skip)")
        elif check.needs_config and doctor.config is None:
            result = CheckResult(check.name, Status.SKIP, "no valid config")
        else:
            try:
                result = check.run(doctor)
            except Exception as error:  # a doctor that crashes tells nobody anything
                result = CheckResult(
                    check.name,
                    Status.FAIL,
                    f"the check itself broke: {type(error).__name__}: {error}",
                    "report this, with the output of `edge-agent -v doctor`",
                )
        doctor.results[check.name] = result
        results.append(result)
    return results


@contextlib.contextmanager
def _quiet_logs(verbose: bool) -> Iterator[None]:
    # The stages log at INFO as they open ("opened video device 0"): noise around a table.
    logger = logging.getLogger("edge_agent")
    previous = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _secrets_of(doctor: DoctorRun) -> list[str]:
    if doctor.config is None:
        return []
    try:
        password = doctor.config.telemetry_settings().link.password
    except ValueError:
        return []
    # A one- or two-letter password would turn every such letter into stars.
    return [password] if password and len(password) >= 3 else []


def _without_secrets(results: list[CheckResult], hidden: list[str]) -> list[CheckResult]:
    """No check puts the password into a row; this is the belt to those braces."""

    def scrub(text: str | None) -> str | None:
        for secret in hidden:
            text = None if text is None else text.replace(secret, "***")
        return text

    return [CheckResult(r.check, r.status, scrub(r.detail) or "", scrub(r.fix)) for r in results]


# --------------------------------------------------------------------------------------------
# Output

_STATUS_STYLE = {
    Status.PASS: "green",
    Status.WARN: "yellow",
    Status.FAIL: "bold red",
    Status.SKIP: "dim",
}


def print_table(results: list[CheckResult]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Piped or redirected: no colours, and a width that keeps the fix column readable.
    terminal = sys.stdout.isatty()
    console = Console(highlight=False, width=None if terminal else 100, no_color=not terminal)
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("detail", ratio=1, overflow="fold")
    table.add_column("fix", ratio=1, overflow="fold")
    for result in results:
        problems = result.detail.splitlines()
        # One problem a line is lost once wrapped: mark where each one starts.
        detail = "\n".join(f"- {line}" for line in problems) if len(problems) > 1 else result.detail
        # Text, not markup: details hold brackets ("rules[2].when") that rich would eat.
        table.add_row(
            result.check,
            Text(str(result.status), style=_STATUS_STYLE[result.status]),
            Text(detail),
            Text(result.fix or ""),
        )
    console.print(table)
    console.print(summary_line(results))


def summary_line(results: list[CheckResult]) -> str:
    counts = {status: sum(r.status is status for r in results) for status in Status}
    warnings = counts[Status.WARN]
    parts = [
        f"{counts[Status.PASS]} passed",
        f"{warnings} warning{'' if warnings == 1 else 's'}",
        f"{counts[Status.FAIL]} failed",
    ]
    if counts[Status.SKIP]:
        parts.append(f"{counts[Status.SKIP]} skipped")
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------
# config


def parse_environment_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: # and ; start a comment line,
    blank lines are ignored, a value may be in single or double quotes."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue  # systemd ignores such a line too (and logs it)
        values[key] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out, chars = [], iter(value[1:-1])
        for char in chars:
            # Inside double quotes systemd takes a backslash only before " \ ` $.
            if char == "\\":
                following = next(chars, "")
                out.append(following if following in '"\\`$' else char + following)
            else:
                out.append(char)
        return "".join(out)
    out, chars = [], iter(value)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def check_config(doctor: DoctorRun) -> CheckResult:
    from edge_agent.config import ENV_PREFIX, load_config

    environ = dict(os.environ)
    env_note, env_problem, env_status, env_fix = "", "", Status.PASS, None
    if doctor.env_file is not None:
        try:
            from_file = parse_environment_file(doctor.env_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            env_problem = f"cannot read {doctor.env_file} ({reason}), so its overrides are missing"
            # The default file is root's: without sudo that is expected, not a failure.
            env_status = Status.FAIL if doctor.env_file_explicit else Status.WARN
            env_fix = (
                "check the path given to --env-file"
                if isinstance(error, FileNotFoundError)
                else f"run as root (sudo edge-agent doctor) so {doctor.env_file} is read"
            )
        else:
            environ.update(from_file)
            overrides = sum(name.upper().startswith(ENV_PREFIX) for name in from_file)
            env_note = (
                f" + {overrides} override{'' if overrides == 1 else 's'} from {doctor.env_file}"
            )
    doctor.environ = environ
    try:
        doctor.config = load_config(doctor.config_path, environ=environ)
    except ValueError as error:  # ConfigError: every problem, with file, line and key path
        target = doctor.config_path or "a config file"
        return CheckResult(
            "config",
            Status.FAIL,
            "\n".join(filter(None, [str(error), env_problem])),
            f"correct the lines named (`edge-agent config check {target}` lists every"
            " problem; config.yaml in the repository documents each key)",
        )
    if doctor.config_path is None:
        loaded = f"no {DEFAULT_CONFIG}: built-in defaults{env_note}"
    else:
        loaded = f"{doctor.config_path} loaded{env_note}"
    detail = f"{loaded}; {env_problem}" if env_problem else loaded
    return CheckResult("config", env_status, detail, env_fix)


# --------------------------------------------------------------------------------------------
# privacy


def check_privacy(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    folder = doctor.config.debug.save_annotated_frames_dir
    if folder is None:
        return CheckResult("privacy", Status.PASS, "no face images are written to disk")
    variable = "EDGE_AGENT__DEBUG__SAVE_ANNOTATED_FRAMES_DIR"
    where = (
        f"unset {variable} (set in the environment)"
        if any(name.upper() == variable for name in doctor.environ)
        else "remove debug.save_annotated_frames_dir from the config (or set it to null)"
    )
    return CheckResult(
        "privacy",
        Status.FAIL,
        f"debug.save_annotated_frames_dir is {folder}: frames with people's faces are written"
        " to disk",
        f"{where}, delete what is in {folder}, restart the service; a bench-only debug aid,"
        " never for a store",
    )


# --------------------------------------------------------------------------------------------
# models


def needed_model_names(config: Config) -> list[str]:
    from edge_agent.vision.models import age_model, detector_model, gender_model

    vision = config.vision
    return [
        detector_model(vision.detector),
        gender_model(vision.precision),
        age_model(vision.precision),
    ]


def check_models(doctor: DoctorRun) -> CheckResult:
    from edge_agent.vision.models import ModelFileError, expected_sha256, model_path
    from edge_agent.vision.runtime import edgetpu_model_path

    assert doctor.config is not None
    vision = doctor.config.vision
    folder = doctor.config.vision_settings().models_dir
    names = needed_model_names(doctor.config)
    problems: list[str] = []
    unverified: list[str] = []
    missing_twins: list[str] = []

    def verify(name: str) -> None:
        try:
            model_path(folder, name)
        except ModelFileError as error:
            if str(error) not in problems:  # a missing manifest says so once, not per file
                problems.append(str(error))

    for name in names:
        verify(name)
    if vision.delegate == "edgetpu":
        for name in names:
            twin = edgetpu_model_path(Path(name)).name
            try:
                expected_sha256(folder, twin)
            except ModelFileError:
                # Compiled on the integrator's side: no checksum to hold it to, only presence.
                if (folder / twin).is_file():
                    unverified.append(twin)
                else:
                    missing_twins.append(name)
                    problems.append(f"{twin}: missing (the Edge TPU twin of {name})")
            else:
                verify(twin)
    if problems:
        fixes = []
        if len(missing_twins) < len(problems):
            fixes.append(
                "restore the files from the edge-agent release (its models/ folder) or rerun"
                " scripts/convert_models.py"
            )
        if missing_twins:
            fixes.append(
                f"compile {', '.join(missing_twins)} with edgetpu_compiler, or set"
                " vision.delegate: cpu"
            )
        fixes.append(f"vision.models_dir is {folder}")
        return CheckResult("models", Status.FAIL, "\n".join(problems), "; ".join(fixes))
    detail = f"{len(names)} files verified in {folder}: {', '.join(names)}"
    if unverified:
        detail += f"; Edge TPU twins present but not in the manifest: {', '.join(unverified)}"
    return CheckResult("models", Status.PASS, detail)


# --------------------------------------------------------------------------------------------
# runtime


_BACKEND_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def check_runtime(doctor: DoctorRun) -> CheckResult:
    from importlib import metadata

    from edge_agent.vision.models import ModelFileError
    from edge_agent.vision.runtime import (
        DelegateUnavailableError,
        RuntimeUnavailableError,
        load_backend,
    )

    assert doctor.config is not None
    if doctor.status_of("models") is Status.FAIL:
        return CheckResult("runtime", Status.SKIP, "the model files are not right (see models)")
    try:
        backend, _ = load_backend()
    except RuntimeUnavailableError as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            str(error),
            "install the interpreter into edge-agent's virtualenv: pip install ai-edge-litert",
        )
    distribution = _BACKEND_DISTRIBUTIONS.get(backend, backend)
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "version unknown"
    vision = doctor.config.vision
    try:
        import numpy as np

        from edge_agent.vision.analyzer import VisionPipeline

        pipeline = VisionPipeline(doctor.config.vision_settings())
        started = time.perf_counter()
        pipeline.faces(np.zeros((480, 640, 3), dtype=np.uint8))
        elapsed_ms = (time.perf_counter() - started) * 1000
    except DelegateUnavailableError as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "install libedgetpu1-std, plug the Coral in (USB 3 port), or set vision.delegate: cpu",
        )
    except ModelFileError as error:  # the models check was skipped
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "restore the model files (see the models check)",
        )
    except FileNotFoundError as error:  # an Edge TPU twin that is not there
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "put the _edgetpu.tflite models into vision.models_dir or set vision.delegate: cpu",
        )
    except Exception as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: the vision pipeline did not run:"
            f" {type(error).__name__}: {error}",
            f"reinstall edge-agent and {distribution}; see `edge-agent -v doctor --only runtime`",
        )
    return CheckResult(
        "runtime",
        Status.PASS,
        f"{distribution} {version}; {vision.detector} + {vision.precision} age/gender on"
        f" {vision.delegate}, {vision.threads} thread{'' if vision.threads == 1 else 's'}:"
        f" a blank 640x480 frame in {elapsed_ms:.0f} ms",
    )


# --------------------------------------------------------------------------------------------
# rules


def check_rules(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    ads = doctor.config.ads
    if not ads.enabled:
        return CheckResult("rules", Status.SKIP, "ads are off (ads.enabled: false)")
    from edge_agent.ads.rules import load_rules

    try:
        table = load_rules(ads.rules, doctor.config.vision.brackets)
    except ValueError as error:  # RulesError: file:line: key: reason, one per problem
        relative = ""
        if not ads.rules.is_absolute():
            relative = (
                f"; ads.rules is relative to the working directory ({Path.cwd()}):"
                " an absolute path is safer"
            )
        return CheckResult(
            "rules",
            Status.FAIL,
            str(error),
            f"correct the lines named (`edge-agent rules check {ads.rules}`){relative}",
        )
    enabled = sum(rule.enabled for rule in table.rules)
    return CheckResult(
        "rules",
        Status.PASS,
        f"{table.source}: {len(table.rules)} rules ({enabled} enabled),"
        f" {len(table.creatives)} creatives, version {table.version_id}",
    )


# --------------------------------------------------------------------------------------------
# camera


@dataclass
class _CameraOutcome:
    """Written by the reading thread, read by the doctor once the thread is done or late."""

    described: str = ""
    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    size: tuple[int, int] | None = None
    ended: bool = False  # a file without loop reached its end
    error: str | None = None


def _read_camera(config: Config, seconds: float, outcome: _CameraOutcome) -> None:
    from edge_agent.sources.base import EndOfStream
    from edge_agent.sources.factory import open_options, open_source

    deadline = time.monotonic() + seconds
    settings = config.source_settings()
    try:
        source = open_source(settings.spec, **open_options(settings))
    except Exception as error:  # SourceError, bad options, picamera2 not importable...
        outcome.error = _error_text(error)
        return
    outcome.described = source.describe()
    try:
        source.open()
        while time.monotonic() < deadline:
            frame = source.read(timeout=max(0.1, deadline - time.monotonic()))
            if frame is None:
                continue
            now = time.monotonic()
            # Only the size is kept: the doctor never holds on to, or writes, an image.
            outcome.size = (frame.width, frame.height)
            outcome.frames += 1
            if outcome.first_at is None:
                outcome.first_at = now
            outcome.last_at = now
            if outcome.frames >= MIN_CAMERA_FRAMES and now - outcome.first_at >= FPS_WINDOW_S:
                return
    except EndOfStream:
        outcome.ended = True
    except Exception as error:
        outcome.error = _error_text(error)
    finally:
        source.close()


def _error_text(error: Exception) -> str:
    # SourceError and ValueError messages name the source already; anything else (an
    # ImportError from picamera2, an OpenCV error) needs its type to make sense.
    if isinstance(error, RuntimeError | ValueError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def _source_kind(spec: str | int) -> str:
    from edge_agent.sources.spec import parse_spec

    parsed = parse_spec(spec)
    if parsed.is_camera:
        return "camera"
    return "url" if parsed.kind == "stream" else "file"


def check_camera(doctor: DoctorRun) -> CheckResult:
    from edge_agent.sources.base import redact_url

    assert doctor.config is not None
    spec = doctor.config.source.spec
    outcome = _CameraOutcome()
    reader = threading.Thread(
        target=_read_camera,
        args=(doctor.config, doctor.camera_seconds, outcome),
        name="doctor-camera",
        daemon=True,  # a driver stuck in read() must not keep the command from exiting
    )
    reader.start()
    # Opening a USB camera or a stream can take seconds of its own before the first read.
    reader.join(doctor.camera_seconds + 5.0)
    # describe() masks a password in a stream URL; so must the fallback.
    what = outcome.described or f"source {redact_url(str(spec))}"
    if outcome.frames >= MIN_CAMERA_FRAMES or (outcome.ended and outcome.frames):
        return CheckResult("camera", Status.PASS, _frames_detail(what, outcome))
    if outcome.frames:
        return CheckResult(
            "camera",
            Status.WARN,
            f"{_frames_detail(what, outcome)}: fewer than {MIN_CAMERA_FRAMES} frames in"
            f" {doctor.camera_seconds:g} s",
            "check the light (a dark scene slows cameras down), the cable, and source.fps",
        )
    if outcome.error:
        reason = outcome.error
    elif outcome.ended:
        reason = f"{what} has no frames"
    elif reader.is_alive():
        reason = f"{what}: still no frame after {doctor.camera_seconds:g} s (the driver hangs)"
    else:
        reason = f"{what}: no frame within {doctor.camera_seconds:g} s"
    kind = _source_kind(spec)
    if kind != "file" and _systemd_running() and _unit_state("is-active", SERVICE) == "active":
        return CheckResult(
            "camera",
            Status.WARN,
            f"{reason}; {SERVICE} is running and probably holds the camera",
            "sudo systemctl stop edge-agent, run edge-agent doctor again, then"
            " sudo systemctl start edge-agent",
        )
    return CheckResult("camera", Status.FAIL, reason, _camera_fix(spec, kind))


def _frames_detail(what: str, outcome: _CameraOutcome) -> str:
    width, height = outcome.size or (0, 0)
    detail = f"{what}: {width}x{height}, {outcome.frames} frames"
    first, last = outcome.first_at, outcome.last_at
    if outcome.ended:
        # A few frames of a file say nothing about a rate.
        return f"{detail} (end of the file)"
    if first is not None and last is not None and last > first:
        detail += f" at {(outcome.frames - 1) / (last - first):.1f} fps"
    return detail


def _camera_fix(spec: str | int, kind: str) -> str:
    if kind == "camera" and str(spec).lower().startswith("picamera"):
        return (
            "check the ribbon cable and that `rpicam-hello --list-cameras` lists the camera;"
            " picamera2 must be importable (python3-picamera2, venv with"
            " --system-site-packages)"
        )
    if kind == "camera":
        return (
            "plug the camera in, check `v4l2-ctl --list-devices` for its /dev/videoN, set"
            " source.spec to it; the service user needs the video group"
        )
    if kind == "url":
        return "check the stream URL, the camera's address and login, and the network"
    relative = "" if Path(str(spec)).is_absolute() else " (relative to the working directory)"
    return f"check source.spec{relative}: a video file, an image folder or a glob"


# --------------------------------------------------------------------------------------------
# broker


def check_broker(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    mqtt = doctor.config.mqtt
    if not mqtt.enabled:
        return CheckResult("broker", Status.SKIP, "MQTT is off (mqtt.enabled: false)")
    from edge_agent.telemetry.client import new_paho_client

    address = f"{mqtt.host}:{mqtt.port}"
    try:
        link = doctor.config.telemetry_settings().link
    except ValueError as error:
        return CheckResult(
            "broker",
            Status.FAIL,
            str(error),
            "create the password file, readable by the service's user, or set"
            f" EDGE_AGENT__MQTT__PASSWORD in {DEFAULT_ENV_FILE}",
        )
    password, tls = link.password, link.tls
    # An id of its own: reusing the daemon's would make the broker drop the daemon's session.
    client_id = f"edge-agent-doctor-{secrets.token_hex(4)}"
    try:
        client = new_paho_client(
            client_id,
            username=mqtt.username,
            password=password,
            tls=tls,
            reconnect_on_failure=False,
        )
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        return CheckResult(
            "broker",
            Status.FAIL,
            f"TLS settings unusable: {error}",
            "check mqtt.tls.ca_file, cert_file and key_file: PEM files readable by this user",
        )
    client.connect_timeout = doctor.timeout
    answers: list[tuple[str, Any]] = []
    answered = threading.Event()

    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        answers.append(("connack", reason))
        answered.set()

    def on_disconnect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        answers.append(("closed", reason))
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    started = time.monotonic()
    try:
        # TCP connect, TLS handshake and CONNECT happen here, bounded by connect_timeout.
        client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s)
    except OSError as error:
        detail, fix = describe_connect_error(
            error, mqtt.host, mqtt.port, timeout=doctor.timeout, tls=tls is not None
        )
        return CheckResult("broker", Status.FAIL, detail, fix)
    client.loop_start()
    try:
        answered.wait(max(0.1, doctor.timeout - (time.monotonic() - started)))
    finally:
        client.disconnect()
        client.loop_stop()
    who = f"as user {mqtt.username}" if mqtt.username is not None else "anonymously"
    if not answers:
        return CheckResult(
            "broker",
            Status.FAIL,
            f"{address} accepted the connection but sent no CONNACK within {doctor.timeout:g} s",
            "is this an MQTT broker's port? with TLS on the broker, set mqtt.tls.enabled: true"
            " (usually port 8883); else look at the broker's log",
        )
    kind, reason = answers[0]
    if kind == "closed":
        hint = (
            "the broker may want a client certificate (mqtt.tls.cert_file, key_file)"
            if tls
            else "a TLS port? then set mqtt.tls.enabled: true"
        )
        return CheckResult(
            "broker",
            Status.FAIL,
            f"{address} closed the connection before accepting it ({reason})",
            f"{hint}; check the broker's log for why it hung up",
        )
    if reason.is_failure:
        detail, fix = describe_refusal(reason, address, mqtt.username)
        return CheckResult("broker", Status.FAIL, detail, fix)
    encryption = "no TLS"
    if tls is not None:
        encryption = "TLS" if tls.verify_hostname else "TLS, host name not checked"
    detail = f"connected to {address} ({encryption}, {who})"
    if password is not None and mqtt.username is None:
        detail += "; a password is set but no mqtt.username, so it is not used"
    return CheckResult("broker", Status.PASS, detail)


def describe_connect_error(
    error: OSError, host: str, port: int, *, timeout: float, tls: bool
) -> tuple[str, str]:
    """(detail, fix) for a connection that failed before MQTT could say anything."""
    address = f"{host}:{port}"
    check_address = "check mqtt.host and mqtt.port, the network, and any firewall between"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {address} is not trusted:"
            f" {getattr(error, 'verify_message', None) or error}",
            "set mqtt.tls.ca_file to the CA that signed the broker's certificate, and use a"
            " host name the certificate lists (or mqtt.tls.verify_hostname: false)",
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake with {address} failed: {error.reason or error}",
            "is it the broker's TLS port (usually 8883)? if the broker has no TLS, set"
            " mqtt.tls.enabled: false; a client certificate goes in mqtt.tls.cert_file/key_file",
        )
    if tls and isinstance(error, ConnectionResetError | ConnectionAbortedError):
        # A plain MQTT listener takes the TLS hello for a malformed CONNECT and hangs up.
        return (
            f"TLS handshake with {address} failed: the broker hung up ({error.strerror})",
            "is it the broker's TLS port (usually 8883)? if the broker has no TLS, set"
            " mqtt.tls.enabled: false",
        )
    if isinstance(error, socket.gaierror):
        return (
            f"cannot resolve the host name {host!r}: {error.strerror}",
            "check the spelling of mqtt.host and this display's DNS (resolvectl status,"
            " /etc/resolv.conf); an IP address avoids DNS",
        )
    if isinstance(error, ConnectionRefusedError):
        return (
            f"connection refused by {address}: nothing listens there",
            "install and start the broker (sudo apt install mosquitto; sudo systemctl enable"
            f" --now mosquitto), or {check_address}",
        )
    if isinstance(error, TimeoutError):
        return (f"no answer from {address} within {timeout:g} s (timed out)", check_address)
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (f"{address} is unreachable: {error.strerror}", check_address)
    return (f"cannot connect to {address}: {error.strerror or error}", check_address)


def describe_refusal(reason: Any, address: str, username: str | None) -> tuple[str, str]:
    """(detail, fix) for a CONNACK that said no."""
    who = f"user {username}" if username is not None else "an anonymous client"
    code = getattr(reason, "value", None)
    if code == BAD_USER_NAME_OR_PASSWORD:
        return f"{address} refused the login: bad user name or password for {who}", PASSWORD_FIX
    if code == NOT_AUTHORIZED:
        # What mosquitto answers to a wrong password as well as to an unknown user.
        why = "the broker wants a login" if username is None else "wrong password or unknown user"
        return f"{address} refused the login: {who} is not authorised ({why})", PASSWORD_FIX
    return (
        f"{address} refused the connection: {reason}",
        "look at the broker's log for why; check mqtt.client_id and the broker's settings",
    )


# --------------------------------------------------------------------------------------------
# disk


def check_disk(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    from edge_agent.telemetry.stage import OUTBOX_FILE

    config = doctor.config
    state_dir = config.state.dir.absolute()
    existing = state_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free_mb = shutil.disk_usage(existing).free / 1024**2
    if config.mqtt.enabled:
        needed_mb, purpose = config.mqtt.outbox_max_mb, "the outbox may need in an outage"
    else:
        needed_mb, purpose = MIN_FREE_MB_WITHOUT_OUTBOX, "the state files want"
    notes = [f"{free_mb:,.0f} MB free for {state_dir}"]
    if existing != state_dir:
        notes.append(f"it does not exist yet (measured at {existing})")
    outbox_note = describe_outbox(state_dir / OUTBOX_FILE)
    if outbox_note:
        notes.append(outbox_note)
    writable = not state_dir.exists() or os.access(state_dir, os.W_OK)
    root = os.geteuid() == 0
    if not writable and not root:
        notes.append("not writable by this user (the service's user may differ)")
    detail = "; ".join(notes)
    space_fix = (
        f"free space on the filesystem holding {existing} (sudo journalctl --vacuum-size=100M,"
        " sudo apt clean, old files) or lower mqtt.outbox_max_mb"
    )
    if not writable and root:
        return CheckResult(
            "disk",
            Status.FAIL,
            f"{detail}; not writable even by root (read-only filesystem?)",
            "remount the filesystem read-write, or set state.dir to a writable folder",
        )
    if free_mb < needed_mb:
        return CheckResult(
            "disk",
            Status.FAIL,
            f"{detail}: less than the {needed_mb:g} MB {purpose}",
            space_fix,
        )
    if free_mb < 2 * needed_mb:
        return CheckResult(
            "disk",
            Status.WARN,
            f"{detail}: less than twice the {needed_mb:g} MB {purpose}",
            space_fix,
        )
    return CheckResult("disk", Status.PASS, detail)


def describe_outbox(path: Path) -> str:
    """How many messages wait in the outbox file, read without creating or changing a file."""
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    try:
        if not path.is_file():
            return ""
        live = wal.exists() and shm.exists()
    except OSError as error:  # the service's own 0700 folder, looked into without sudo
        return f"cannot look for the outbox {path} ({error.strerror})"
    # A reader of a WAL database creates the -wal and -shm files when they are missing; made
    # by root, they would lock the service's own user out of its outbox. Without them the
    # main file is complete and can be read as immutable; with them (the daemon is running),
    # read-only through them. A -wal without -shm (a crash) holds messages only a writer can
    # see: the count is then a lower bound.
    options = "mode=ro" if live else "mode=ro&immutable=1"
    approximate = wal.exists() and not live
    try:
        uri = f"{path.absolute().as_uri()}?{options}"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
            query = "SELECT COUNT(*), MIN(created_wall) FROM messages"
            count, oldest = db.execute(query).fetchone()
    except sqlite3.Error as error:
        return f"cannot read the outbox {path} ({error})"
    at_least = "at least " if approximate else ""
    if not count:
        return "the outbox is empty" if not approximate else ""
    age = f", the oldest {_age(time.time() - oldest)} old" if oldest is not None else ""
    return f"{at_least}{count} message{'' if count == 1 else 's'} wait in the outbox{age}"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


# --------------------------------------------------------------------------------------------
# clock


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    """struct timex of <sys/timex.h> as the `adjtimex` symbol takes it (longs, not time64)."""

    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        # The kernel's reserved tail, and then some: the kernel must never write past us.
        ("reserved", ctypes.c_int * 32),
    ]


def read_clock_state() -> tuple[int, int, int]:
    """adjtimex(2) with modes 0 (read only): (return value, status bits, max error in µs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    adjtimex = libc.adjtimex
    adjtimex.argtypes = [ctypes.POINTER(_Timex)]
    adjtimex.restype = ctypes.c_int
    timex = _Timex()
    result = adjtimex(ctypes.byref(timex))
    if result < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result, timex.status, timex.maxerror


def clock_result(return_value: int, status: int, maxerror_us: int) -> CheckResult:
    """The clock check from adjtimex's answer: synchronised as timedatectl's NTPSynchronized
    has it, when the state is not TIME_ERROR and STA_UNSYNC is clear."""
    if return_value != TIME_ERROR and not status & STA_UNSYNC:
        return CheckResult(
            "clock",
            Status.PASS,
            f"synchronised (NTP), estimated maximum error {maxerror_us / 1000:.1f} ms",
        )
    return CheckResult(
        "clock",
        Status.FAIL,
        "not synchronised: report and play timestamps may be wrong (a Raspberry Pi 4 has no"
        " battery-backed clock and starts from the last shutdown's time)",
        "sudo timedatectl set-ntp true, and let the display reach NTP servers (UDP port 123,"
        " or the store's own NTP server in /etc/systemd/timesyncd.conf); check with"
        " timedatectl status",
    )


def check_clock(_doctor: DoctorRun) -> CheckResult:
    try:
        return_value, status, maxerror = read_clock_state()
    except Exception as error:  # not Linux, a libc without adjtimex, a seccomp filter...
        return CheckResult(
            "clock",
            Status.WARN,
            f"cannot read the clock status ({type(error).__name__}: {error})",
            "check by hand: timedatectl status should say 'System clock synchronized: yes'",
        )
    return clock_result(return_value, status, maxerror)


# --------------------------------------------------------------------------------------------
# service


def _systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _unit_state(verb: str, unit: str) -> str:
    """`systemctl is-enabled|is-active UNIT`'s one-word answer; "" when it gave none."""
    try:
        answer = subprocess.run(
            ["systemctl", verb, unit], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return answer.stdout.strip().splitlines()[0] if answer.stdout.strip() else ""


def service_result(states: Mapping[str, tuple[str, str]]) -> CheckResult:
    """The service check from (is-enabled, is-active) per unit; is-enabled "" or "not-found"
    means the unit is not installed."""
    parts = []
    for unit, (enabled, active) in states.items():
        if enabled in ("", "not-found"):
            parts.append(f"{unit} not installed")
        else:
            parts.append(f"{unit} {enabled}, {active or 'unknown'}")
    detail = "; ".join(parts)
    enabled, active = states.get(SERVICE, ("", ""))
    if enabled not in ("", "not-found") and active != "active":
        return CheckResult(
            "service",
            Status.WARN,
            detail,
            "see why: journalctl -u edge-agent -n 50; then sudo systemctl enable --now edge-agent",
        )
    if enabled in ("", "not-found"):
        detail += " (sudo scripts/install.sh installs it)"
    return CheckResult("service", Status.PASS, detail)


def check_service(_doctor: DoctorRun) -> CheckResult:
    if not _systemd_running():
        return CheckResult("service", Status.SKIP, "not running under systemd")
    states = {
        unit: (_unit_state("is-enabled", unit), _unit_state("is-active", unit))
        for unit in (SERVICE, KIOSK_SERVICE)
    }
    return service_result(states)


CHECKS: tuple[Check, ...] = (
    Check("config", check_config, needs_config=False),
    Check("privacy", check_privacy),
    Check("models", check_models),
    Check("runtime", check_runtime),
    Check("rules", check_rules),
    Check("camera", check_camera),
    Check("broker", check_broker),
    Check("disk", check_disk),
    Check("clock", check_clock, needs_config=False),
    Check("service", check_service, needs_config=False),
)
