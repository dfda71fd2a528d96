"""Outage drill: the real daemon on looping demo footage, the real broker stopped for minutes.

    .venv/bin/python scripts/outage_drill.py [--down-s 600] [--window-s 5] [--out drill.json]

Phases: broker up (`--up-s`), broker process stopped (SIGTERM, `--down-s`), broker started
again, then the daemon runs until its outbox is empty, and stops. A subscriber with a
persistent session (QoS 1, clean_session false) on a mosquitto with persistence counts every
window report that arrives. The drill passes when every report the daemon made arrived
(compared by id), in order, and prints a table; `--out` writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from mqtt_bench_support import HOST, Mosquitto, summary
from report_subscriber import ReportSubscriber

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.config import load_config  # noqa: E402
from edge_agent.daemon import Daemon  # noqa: E402


def frame_row(values: list[float]) -> dict[str, float | None]:
    """Pipeline time per frame in one phase (ms): count, mean, p50, p99 (nearest rank)."""
    if not values:
        return {"frames": 0, "mean": None, "p50": 0.0, "p99": 0.0}
    stats = summary(values, (50, 99))
    return {
        "frames": len(values),
        "mean": round(stats["mean"], 3),
        "p50": round(stats["p50"], 3),
        "p99": round(stats["p99"], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--up-s", type=float, default=30.0)
    parser.add_argument("--down-s", type=float, default=600.0)
    parser.add_argument("--after-s", type=float, default=30.0)
    parser.add_argument("--window-s", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="edge-agent-drill-"))
    broker = Mosquitto(folder, persistence_folder=folder).start()
    port = broker.port
    counter = ReportSubscriber(
        HOST, port, "edge-agent/drill/screen/audience/report", client_id="outage-drill-counter"
    )
    environ = {
        "EDGE_AGENT__SOURCE__SPEC": str(REPO / "samples" / "demo.mp4"),
        "EDGE_AGENT__SOURCE__LOOP": "true",
        "EDGE_AGENT__SOURCE__REALTIME": "true",
        "EDGE_AGENT__ADS__PLAYER": "none",
        "EDGE_AGENT__ADS__RULES": str(REPO / "ads" / "rules.yaml"),
        "EDGE_AGENT__AUDIENCE__WINDOW_S": str(args.window_s),
        "EDGE_AGENT__AUDIENCE__MIN_SEGMENT_SIZE": "1",
        "EDGE_AGENT__STATE__DIR": str(folder / "state"),
        "EDGE_AGENT__MQTT__PORT": str(port),
        "EDGE_AGENT__MQTT__HOST": HOST,
        "EDGE_AGENT__MQTT__SITE": "drill",
        "EDGE_AGENT__MQTT__DEVICE": "screen",
        "EDGE_AGENT__MQTT__RECONNECT_MAX_S": "5",
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "10",
    }
    made: list[float] = []
    phase = {"name": "up"}
    frame_ms: dict[str, list[float]] = {"up": [], "down": [], "after": []}  # pipeline only

    def on_frame(result: object) -> None:
        frame_ms[phase["name"]].append(result.times.total_ms)  # type: ignore[attr-defined]

    daemon = Daemon(
        load_config(None, environ=environ),
        on_report=lambda report: made.append(report.window_end_wall),
        on_frame=on_frame,
    )
    runner = threading.Thread(target=daemon.run, name="daemon")
    runner.start()
    peak_backlog = 0

    def wait(seconds: float) -> None:
        nonlocal peak_backlog
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            assert daemon.telemetry is not None
            peak_backlog = max(peak_backlog, daemon.telemetry.outbox.count())
            time.sleep(0.5)

    print(f"broker up for {args.up_s:.0f} s", flush=True)
    wait(args.up_s)
    broker.stop()
    phase["name"] = "down"
    print(f"broker DOWN for {args.down_s:.0f} s", flush=True)
    wait(args.down_s)
    reports_while_down = len(made)
    broker.start()
    phase["name"] = "after"
    print(f"broker up again; running {args.after_s:.0f} s more", flush=True)
    wait(args.after_s)
    daemon.stop()
    runner.join(timeout=30)
    time.sleep(1.0)
    counter.close()
    broker.stop()

    received = counter.payloads()
    received_ids = [str(payload["id"]) for payload in received]
    received_ts = [int(payload["ts_ms"]) for payload in received]  # type: ignore[call-overload]
    unique = list(dict.fromkeys(received_ids))
    first_ts = {}
    for message_id, ts in zip(received_ids, received_ts, strict=True):
        first_ts.setdefault(message_id, ts)
    ordered = [first_ts[i] for i in unique]
    results = {
        "down_s": args.down_s,
        "window_s": args.window_s,
        "reports_made": len(made),
        "reports_made_before_recovery": reports_while_down,
        "reports_received_unique": len(unique),
        "duplicates": len(received_ids) - len(unique),
        "lost": len(made) - len(unique),
        "in_order": ordered == sorted(ordered),
        "peak_outbox_backlog": peak_backlog,
        "pipeline_ms_per_frame": {name: frame_row(values) for name, values in frame_ms.items()},
    }
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    shutil.rmtree(folder, ignore_errors=True)
    return 0 if results["lost"] == 0 and results["in_order"] else 1


if __name__ == "__main__":
    sys.exit(main())
