"""A broker inside the process, for `edge-agent demo` on a machine that has none.

The demo should show the whole product, MQTT included, right after a checkout: no
mosquitto to install, no configuration. amqtt (pure Python, the `broker` extra) runs on
127.0.0.1 in a thread with its own event loop, anonymous, nothing on disk. It is a
demonstration aid, not a production broker: a display in a store publishes to mosquitto,
on the device or central.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)

HOST = "127.0.0.1"


class BrokerMissing(RuntimeError):
    """amqtt is not installed."""


def free_port(preferred: int = 0) -> int:
    """`preferred` if nothing listens there, else any free port."""
    for candidate in (preferred, 0) if preferred else (0,):
        with socket.socket() as probe:
            # As the broker's own listener does (asyncio sets it): the connections of a run
            # that just ended, still in TIME_WAIT, do not make the port look taken, and a quick
            # re-run stays on 1883, where the README's dashboard command looks. A listener
            # there still refuses the bind.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, candidate))
            except OSError:
                continue
            return int(probe.getsockname()[1])
    raise RuntimeError("no free TCP port on 127.0.0.1")


class EmbeddedBroker:
    def __init__(self, preferred_port: int = 1883) -> None:
        """On `preferred_port` if it is free (so another terminal can find it), else on any
        free port; `.port` says which."""
        self.port = free_port(preferred_port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker: Any = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise BrokerMissing(
                "the demo's built-in MQTT broker needs amqtt: pip install 'edge-agent[broker]'"
                " (scripts/run-demo.sh does), or give --broker HOST:PORT"
            ) from None
        auth = "amqtt.plugins.authentication"
        config = {
            "listeners": {"default": {"type": "tcp", "bind": self.address}},
            # Listing the plugins replaces amqtt's defaults, which would add $SYS topics.
            "plugins": {f"{auth}.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                self._broker = Broker(config, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as error:  # reported to start()'s caller
                self._error = error
                self._ready.set()
                loop.close()
                return
            self._ready.set()
            loop.run_forever()
            loop.close()

        # amqtt logs every connection at INFO: keep the demo's terminal for the demo.
        for noisy in ("amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        self._thread = threading.Thread(target=serve, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s):
            raise RuntimeError(f"the built-in MQTT broker did not start on {self.address}")
        if self._error is not None:
            raise RuntimeError(
                f"the built-in MQTT broker cannot listen on {self.address}: {self._error}"
            )

    def stop(self, timeout_s: float = 5.0) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        try:
            asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(timeout_s)
        except Exception as error:
            log.debug("the built-in broker did not shut down cleanly: %s", error)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
