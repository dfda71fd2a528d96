from __future__ import annotations

import socket

from edge_agent.systemd import SystemdNotifier


def test_without_notify_socket_nothing_happens(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False and notifier.watchdog() is False


def test_messages_reach_a_real_socket(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    notifier = SystemdNotifier()
    assert notifier.ready("watching") and notifier.watchdog() and notifier.stopping()
    assert server.recv(256) == b"READY=1\nSTATUS=watching"
    assert server.recv(256) == b"WATCHDOG=1"
    assert server.recv(256) == b"STOPPING=1"
    notifier.close()
    server.close()


def test_abstract_socket_names(monkeypatch):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0edge-agent-test-notify")
    server.settimeout(2)
    notifier = SystemdNotifier("@edge-agent-test-notify")
    assert notifier.watchdog()
    assert server.recv(64) == b"WATCHDOG=1"
    server.close()


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "10000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert SystemdNotifier("").watchdog_interval_s() == 5.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert SystemdNotifier("").watchdog_interval_s() is None


def test_unreachable_socket_does_not_raise(tmp_path):
    notifier = SystemdNotifier(str(tmp_path / "nobody-listens.sock"))
    assert notifier.enabled and notifier.ready() is False
