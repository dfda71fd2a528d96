"""ACL drill: the real telemetry stage and MQTT link against a mosquitto whose ACL denies every
topic of the device, for a given time; counts the connections (from the broker's log) and
the warnings (from the link's log).

    .venv/bin/python scripts/acl_drill.py [--duration-s 600] [--login anonymous|user]
                                          [--protocol 3.1.1|5] [--window-s 5] [--out drill.json]

The ACL gives rights to another user only. What mosquitto 2.0.11 (Debian 12's) does with a
publish it denies depends on the login and the protocol, seen here:

- `--login anonymous` (no user name; the default): it closes the connection right after the
  denied publish ("Bad socket read/write ... Unknown error" in its log). That is the reconnect
  spin of issue 15: about one connection a second before the fix, because each connection is
  first accepted and paho then starts its back-off again.
- `--login user` (a user name with a password but no ACL lines, as with a wrong user name):
  with MQTT 3.1.1 it acknowledges the publish as if it were delivered and drops it. The client
  cannot tell; `edge-agent doctor`'s publish check (over MQTT 5) is what finds it.
- `--protocol 5`: the link speaks MQTT 5 and mosquitto answers a denied publish with PUBACK
  reason code 0x87 (Not authorized); the link reports it and keeps the message in the outbox.

The drill passes when the broker saw at most `--max-connects` connections (10) and the link
logged at most `--max-warnings` warnings and errors (10) in the whole run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from mqtt_bench_support import Mosquitto

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_agent.config import load_config  # noqa: E402
from edge_agent.telemetry.client import MqttLink  # noqa: E402
from edge_agent.telemetry.stage import TelemetryStage  # noqa: E402
from tests.support.telemetry import report  # noqa: E402

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

# Rights for another user only: the device (anonymous here, as with a wrong user name) may
# publish nothing at all.
ACL = "user somebody-else\ntopic write somewhere/else/#\n"
USER, PASSWORD = "door-1", "drill-password"


def run_drill(args: argparse.Namespace, folder: Path) -> dict[str, object]:
    acl_file = folder / "acl"
    acl_file.write_text(ACL)
    extra = [f"acl_file {acl_file}", "log_type notice", "connection_messages true"]
    if args.login == "user":
        passwords = folder / "passwords"
        subprocess.run(
            [MOSQUITTO_PASSWD, "-c", "-b", str(passwords), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        extra += ["allow_anonymous false", f"password_file {passwords}"]
    broker = Mosquitto(folder, port=args.port or None, extra=extra).start()
    log_file = folder / "link.log"
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    environ = {
        "EDGE_AGENT__MQTT__HOST": broker.host,
        "EDGE_AGENT__MQTT__PORT": str(broker.port),
        "EDGE_AGENT__MQTT__SITE": "drill",
        "EDGE_AGENT__MQTT__DEVICE": "door-1",
    }
    if args.login == "user":
        environ |= {"EDGE_AGENT__MQTT__USERNAME": USER, "EDGE_AGENT__MQTT__PASSWORD": PASSWORD}
    config = load_config(None, environ=environ)
    settings = dataclasses.replace(config.telemetry_settings(), state_dir=folder / "state")
    stage = TelemetryStage(settings)
    if args.protocol == "5":
        old = stage.link
        stage.link = MqttLink(
            settings.link,
            stage.outbox,
            availability_topic=old.availability_topic,
            make_availability=old.make_availability,
            subscriptions=old.subscriptions,
            protocol=mqtt.MQTTv5,
        )
    started = time.monotonic()
    stage.start()
    reports = 0
    try:
        while time.monotonic() - started < args.duration_s:
            time.sleep(args.window_s)
            stage.report(report(time.time(), passers_by=reports % 7, window_s=args.window_s))
            reports += 1
    finally:
        status = stage.link.status()
        pending = stage.outbox.count()
        stage.stop(flush_timeout_s=1.0)
        broker.stop()
        root.removeHandler(handler)
        handler.close()
    broker_log = broker.log_path.read_text(errors="replace") if broker.log_path.exists() else ""
    connects = broker_log.count("New client connected from")
    link_lines = log_file.read_text(errors="replace").splitlines()
    warnings = [line for line in link_lines if " WARNING " in line or " ERROR " in line]
    return {
        "login": args.login,
        "protocol": args.protocol,
        "duration_s": round(time.monotonic() - started, 1),
        "mosquitto": broker.version,
        "connects": connects,
        "link_attempts": getattr(status, "attempts", None),  # None: a link before issue 15
        "warnings": len(warnings),
        "warning_lines": warnings[:20],
        "reports_made": reports,
        "outbox_pending_at_end": pending,
        "refused_pubacks": getattr(status, "refused", None),
        "acknowledged": status.acknowledged,
        "passed": connects <= args.max_connects and len(warnings) <= args.max_warnings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--login", choices=("anonymous", "user"), default="anonymous")
    parser.add_argument("--protocol", choices=("3.1.1", "5"), default="3.1.1")
    parser.add_argument("--port", type=int, default=0, help="the broker's port; 0: a free one")
    parser.add_argument("--window-s", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--max-connects", type=int, default=10)
    parser.add_argument("--max-warnings", type=int, default=10)
    parser.add_argument("--out", type=Path, help="write the result as JSON here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="acl-drill-") as tmp:
        result = run_drill(args, Path(tmp))
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
