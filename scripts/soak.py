"""Soak: the real daemon on looping footage for hours, its broker stopped and started at random.

    .venv/bin/python scripts/soak.py [--duration 3600] [--bounce-every 300] [--json soak.json]

Starts a mosquitto of its own (persistence on, a free port of 127.0.0.1) and the daemon as the
service runs it (`python -m edge_agent.cli run --config TEMP`: looping `--video` in real time,
`ads.player: none`, short audience windows, state in a temporary folder). A subscriber with a
persistent session counts every audience report. At random times (mean `--bounce-every` s,
+-50 %) the broker is stopped for `--down-for` s (SIGTERM by default: mosquitto saves the
messages it holds; `--signal kill` is a crash, in which mosquitto can lose a message it has
already acknowledged, a loss that is the broker's, not the daemon's). Every `--sample-every` s
it reads the daemon's RSS, open fds and threads from /proc.

At the end the broker is up: the daemon gets `--drain` s to deliver its backlog, is stopped with
SIGTERM (its last, partial window is reported then) and gets the same again. A report is LOST
when the daemon logged it (the `edge_agent.reports` logger) and it never arrived, or when the
windows that arrived leave a gap (the next one does not start where the last ended).
Duplicates (an id that arrived twice: re-sent after a broker cut) are counted, not lost.

Prints a table and writes `--json`; exit status 1 when a report was lost or the daemon died,
2 on a bad argument or a missing video or mosquitto, 130 when interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

import yaml
from mqtt_bench_support import HOST, Mosquitto, find_mosquitto
from report_subscriber import ReportSubscriber
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.telemetry.payloads import iso  # noqa: E402

SITE, DEVICE = "soak", "screen"
REPORT_TOPIC = f"edge-agent/{SITE}/{DEVICE}/audience/report"
PR_SET_PDEATHSIG = 1  # prctl(2): the daemon gets SIGTERM if this script dies without cleaning up


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: stop everything, report what was measured so far."""


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float  # since the daemon started
    rss_kb: int
    fds: int
    threads: int
    broker_up: bool


def read_sample(pid: int, t_s: float, broker_up: bool) -> Sample | None:
    """RSS, open fds and threads of `pid` from /proc; None when it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Sample(
        round(t_s, 1),
        int(fields["VmRSS"].split()[0]),
        fds,
        int(fields["Threads"].strip()),
        broker_up,
    )


def fd_targets(pid: int) -> dict[str, int]:
    """What the open fds of `pid` point at, counted: "socket", "pipe", "anon_inode:[eventfd]",
    or a file's path; tells which kind grew when the count does."""
    kinds: Counter[str] = Counter()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return {}
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue  # closed meanwhile
        kind, _, _ = target.partition(":[")
        kinds[kind if kind in ("socket", "pipe") else target] += 1
    return dict(sorted(kinds.items()))


def megabytes(kib: int) -> float:
    """/proc's kB (KiB) as MB (10^6 bytes), the unit of the acceptance's "MB/h"."""
    return round(kib * 1024 / 1e6, 1)


def rss_growth_mb_per_h(samples: list[Sample]) -> float | None:
    """Least-squares slope of RSS over time, in MB (10^6 bytes) per hour; None with < 3."""
    if len(samples) < 3:
        return None
    hours = [s.t_s / 3600 for s in samples]
    sizes_mb = [s.rss_kb * 1024 / 1e6 for s in samples]
    return round(statistics.linear_regression(hours, sizes_mb).slope, 3)


def logged_reports(log_path: Path) -> list[dict[str, object]]:
    """The audience reports the daemon logged (JSON log lines of `edge_agent.reports`)."""
    reports = []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            if record.get("logger") != "edge_agent.reports":
                continue
            message = json.loads(record["message"])
        except (ValueError, AttributeError, KeyError, TypeError):
            continue  # not one of its JSON lines (e.g. a library's own print)
        if isinstance(message, dict) and message.get("type") == "audience_report":
            reports.append(message)
    return reports


def check_reports(logged: list[dict[str, object]], received: list[dict[str, object]]) -> dict:
    """Made, received, duplicates, and what was lost: logged windows that never arrived, and
    gaps between the windows that did."""
    counts = Counter(str(p["id"]) for p in received)
    first_by_id: dict[str, dict[str, object]] = {}
    for payload in received:
        first_by_id.setdefault(str(payload["id"]), payload)
    windows = sorted(
        {(str(p["window_start"]), str(p["window_end"])) for p in first_by_id.values()},
        key=lambda window: window[1],
    )
    arrived_ends = {end for _, end in windows}
    logged_windows = [
        (iso(float(r["window_start_wall"])), iso(float(r["window_end_wall"])))  # type: ignore[arg-type]
        for r in logged
    ]
    missing = [w for w in logged_windows if w[1] not in arrived_ends]
    missing_starts = {start for start, _ in missing}
    gaps = [
        {"after": previous[1], "next_starts": following[0]}
        for previous, following in itertools.pairwise(windows)
        # a gap that a logged-but-missing window starts is already counted in `missing`
        if following[0] != previous[1] and previous[1] not in missing_starts
    ]
    return {
        "made": len(logged_windows),
        "received": len(received),
        "received_unique": len(first_by_id),
        "duplicates": sum(n - 1 for n in counts.values()),
        "lost": len(missing) + len(gaps),
        "missing": [{"window_start": s, "window_end": e} for s, e in missing],
        "gaps": gaps,
        "arrived_not_logged": len(arrived_ends - {end for _, end in logged_windows}),
        # Much longer than the window: the daemon stalled (no frames) for that long.
        "longest_window_s": max(
            (
                round(float(r["window_end_wall"]) - float(r["window_start_wall"]), 3)  # type: ignore[arg-type]
                for r in logged
            ),
            default=None,
        ),
    }


def daemon_config(args: argparse.Namespace, folder: Path, port: int) -> Path:
    config = {
        "source": {"spec": str(args.video), "loop": True, "realtime": True},
        "ads": {"player": "none", "rules": str(REPO / "ads" / "rules.yaml")},
        "audience": {"window_s": args.window_s, "min_segment_size": 1},
        "state": {"dir": str(folder / "state")},
        "mqtt": {
            "host": HOST,
            "port": port,
            "site": SITE,
            "device": DEVICE,
            "reconnect_max_s": 5.0,
        },
        # JSON lines: the reports are read back from the log unambiguously.
        "logging": {"format": "json", "stats_interval_s": 60.0},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def die_with_parent() -> None:
    """In the daemon's process before exec: SIGTERM when the soak itself is killed (-9)."""
    # Not Linux: no prctl; the finally blocks still stop it on a normal exit.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_daemon(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    environ = dict(os.environ)
    # This checkout's edge_agent, wherever the soak is started from.
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environ.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "edge_agent.cli", "run", "--config", str(config)],
            cwd=REPO,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )


def stop_daemon(daemon: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, wait up to `timeout` s, then SIGKILL; its exit code (negative: a signal)."""
    if daemon.poll() is None:
        daemon.terminate()
        try:
            daemon.wait(timeout)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(5)
    return int(daemon.returncode)


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    parser.add_argument(
        "--bounce-every",
        type=float,
        default=300.0,
        help="mean seconds between broker stops; each gap is drawn from 50-150 %% of it",
    )
    parser.add_argument(
        "--down-for",
        type=float,
        nargs=2,
        default=(5.0, 60.0),
        metavar=("MIN", "MAX"),
        help="each outage lasts a random time in this range, seconds (default 5 60)",
    )
    parser.add_argument(
        "--signal",
        choices=("term", "kill"),
        default="term",
        help="how the broker is stopped: term (clean, default) or kill (a crash)",
    )
    parser.add_argument("--window-s", type=float, default=10.0, help="audience window (10 s)")
    parser.add_argument("--sample-every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument(
        "--warmup",
        type=float,
        default=300.0,
        help="seconds left out of the RSS slope (default 300; a quarter of a shorter run)",
    )
    parser.add_argument("--drain", type=float, default=60.0, help="seconds to deliver the backlog")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: drawn)")
    parser.add_argument(
        "--video", type=Path, default=REPO / "samples" / "demo.mp4", help="looping footage"
    )
    parser.add_argument("--json", type=Path, help="write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.bounce_every <= 0 or args.window_s <= 0:
        parser.error("--duration, --bounce-every and --window-s must be > 0")
    if args.sample_every <= 0 or args.drain <= 0 or args.warmup < 0:
        parser.error("--sample-every and --drain must be > 0, --warmup >= 0")
    low, high = args.down_for
    if not 0 < low <= high:
        parser.error(f"--down-for {low:g} {high:g}: need 0 < MIN <= MAX")
    # One line each, no usage text: these are not mistakes in how the command was typed.
    if not args.video.is_file():
        raise SystemExit(f"soak: error: --video {args.video}: no such file")
    if find_mosquitto() is None:
        raise SystemExit(
            "soak: error: mosquitto not found on PATH or at /usr/sbin/mosquitto"
            " (apt install mosquitto)"
        )
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(2**31)
    return args


class Soak:
    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args = args
        self.folder = folder
        self.rng = random.Random(args.seed)
        # A SIGKILLed mosquitto keeps only what it saved: save on every change, so that the
        # subscriber's session survives the crash (a message it has just acknowledged can not).
        crash_safe = ["autosave_interval 1", "autosave_on_changes true"]
        self.broker = Mosquitto(
            folder,
            persistence_folder=folder,
            extra=crash_safe if args.signal == "kill" else (),
        )
        self.log_path = folder / "daemon.log"
        self.samples: list[Sample] = []
        self.outages: list[dict[str, float]] = []
        self.daemon: subprocess.Popen[bytes] | None = None
        self.subscriber: ReportSubscriber | None = None
        self.started = 0.0
        self.ended: float | None = None  # the end of the soak proper, before the drain
        self.fds_after_warmup: dict[str, int] = {}
        self.fds_end: dict[str, int] = {}
        self.daemon_exit: int | None = None
        self.died = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def next_bounce_in(self) -> float:
        return self.rng.uniform(0.5, 1.5) * self.args.bounce_every

    def stop_broker(self) -> None:
        if self.args.signal == "kill":
            self.broker.kill()
        else:
            self.broker.stop()

    def sample(self) -> None:
        assert self.daemon is not None
        sample = read_sample(self.daemon.pid, self.elapsed(), self.broker.running())
        if sample is None:
            return
        self.samples.append(sample)
        self.fds_end = fd_targets(self.daemon.pid)
        if not self.fds_after_warmup and sample.t_s >= self.warmup_s():
            self.fds_after_warmup = self.fds_end

    def warmup_s(self) -> float:
        """`--warmup`, or a quarter of a run shorter than twice that."""
        args = self.args
        return args.warmup if args.duration >= 2 * args.warmup else args.duration / 4

    def run(self) -> None:
        args = self.args
        self.broker.start()
        # Subscribed before the daemon starts: no report can be published before it listens.
        self.subscriber = ReportSubscriber(HOST, self.broker.port, REPORT_TOPIC, "soak-counter")
        if not self.subscriber.wait_subscribed(10):
            raise SystemExit("soak: the subscriber could not subscribe within 10 s")
        config = daemon_config(args, self.folder, self.broker.port)
        self.daemon = start_daemon(config, self.log_path)
        self.started = time.monotonic()
        # The first sample one interval in: at 0 s it would be the bare interpreter.
        next_sample, bounce_at = args.sample_every, self.next_bounce_in()
        restart_at: float | None = None
        progress = tqdm(
            total=round(args.duration),
            unit="s",
            desc="soak",
            disable=args.no_progress,
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} s [{elapsed}<{remaining}]{postfix}",
        )
        try:
            while (now := self.elapsed()) < args.duration:
                if self.daemon.poll() is not None:
                    self.died, self.daemon_exit = True, self.daemon.returncode
                    return
                if restart_at is None and now >= bounce_at:
                    down = self.rng.uniform(*args.down_for)
                    self.stop_broker()
                    self.outages.append({"at_s": round(now, 1), "down_s": round(down, 1)})
                    restart_at = now + down
                elif restart_at is not None and now >= restart_at:
                    self.broker.start()
                    restart_at, bounce_at = None, now + self.next_bounce_in()
                if now >= next_sample:
                    self.sample()
                    next_sample += args.sample_every
                progress.n = min(round(now), progress.total)
                latest = self.samples[-1] if self.samples else None
                progress.set_postfix(
                    broker="up" if self.broker.running() else "DOWN",
                    bounces=len(self.outages),
                    reports=len(self.subscriber.payloads()),
                    rss_mb=megabytes(latest.rss_kb) if latest else "-",
                    refresh=True,
                )
                time.sleep(0.5)
        finally:
            progress.close()
        if not self.broker.running():
            self.broker.start()
        self.sample()
        self.ended = self.elapsed()

    def finish(self) -> None:
        """Broker up: drain the backlog, stop the daemon (its last window is reported then),
        drain again."""
        assert self.daemon is not None and self.subscriber is not None
        drain = self.args.drain
        self.subscriber.wait_for(self.logged_ends(), "ts_ms", drain)
        self.daemon_exit = stop_daemon(self.daemon, timeout=30)
        self.subscriber.wait_for(self.logged_ends(), "ts_ms", drain)

    def logged_ends(self) -> set[str]:
        return {
            str(round(float(r["window_end_wall"]) * 1000))  # type: ignore[arg-type]
            for r in logged_reports(self.log_path)
        }

    def shutdown(self) -> None:
        if self.daemon is not None:
            code = stop_daemon(self.daemon, timeout=15)
            self.daemon_exit = self.daemon_exit if self.daemon_exit is not None else code
        if self.subscriber is not None:
            self.subscriber.close()
        self.broker.stop()

    def results(self, interrupted: bool) -> dict:
        args = self.args
        received = self.subscriber.payloads() if self.subscriber else []
        reports = check_reports(logged_reports(self.log_path), received)
        warmup = self.warmup_s()
        steady = [s for s in self.samples if s.t_s >= warmup]

        def span(values: list[int]) -> dict[str, int | None]:
            return {"min": min(values, default=None), "max": max(values, default=None)}

        rss_mb = [megabytes(s.rss_kb) for s in self.samples]
        return {
            "duration_s": round(self.ended if self.ended is not None else self.elapsed(), 1)
            if self.started
            else 0.0,
            "planned_duration_s": args.duration,
            "interrupted": interrupted,
            "seed": args.seed,
            "video": str(args.video),
            "window_s": args.window_s,
            "broker_stop_signal": args.signal.upper(),
            "bounces": len(self.outages),
            "broker_down_s": round(sum(o["down_s"] for o in self.outages), 1),
            "outages": self.outages,
            "reports": reports,
            "daemon_died": self.died,
            "daemon_exit_code": self.daemon_exit,
            "warmup_s": warmup,
            "samples": len(self.samples),
            "rss_mb": {
                "first": rss_mb[0] if rss_mb else None,
                "after_warmup": megabytes(steady[0].rss_kb) if steady else None,
                "end": rss_mb[-1] if rss_mb else None,
                "max": max(rss_mb, default=None),
                "growth_mb_per_h": rss_growth_mb_per_h(steady),
                # The same over the later half only: smaller than the whole when RSS is
                # levelling off (the allocator reaching its working set), equal for a leak.
                "growth_second_half_mb_per_h": rss_growth_mb_per_h(
                    [s for s in steady if s.t_s >= (steady[0].t_s + steady[-1].t_s) / 2]
                    if steady
                    else []
                ),
            },
            "fds": {**span([s.fds for s in steady]), "all": span([s.fds for s in self.samples])},
            "threads": {
                **span([s.threads for s in steady]),
                "all": span([s.threads for s in self.samples]),
            },
            "fd_targets": {"after_warmup": self.fds_after_warmup, "end": self.fds_end},
            "sample_series": [asdict(s) for s in self.samples],
        }


def show(value: object) -> str:
    return "-" if value is None else str(value)


def span_text(values: dict) -> str:
    """ "min-max after warm-up (min-max over the whole run)"."""
    steady, whole = values, values["all"]
    return (
        f"{show(steady['min'])}-{show(steady['max'])} ({show(whole['min'])}-{show(whole['max'])})"
    )


def print_table(results: dict) -> None:
    reports, rss = results["reports"], results["rss_mb"]
    duration = f"{results['duration_s']:.0f} s (seed {results['seed']})"
    rows = [
        ("duration", duration + (", INTERRUPTED" if results["interrupted"] else "")),
        (
            "broker bounces",
            f"{results['bounces']} ({results['broker_stop_signal']}), "
            f"down {results['broker_down_s']:.0f} s in all",
        ),
        ("reports made (logged)", str(reports["made"])),
        ("reports received", f"{reports['received_unique']} unique, {reports['received']} in all"),
        ("duplicates", str(reports["duplicates"])),
        ("longest window", f"{show(reports['longest_window_s'])} s"),
        (
            "LOST",
            f"{reports['lost']} (missing {len(reports['missing'])}, gaps {len(reports['gaps'])})",
        ),
        (
            "RSS first / after warm-up / end / max",
            " / ".join(show(rss[key]) for key in ("first", "after_warmup", "end", "max")) + " MB",
        ),
        (
            f"RSS growth after {results['warmup_s']:.0f} s",
            f"{show(rss['growth_mb_per_h'])} MB/h (least squares;"
            f" later half {show(rss['growth_second_half_mb_per_h'])} MB/h)",
        ),
        ("fds after warm-up (all)", span_text(results["fds"])),
        ("threads after warm-up (all)", span_text(results["threads"])),
        ("daemon exit code", show(results["daemon_exit_code"])),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def failures(results: dict) -> list[str]:
    """Why the run failed, one line each; none when it passed."""
    reports, problems = results["reports"], []
    if reports["lost"]:
        problems.append(f"{reports['lost']} report(s) lost")
    if results["daemon_died"]:
        problems.append(f"the daemon exited during the soak ({results['daemon_exit_code']})")
    elif not results["interrupted"] and results["daemon_exit_code"] != 0:
        problems.append(f"the daemon did not stop cleanly ({results['daemon_exit_code']})")
    if not reports["made"]:
        problems.append("the daemon made no report: is it processing frames? (--keep: its log)")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    folder = Path(tempfile.mkdtemp(prefix="edge-agent-soak-"))
    soak = Soak(args, folder)
    interrupted, keep = False, args.keep
    try:
        try:
            soak.run()
            if not soak.died:
                soak.finish()
        except Interrupted as why:
            interrupted = True
            print(f"\nsoak: {why}: stopping the daemon and the broker", file=sys.stderr)
        finally:
            # A second Ctrl-C must not leave the daemon or the broker behind.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            soak.shutdown()
        results = soak.results(interrupted)
        problems = failures(results)
        results["failures"] = problems
        print_table(results)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        for problem in problems:
            print(f"soak: FAILED: {problem}")
        failed = bool(problems)
        keep = keep or failed
        if soak.died:
            print(f"soak: the daemon exited ({soak.daemon_exit}):\n{log_tail(soak.log_path)}")
        if interrupted:
            return 130
        return 1 if failed else 0
    finally:
        if keep:
            print(f"soak: files kept in {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
