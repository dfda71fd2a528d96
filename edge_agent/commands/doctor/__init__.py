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
import json
from pathlib import Path

# The defaults are read through the module: a replaced one (a test's) is what every check sees.
from edge_agent.commands.doctor import base
from edge_agent.commands.doctor.base import Check, CheckResult, DoctorRun, Status
from edge_agent.commands.doctor.broker import check_broker
from edge_agent.commands.doctor.camera import check_camera
from edge_agent.commands.doctor.clock import check_clock
from edge_agent.commands.doctor.config import check_config
from edge_agent.commands.doctor.disk import check_disk
from edge_agent.commands.doctor.models import check_models
from edge_agent.commands.doctor.output import print_table, quiet_logs, secrets_of, without_secrets
from edge_agent.commands.doctor.privacy import check_privacy
from edge_agent.commands.doctor.rules import check_rules
from edge_agent.commands.doctor.runtime import check_runtime
from edge_agent.commands.doctor.service import check_service


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = [check.name for check in CHECKS if check.name != "config"]
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help=f"config.yaml (default: {base.DEFAULT_CONFIG} when it exists, else the built-in"
        " defaults)",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="KEY=VALUE environment overrides (secrets), read as systemd's EnvironmentFile="
        f" reads them (default: {base.DEFAULT_ENV_FILE} when it exists)",
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
    if env_file is None and base.DEFAULT_ENV_FILE.exists():
        env_file = base.DEFAULT_ENV_FILE
    config_path = args.config
    if config_path is None and base.DEFAULT_CONFIG.exists():
        config_path = base.DEFAULT_CONFIG
    doctor = DoctorRun(
        config_path=config_path,
        env_file=env_file,
        env_file_explicit=args.env_file is not None,
        camera_seconds=args.camera_seconds,
        timeout=args.timeout,
    )
    with quiet_logs(getattr(args, "verbose", False)):
        results = run_checks(doctor, skip=set(args.skip), only=set(args.only))
    results = without_secrets(results, secrets_of(doctor))
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


# In the order the table lists them; the module docstring above names them the same way.
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
