"""A camera that is down: the windows still close on the clock, with nobody in them, and the
stats keep coming and say the source is down."""

from __future__ import annotations

import json
import logging
import threading
import time

from edge_agent.config import load_config
from edge_agent.daemon import Daemon
from tests.faults.inputs_support import write_config

WINDOW_S = 1.0


def test_windows_close_on_time_and_stats_say_the_source_is_down(tmp_path, caplog):
    # No such device: every open fails, and the reader retries with back-off.
    config = write_config(
        tmp_path,
        tmp_path / "unused.avi",
        source={"spec": "/dev/video97"},
        audience={"window_s": WINDOW_S},
        logging={"stats_interval_s": 1},
    )
    reports = []
    daemon = Daemon(load_config(config, environ={}), on_report=reports.append)
    runner = threading.Thread(target=daemon.run, name="test-daemon")
    with caplog.at_level(logging.INFO, logger="edge_agent.daemon"):
        runner.start()
        # Frames count as gone after 2 s; from then on one window a second.
        deadline = time.monotonic() + 30
        while len(reports) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        daemon.stop()
        runner.join(10)
    assert not runner.is_alive()
    closed_on_time = reports[:-1]  # the last one is the flush at the stop
    assert len(closed_on_time) >= 2, reports
    for report in closed_on_time:
        assert report.passers_by == 0 and report.viewers == 0
        length = report.window_end_wall - report.window_start_wall
        assert WINDOW_S <= length < WINDOW_S + 0.75, length  # on the tick, not at a frame
    messages = [record.getMessage() for record in caplog.records]
    stats = [json.loads(m) for m in messages if '"type": "stats"' in m]
    assert stats, caplog.text
    assert all(s["fps"] == 0 and s["source_connected"] is False for s in stats), stats
