"""sd_notify without a dependency: READY, WATCHDOG, STATUS and STOPPING to systemd.

Does nothing (and never raises) when NOTIFY_SOCKET is unset, so the daemon runs the same
under systemd, in a terminal and in tests.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class SystemdNotifier:
    def __init__(self, address: str | None = None) -> None:
        address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        # "@name" is Linux's abstract namespace, written with a leading NUL byte.
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._socket: socket.socket | None = None
        if self._address:
            try:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            except OSError as error:
                log.warning("cannot create the systemd notify socket: %s", error)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def watchdog_interval_s(self) -> float | None:
        """Half of WATCHDOG_USEC, the interval systemd recommends pinging at; None if unset."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2_000_000
        except ValueError:
            return None

    def notify(self, **fields: str | int) -> bool:
        """Send KEY=value lines, e.g. notify(READY=1, STATUS="running")."""
        if self._socket is None or self._address is None:
            return False
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        try:
            self._socket.sendto(message, self._address)
        except OSError as error:
            log.debug("systemd notify failed: %s", error)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(READY=1, STATUS=status) if status else self.notify(READY=1)

    def watchdog(self) -> bool:
        return self.notify(WATCHDOG=1)

    def status(self, text: str) -> bool:
        return self.notify(STATUS=text)

    def stopping(self) -> bool:
        return self.notify(STOPPING=1)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
