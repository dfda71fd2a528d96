"""What every doctor check shares: the statuses, one check's result, the run they all read and
write, and the few facts and helpers more than one check needs.

The check modules import this one and never the package, so the package can import them all
without a cycle. Light imports only: `edge-agent doctor --help` loads this module.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent import installed

if TYPE_CHECKING:
    from edge_agent.config import Config

# Read as `base.DEFAULT_CONFIG` where they are used, so that one replacement (a test's) is seen
# by every check.
DEFAULT_CONFIG = installed.CONFIG
DEFAULT_ENV_FILE = installed.ENVIRONMENT
# The camera check asks whether it holds the camera; the service check reports on it.
SERVICE = "edge-agent.service"


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


# systemd, asked by the camera check (does the service hold the camera?) and the service check.
def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def unit_state(verb: str, unit: str) -> str:
    """`systemctl is-enabled|is-active UNIT`'s one-word answer; "" when it gave none."""
    try:
        answer = subprocess.run(
            ["systemctl", verb, unit], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return answer.stdout.strip().splitlines()[0] if answer.stdout.strip() else ""


def service_active() -> bool:
    """Whether the edge-agent service runs now; False where systemd does not run."""
    return systemd_running() and unit_state("is-active", SERVICE) == "active"
