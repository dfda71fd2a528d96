"""The rules check: the ad rules file loads against the configured age brackets, when ads are on."""

from __future__ import annotations

from pathlib import Path

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status


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
