"""A camera that is down: the windows still close on the clock, with nobody in them, and the
stats keep coming and say the source is down; all of it reaches a real broker."""

from __future__ import annotations

import json
import threading

from edge_agent.config import load_config
from edge_agent.daemon import Daemon
from tests.faults.inputs_support import write_config

WINDOW_S = 1.0


def test_windows_close_on_time_and_stats_say_the_source_is_down(tmp_path, broker):
    from tests.support.mqtt_broker import Collector

    # No such device: every open fails, and the reader retries with back-off.
    mqtt = {"enabled": True, "host": broker.host, "port": broker.port, "site": "s", "device": "d"}
    config = write_config(
        tmp_path,
        tmp_path / "unused.avi",
        source={"spec": "/dev/video97"},
        audience={"window_s": WINDOW_S},
        logging={"stats_interval_s": 1},
        mqtt=mqtt,
    )
    root = "edge-agent/s/d"
    collector = Collector(broker, [f"{root}/#"])
    assert collector.wait_connected()
    daemon = Daemon(load_config(config, environ={}), on_report=lambda report: None)
    runner = threading.Thread(target=daemon.run, name="test-daemon")
    runner.start()
    try:
        # Frames count as gone after 2 s; from then on one window a second.
        assert collector.wait_for(
            lambda: len(collector.payloads(f"{root}/audience/report")) >= 3, timeout=30
        ), "no window closed while the camera was down"
    finally:
        daemon.stop()
        runner.join(10)
        collector.close()
    assert not runner.is_alive()
    reports = [json.loads(p) for p in collector.payloads(f"{root}/audience/report")]
    for report in reports[:3]:  # closed by the clock (a later one may be the stop's flush)
        assert report["passers_by"] == 0 and report["viewers"] == 0
        assert WINDOW_S <= report["window_s"] < WINDOW_S + 0.75, report  # on the clock
    stats = [json.loads(p) for p in collector.payloads(f"{root}/stats")]
    assert stats, "stats stop while the camera is down"
    assert all(s["source_connected"] is False and s["fps"] == 0 for s in stats), stats
