"""What the MQTT measurement scripts share: a private mosquitto, /proc readings, numbers.

Used by scripts/bench_mqtt.py, scripts/fleet_load.py and scripts/outage_drill.py; they import
it as `mqtt_bench_support` (run as `python scripts/NAME.py`, the script's folder is on
sys.path).

- `Mosquitto`: a mosquitto of its own on a free port of 127.0.0.1, config and log in a folder
  (no limit on messages queued or in flight for a slow subscriber; optional persistence).
- `ProcessCpu`: CPU seconds and memory of one process; `MachineCpu`: how many cores the whole
  machine kept busy over a span.
- `percentile` / `summary`: ONE percentile definition for every script (nearest rank).
- `make_report`: a plausible AudienceReport to publish.
- `demo_daemon_environ`: the environment that runs the real daemon on the demo footage.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_agent.audience.values import AudienceReport

HOST = "127.0.0.1"
FALLBACK_MOSQUITTO = "/usr/sbin/mosquitto"  # Debian/Ubuntu: not on a normal user's PATH


# --------------------------------------------------------------------------------------------
# A private mosquitto


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, else /usr/sbin/mosquitto; None when there is none."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return FALLBACK_MOSQUITTO if os.access(FALLBACK_MOSQUITTO, os.X_OK) else None


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """mosquitto on 127.0.0.1:`port` (a free one by default), config and log in `folder`.

    The configuration: anonymous clients; no limit on what the broker queues for, or has in
    flight to, a slow subscriber (its defaults, 1000 and 20, would drop messages silently);
    errors and warnings to the log file; persistence off, or on with its database in
    `persistence_folder`; `extra` lines appended; `user root` when run as root (else it drops
    to the "mosquitto" user, which may not write the folders). `start()` can be called again
    after `stop()` or `kill()`: the same port, the same persistence, the log appended to.
    """

    def __init__(
        self,
        folder: Path,
        port: int | None = None,
        extra: Sequence[str] = (),
        persistence_folder: Path | None = None,
        missing_hint: str = "",
    ) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise SystemExit(f"mosquitto not found (apt install mosquitto){missing_hint}")
        self.executable = executable
        self.folder = folder
        self.host = HOST
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        persistence = (
            ["persistence true", f"persistence_location {persistence_folder}/"]
            if persistence_folder is not None
            else ["persistence false"]
        )
        self.config_lines = [
            f"listener {self.port} {HOST}",
            "allow_anonymous true",
            *persistence,
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "connection_messages false",
            *extra,
        ]
        if os.geteuid() == 0:
            self.config_lines.append("user root")

    @property
    def config_path(self) -> Path:
        return self.folder / f"mosquitto-{self.port}.conf"

    @property
    def log_path(self) -> Path:
        return self.folder / f"mosquitto-{self.port}.log"

    @property
    def version(self) -> str:
        """The first line of `mosquitto -h`, e.g. "mosquitto version 2.0.18"."""
        out = subprocess.run([self.executable, "-h"], capture_output=True, text=True).stdout
        return out.splitlines()[0] if out else "?"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start it and wait until it accepts connections; SystemExit with its log if not."""
        self.config_path.write_text("\n".join(self.config_lines) + "\n")
        with open(self.log_path, "ab") as output:
            self.process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"mosquitto exited: {self.log_text()}")
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.kill()
        raise SystemExit(f"mosquitto did not listen on {self.port}: {self.log_text()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (it saves its persistence database), wait; SIGKILL if it does not exit."""
        if self.running():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def log_text(self, limit: int = 3000) -> str:
        """The end of its log (errors and warnings)."""
        path = self.log_path
        return path.read_text(errors="replace")[-limit:] if path.exists() else ""


# --------------------------------------------------------------------------------------------
# The real daemon on the demo footage


def demo_daemon_environ(
    repo: Path, broker_port: int, state: Path, window_s: float, site: str, device: str
) -> dict[str, str]:
    """The environment for `python -m edge_agent.cli run` on the looping demo footage in real
    time, no player, publishing to 127.0.0.1:`broker_port` as `site`/`device`. Segments of one
    person are published, so that consumers' segment handling is exercised."""
    return {
        **os.environ,
        "EDGE_AGENT__SOURCE__SPEC": str(repo / "samples" / "demo.mp4"),
        "EDGE_AGENT__SOURCE__LOOP": "true",
        "EDGE_AGENT__SOURCE__REALTIME": "true",
        "EDGE_AGENT__ADS__PLAYER": "none",
        "EDGE_AGENT__ADS__RULES": str(repo / "ads" / "rules.yaml"),
        "EDGE_AGENT__AUDIENCE__WINDOW_S": str(window_s),
        "EDGE_AGENT__AUDIENCE__MIN_SEGMENT_SIZE": "1",
        "EDGE_AGENT__STATE__DIR": str(state),
        "EDGE_AGENT__MQTT__HOST": HOST,
        "EDGE_AGENT__MQTT__PORT": str(broker_port),
        "EDGE_AGENT__MQTT__SITE": site,
        "EDGE_AGENT__MQTT__DEVICE": device,
        "PYTHONPATH": str(repo),
    }


# --------------------------------------------------------------------------------------------
# CPU and memory, from /proc


class ProcessCpu:
    """CPU seconds (utime + stime) and memory of a process, from /proc."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def seconds(self) -> float:
        text = Path(f"/proc/{self.pid}/stat").read_text()
        fields = text.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICK  # utime, stime (fields 14, 15)

    def memory_kb(self) -> dict[str, int]:
        """VmRSS (resident now) and VmHWM (peak resident), in KiB."""
        values = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0])
        return values


def machine_jiffies() -> tuple[int, int]:
    """(all, idle + iowait) CPU time of the whole machine, from /proc/stat; (0, 0) without it."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return 0, 0
    return sum(fields), fields[3] + fields[4]


class MachineCpu:
    """How busy the whole machine was from its creation to `stop()` (or to now): in cores.
    Tells a quiet run from one that shared the CPUs with something else."""

    def __init__(self) -> None:
        self.start = machine_jiffies()
        self.end: tuple[int, int] | None = None

    def stop(self) -> None:
        """End the span here (the first call counts); busy_cores() may be asked later."""
        if self.end is None:
            self.end = machine_jiffies()

    def busy_cores(self) -> float | None:
        total, idle = self.end or machine_jiffies()
        spent = total - self.start[0]
        if spent <= 0:
            return None
        return (spent - (idle - self.start[1])) / spent * (os.cpu_count() or 1)


# --------------------------------------------------------------------------------------------
# Numbers


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 < q <= 100) of an already sorted, non-empty list, by NEAREST RANK:
    the smallest value with at least q % of the values at or below it, i.e. the value of rank
    ceil(q / 100 * n) (1-based). Always one of the values, never interpolated: p50 of
    [1, 2, 3, 4] is 2, p99 of 100 values is the 99th, p99 of fewer than 100 is the maximum."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    n = len(sorted_values)
    rank = math.ceil(q * n / 100)
    return sorted_values[min(n, max(1, rank)) - 1]


def summary(values: Sequence[float], points: Sequence[int] = (50, 90, 99)) -> dict[str, float]:
    """{"n", "mean", "p<q>" for each q in `points` (nearest rank), "max"}; {"n": 0} when empty."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    result: dict[str, float] = {"n": len(ordered), "mean": sum(ordered) / len(ordered)}
    for q in points:
        result[f"p{q}"] = percentile(ordered, q)
    result["max"] = ordered[-1]
    return result


# --------------------------------------------------------------------------------------------
# What the displays publish


def make_report(
    rng: random.Random, wall: float, window_s: float = 60.0, vary_brackets: bool = False
) -> AudienceReport:
    """A plausible window ending at `wall`: per gender three of the default age brackets over
    the k-anonymity threshold (the second to the fourth; three drawn at random with
    `vary_brackets`), other and unknown folded; viewers a part of each; dwell and attention
    statistics to match."""
    from edge_agent.audience.values import AudienceReport, DurationStats
    from edge_agent.segments import DEFAULT_BRACKETS, GENDERS, OTHER, UNKNOWN, segment_name

    labels = DEFAULT_BRACKETS.labels
    segments: dict[str, int] = {}
    for gender in GENDERS:
        brackets = rng.sample(labels, 3) if vary_brackets else labels[1:4]
        for bracket in brackets:
            segments[segment_name(gender, bracket)] = rng.randint(5, 30)
    segments[OTHER] = rng.randint(0, 8)
    segments[UNKNOWN] = rng.randint(0, 6)
    viewer_segments = {key: rng.randint(0, n) for key, n in segments.items()}
    passers_by = sum(segments.values())

    def durations(count: int, scale: float) -> DurationStats:
        mean = round(rng.uniform(0.5, 1.5) * scale, 2)
        return DurationStats(count, mean, round(mean * 0.8, 2), round(mean * 2.1, 2), mean * 4.0)

    return AudienceReport(
        window_start_wall=wall - window_s,
        window_end_wall=wall,
        passers_by=passers_by,
        viewers=sum(viewer_segments.values()),
        segments=segments,
        viewer_segments=viewer_segments,
        dwell=durations(passers_by, 6.0),
        attention=durations(sum(viewer_segments.values()), 2.0),
        min_segment_size=5,
    )
