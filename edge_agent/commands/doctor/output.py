"""What the doctor shows: the table (or the summary line under it), the log level while the checks
run, and the scrubbing of the broker password out of every row before anything is printed.

rich is imported only when the table is printed: `--json` and `--help` never load it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status


@contextlib.contextmanager
def quiet_logs(verbose: bool) -> Iterator[None]:
    # The stages log at INFO as they open ("opened video device 0"): noise around a table.
    logger = logging.getLogger("edge_agent")
    previous = logger.level
    if not verbose:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(previous)


def secrets_of(doctor: DoctorRun) -> list[str]:
    if doctor.config is None:
        return []
    try:
        password = doctor.config.telemetry_settings().link.password
    except ValueError:
        return []
    # A one- or two-letter password would turn every such letter into stars.
    return [password] if password and len(password) >= 3 else []


def without_secrets(results: list[CheckResult], hidden: list[str]) -> list[CheckResult]:
    """No check puts the password into a row; this is the belt to those braces."""

    def scrub(text: str | None) -> str | None:
        for secret in hidden:
            text = None if text is None else text.replace(secret, "***")
        return text

    return [CheckResult(r.check, r.status, scrub(r.detail) or "", scrub(r.fix)) for r in results]


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
