"""A subscriber that keeps every message of one topic, for the scripts that count reports.

Used by scripts/outage_drill.py and scripts/soak.py (imported as `report_subscriber`: run as
`python scripts/NAME.py`, the script's folder is on sys.path).

It has a persistent session (clean_session false, a fixed client id) and subscribes at QoS 1,
so a mosquitto with persistence keeps what arrives for it while it is cut off, and it
reconnects on its own (every 0.2-1 s) after the broker comes back.
"""

from __future__ import annotations

import json
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


class ReportSubscriber:
    """Every JSON payload that arrives on `topic`, in order of arrival (duplicates kept)."""

    def __init__(self, host: str, port: int, topic: str, client_id: str) -> None:
        self.topic = topic
        self._payloads: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, clean_session=False)
        self.client.reconnect_delay_set(min_delay=0.2, max_delay=1)  # type: ignore[arg-type]
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, _client: object, _userdata: object, message: mqtt.MQTTMessage) -> None:
        payload = json.loads(message.payload)
        with self._lock:
            self._payloads.append(payload)

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the broker has acknowledged the subscription (within `timeout` s)."""
        return self._subscribed.wait(timeout)

    def payloads(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._payloads)

    def ids(self) -> list[str]:
        return [str(payload["id"]) for payload in self.payloads()]

    def wait_for(self, wanted: set[str], key: str, timeout: float) -> set[str]:
        """Wait up to `timeout` s until a payload with each value of `key` in `wanted` has
        arrived; returns the values still missing."""
        deadline = time.monotonic() + timeout
        while True:
            missing = wanted - {str(payload.get(key)) for payload in self.payloads()}
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.2)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
