"""The service check: the edge-agent systemd units, enabled and active."""

from __future__ import annotations

from collections.abc import Mapping

from edge_agent.commands.doctor.base import (
    SERVICE,
    CheckResult,
    DoctorRun,
    Status,
    systemd_running,
    unit_state,
)

KIOSK_SERVICE = "edge-agent-kiosk.service"


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
    if not systemd_running():
        return CheckResult("service", Status.SKIP, "not running under systemd")
    states = {
        unit: (unit_state("is-enabled", unit), unit_state("is-active", unit))
        for unit in (SERVICE, KIOSK_SERVICE)
    }
    return service_result(states)
