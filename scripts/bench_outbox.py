#!/usr/bin/env python3
"""How fast is the durable outbox: put latency on the producer's thread, drain throughput.

Each run uses fresh SQLite files in `--dir` (a temporary folder by default: say where the
daemon's state folder lives, fsync costs differ between an SD card, an SSD and tmpfs):

- put, NORMAL / FULL:  N puts of ≈400-byte JSON reports into an empty outbox, one transaction
  each, with `synchronous=NORMAL` (the default) and `FULL` (an fsync per commit).
- put at the bound:    N stats puts into an outbox held at `max_messages`, so every put also
  drops the oldest stats message.
- drain, ack each:     what the MQTT sender does: pending(100), mark_sent, then one ack per
  message (a PUBACK each), until empty.
- drain, ack_many:     the same with one ack_many per batch.
- open:                opening an outbox holding `--open-messages` messages (the default bound),
  which includes PRAGMA quick_check over the whole file.

Prints a table (latencies in µs, throughput in messages/s) and writes every number to JSON.
Usage: scripts/bench_outbox.py [--messages 10000] [--dir DIR] [--out bench-outbox.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from edge_agent.telemetry.outbox import Importance, Outbox, Synchronous


def report_payload(n: int) -> bytes:
    """An audience report of about 400 bytes, shaped like the real one."""
    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "display": "shop-12/screen-3",
            "window_start": "2025-01-01T12:00:00Z",
            "window_s": 60,
            "n": n,
            "passers_by": 17,
            "viewers": 6,
            "segments": {
                "female/20-34": 5,
                "female/35-49": 3,
                "male/20-34": 4,
                "male/35-49": 2,
                "other": 1,
                "unknown": 2,
            },
            "dwell_s": {"mean": 7.4, "median": 5.1, "p90": 16.2, "max": 31.0},
            "attention_s": {"mean": 2.2, "median": 1.4, "p90": 5.3, "max": 9.8},
        }
    ).encode()


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def latency_row(seconds: list[float]) -> dict[str, float | int]:
    us = sorted(s * 1e6 for s in seconds)
    return {
        "n": len(us),
        "p50_us": percentile(us, 50),
        "p99_us": percentile(us, 99),
        "max_us": us[-1],
        "per_s": len(us) / sum(seconds),
    }


def timed_puts(
    outbox: Outbox, payloads: list[bytes], importance: Importance, prefix: str
) -> list[float]:
    times = []
    for n, payload in enumerate(payloads):
        start = time.perf_counter()
        outbox.put("edge/s/report", payload, message_id=f"{prefix}-{n}", importance=importance)
        times.append(time.perf_counter() - start)
    return times


def drain(outbox: Outbox, batched: bool) -> dict[str, float | int]:
    delivered = 0
    start = time.perf_counter()
    while batch := outbox.pending(limit=100):
        seqs = [m.seq for m in batch]
        outbox.mark_sent(seqs)
        if batched:
            outbox.ack_many(seqs)
        else:
            for seq in seqs:
                outbox.ack(seq)
        delivered += len(batch)
    elapsed = time.perf_counter() - start
    return {"n": delivered, "seconds": elapsed, "per_s": delivered / elapsed}


def filesystem_of(folder: Path) -> str:
    """The mount's filesystem type, from /proc/mounts (Linux); "?" elsewhere."""
    try:
        mounts = [line.split()[1:3] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "?"
    folder = folder.resolve()
    best = max(
        (m for m in mounts if folder.is_relative_to(m[0])), key=lambda m: len(m[0]), default=None
    )
    return best[1] if best else "?"


def run(folder: Path, messages: int, open_messages: int) -> dict[str, Any]:
    payloads = [report_payload(n) for n in range(messages)]
    rows: dict[str, dict[str, float | int]] = {}
    drains: dict[str, dict[str, float | int]] = {}
    modes: tuple[Synchronous, ...] = ("NORMAL", "FULL")
    for mode in modes:
        with Outbox(folder / f"put-{mode.lower()}.db", synchronous=mode) as outbox:
            rows[f"put, {mode}"] = latency_row(timed_puts(outbox, payloads, Importance.REPORT, "r"))
            drains[f"drain {mode}, ack each"] = drain(outbox, batched=False)
            timed_puts(outbox, payloads, Importance.REPORT, "again")
            drains[f"drain {mode}, ack_many"] = drain(outbox, batched=True)

    bound = max(1, messages // 2)
    with Outbox(folder / "bound.db", max_messages=bound) as outbox:
        timed_puts(outbox, payloads[:bound], Importance.STATS, "fill")
        rows["put at the bound, NORMAL"] = latency_row(
            timed_puts(outbox, payloads, Importance.STATS, "s")
        )
        dropped = outbox.dropped()[Importance.STATS]

    big = folder / "open.db"
    with Outbox(big) as outbox:
        for n in range(open_messages):
            outbox.put("t", payloads[n % len(payloads)], message_id=f"o-{n}")
    start = time.perf_counter()
    Outbox(big).close()
    open_s = time.perf_counter() - start

    return {
        "latency": rows,
        "drain": drains,
        "bound": {"max_messages": bound, "dropped": dropped},
        "open": {"messages": open_messages, "bytes": big.stat().st_size, "seconds": open_s},
        "payload_bytes": sum(map(len, payloads)) / len(payloads),
    }


def print_table(result: dict[str, Any]) -> None:
    print(f"{'put latency':<28}{'n':>7}{'p50 µs':>10}{'p99 µs':>10}{'max µs':>10}{'puts/s':>10}")
    for name, r in result["latency"].items():
        print(
            f"{name:<28}{r['n']:>7}{r['p50_us']:>10.1f}{r['p99_us']:>10.1f}"
            f"{r['max_us']:>10.0f}{r['per_s']:>10.0f}"
        )
    print(f"\n{'drain':<28}{'n':>7}{'msgs/s':>10}")
    for name, r in result["drain"].items():
        print(f"{name:<28}{r['n']:>7}{r['per_s']:>10.0f}")
    o = result["open"]
    print(
        f"\nopen with quick_check: {o['messages']} messages, {o['bytes'] / 1e6:.1f} MB,"
        f" {o['seconds'] * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--open-messages", type=int, default=100_000, help="messages in the file timed on open"
    )
    parser.add_argument("--dir", type=Path, help="where the SQLite files go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=Path("bench-outbox.json"))
    args = parser.parse_args(argv)
    if args.messages < 2:
        parser.error("--messages must be at least 2")

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-outbox-", dir=args.dir) as tmp:
        folder = Path(tmp)
        result = run(folder, args.messages, args.open_messages)
        fs = filesystem_of(folder)
    result["machine"] = {
        "platform": platform.platform(),
        "processor": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "filesystem": fs,
    }
    m = result["machine"]
    print(
        f"{args.messages} messages of ≈{result['payload_bytes']:.0f} bytes, SQLite {m['sqlite']},"
        f" {m['filesystem']} on {m['platform']}, {m['cpus']} CPUs"
    )
    print_table(result)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
