"""The disk check: free space in state.dir for what the outbox may need, how many messages wait
in the outbox and what its files take against their bound, read without creating or changing a
file of the daemon's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import time
from pathlib import Path

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status

# Free space wanted in state.dir when MQTT is off and no outbox grows there.
MIN_FREE_MB_WITHOUT_OUTBOX = 50.0
# The outbox's files this close to mqtt.outbox_max_mb: it is dropping stats and events.
NEAR_BOUND_SHARE = 0.9


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
    outbox_bytes = outbox_file_bytes(state_dir / OUTBOX_FILE)
    bound_bytes = config.mqtt.outbox_max_mb * 1024**2
    near_bound = False
    if config.mqtt.enabled and outbox_bytes:
        # The bound is on the files, WAL and -shm included (the daemon keeps them under it).
        notes.append(
            f"the outbox takes {_size(outbox_bytes)} on disk (WAL included) of its"
            f" {_size(bound_bytes)} bound"
        )
        near_bound = outbox_bytes >= NEAR_BOUND_SHARE * bound_bytes
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
    if near_bound:
        return CheckResult(
            "disk",
            Status.WARN,
            f"{detail}: near its bound, so stats and then events are being dropped",
            "get the broker reachable (see the broker check), or raise mqtt.outbox_max_mb",
        )
    return CheckResult("disk", Status.PASS, detail)


def outbox_file_bytes(path: Path) -> int:
    """What the outbox's database, WAL and -shm take on disk (0 when there is none)."""
    total = 0
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(OSError):
            total += file.stat().st_blocks * 512
    return total


def _size(count: float) -> str:
    if count < 1024**2:
        return f"{count / 1024:,.0f} KB"
    return f"{count / 1024**2:,.1f} MB"


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
