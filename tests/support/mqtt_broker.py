"""A real MQTT broker and real paho clients for the tests that talk MQTT.

The broker is mosquitto when it is installed, else the pure-Python amqtt broker, each in its own
process on 127.0.0.1 (so a test can stop, restart or SIGKILL it like the broker a device really
talks to). EDGE_AGENT_MQTT_BROKER=mosquitto|amqtt forces one; EDGE_AGENT_REQUIRE_MOSQUITTO=1 (CI)
turns a missing mosquitto into a failure instead of a quiet fallback.

amqtt cannot do everything mosquitto does. Each broker says what it can through attributes
(`supports_persistent_sessions`, `supports_client_certs`, `supports_acl`,
`queues_for_offline_sessions`, `marks_queued_messages_retained`) so a test can skip with a
reason instead of failing; asking amqtt for something it would silently not enforce (a required
client certificate, an ACL, raw mosquitto settings) raises `UnsupportedFeature`.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NoReturn, Self

import paho.mqtt.client as mqtt

BROKER_ENV = "EDGE_AGENT_MQTT_BROKER"
REQUIRE_MOSQUITTO_ENV = "EDGE_AGENT_REQUIRE_MOSQUITTO"
KINDS = ("mosquitto", "amqtt")

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
# How long a client helper waits for something the broker should do at once. Generous, because a
# loaded 2-core CI runner can stall a process for seconds; a passing test never waits this long.
WAIT_S = 10.0

# Debian puts mosquitto in /usr/sbin, which is not on a normal user's PATH.
MOSQUITTO_FALLBACK = Path("/usr/sbin/mosquitto")


class BrokerUnavailable(RuntimeError):
    """No broker of the wanted kind can run here (or the environment forbids the one that can)."""


class UnsupportedFeature(BrokerUnavailable):
    """The broker cannot provide an option the test asked for; running without it would lie."""


class BrokerStartError(RuntimeError):
    """The broker process did not come up; the message carries its log."""


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    if os.access(MOSQUITTO_FALLBACK, os.X_OK):
        return str(MOSQUITTO_FALLBACK)
    return None


def amqtt_installed() -> bool:
    return importlib.util.find_spec("amqtt") is not None


def mosquitto_required() -> bool:
    return os.environ.get(REQUIRE_MOSQUITTO_ENV) == "1"


def chosen_broker_kind() -> str:
    """Which broker to run, "mosquitto" or "amqtt", from the environment and what is installed.

    Raises BrokerUnavailable with the reason when the choice cannot be honoured.
    """
    forced = os.environ.get(BROKER_ENV, "").strip().lower()
    if forced and forced not in KINDS:
        raise BrokerUnavailable(f"{BROKER_ENV}={forced!r}: expected one of {', '.join(KINDS)}")
    if mosquitto_required() and forced == "amqtt":
        # CI asks for the real thing; a forced fallback there would make its green mean less.
        raise BrokerUnavailable(f"{BROKER_ENV}=amqtt contradicts {REQUIRE_MOSQUITTO_ENV}=1")
    if forced != "amqtt" and find_mosquitto():
        return "mosquitto"
    if forced == "mosquitto" or mosquitto_required():
        why = f"{BROKER_ENV}=mosquitto" if forced == "mosquitto" else f"{REQUIRE_MOSQUITTO_ENV}=1"
        raise BrokerUnavailable(
            f"mosquitto is not installed (not on PATH, not {MOSQUITTO_FALLBACK}), and {why}"
        )
    if amqtt_installed():
        return "amqtt"
    raise BrokerUnavailable("no MQTT broker: install mosquitto, or amqtt into the venv")


def broker_class(kind: str | None = None) -> type[Broker]:
    kind = kind or chosen_broker_kind()
    return {"mosquitto": MosquittoBroker, "amqtt": AmqttBroker}[kind]


def skip_or_fail(error: BrokerUnavailable) -> NoReturn:
    """For fixtures: a missing broker skips the test, unless CI demands mosquitto."""
    import pytest

    if mosquitto_required() and not isinstance(error, UnsupportedFeature):
        pytest.fail(str(error), pytrace=False)
    pytest.skip(str(error))


_ports_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on now. Never the same one twice in this process, because the kernel
    may hand a just-released port straight back and two brokers would then race for it."""
    while True:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        if port not in _ports_handed_out:
            _ports_handed_out.add(port)
            return port


def port_is_listening(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _port_is_bindable(port: int) -> bool:
    # SO_REUSEADDR as the brokers use it: connections in TIME_WAIT from the broker's previous
    # run do not count, only another listener does.
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


_live_brokers: weakref.WeakSet[Broker] = weakref.WeakSet()


@atexit.register
def _kill_leftover_brokers() -> None:
    # A test that forgets close() must not leave a broker holding ports after pytest exits.
    for broker in list(_live_brokers):
        with contextlib.suppress(Exception):
            broker.kill()


class Broker:
    """One broker process on 127.0.0.1, on ports chosen at construction and kept across restarts.

    `Broker(workdir, ...)` builds the kind `chosen_broker_kind()` picks (MosquittoBroker or
    AmqttBroker), the way pathlib.Path builds PosixPath. Nothing runs until start() (or `with`).
    Config, certificates, password file, persistence file and logs all live in `workdir`.
    """

    kind: ClassVar[str]
    # Subscriptions and queued QoS 1/2 messages of clean_session=False clients survive restart().
    supports_persistent_sessions: ClassVar[bool]
    # require_client_cert=True is enforced: TLS clients without a certificate from ca_file are
    # refused.
    supports_client_certs: ClassVar[bool]
    # `acl=` (mosquitto's acl_file text) and `extra_config=` (raw mosquitto.conf lines) work.
    supports_acl: ClassVar[bool] = False
    # Messages queued for a disconnected clean_session=False subscriber arrive with retain set.
    marks_queued_messages_retained: ClassVar[bool] = False
    # The signal that makes the broker shut down cleanly (mosquitto saves its database on it).
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    host = HOST

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        if cls is Broker:
            cls = broker_class()
        return super().__new__(cls)

    def __init__(
        self,
        workdir: Path,
        *,
        tls: bool = False,
        require_client_cert: bool = False,
        users: dict[str, str] | None = None,
        persistence: bool = True,
        acl: str | None = None,
        extra_config: Iterable[str] = (),
    ) -> None:
        """`acl`: the text of an ACL file (mosquitto's acl_file format; mosquitto only).
        `extra_config`: more mosquitto.conf lines, e.g. "max_qos 0" (mosquitto only)."""
        if require_client_cert and not tls:
            raise ValueError("require_client_cert needs tls=True")
        if require_client_cert and not self.supports_client_certs:
            raise UnsupportedFeature(f"{self.kind} cannot require client certificates")
        self.extra_config = list(extra_config)
        if (acl is not None or self.extra_config) and not self.supports_acl:
            raise UnsupportedFeature(f"{self.kind} has no ACL file or mosquitto settings")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.require_client_cert = require_client_cert
        self.users = dict(users) if users else {}
        self.persistence = persistence
        self.port = free_port()
        self.tls_port: int | None = free_port() if tls else None
        self.output_file = self.workdir / f"{self.kind}.out"
        self._process: subprocess.Popen[bytes] | None = None
        self.ca_file: Path | None = None
        self.server_cert_file: Path | None = None
        self.server_key_file: Path | None = None
        if tls:
            self._make_tls_files()
        self.acl_file: Path | None = None
        if acl is not None:
            self.acl_file = self.workdir / "acl"
            self.acl_file.write_text(acl)
        self.password_file: Path | None = None
        if self.users:
            self.password_file = self.workdir / "passwords"
            self._write_password_file(self.password_file)

    # -- what each kind does differently -------------------------------------------------------

    @property
    def queues_for_offline_sessions(self) -> bool:
        """QoS 1/2 messages for a disconnected clean_session=False subscriber wait for it."""
        return True

    def _write_password_file(self, path: Path) -> None:
        raise NotImplementedError

    def _write_config(self) -> list[str]:
        """Write the config file for the current settings; return the command that runs it."""
        raise NotImplementedError

    def _log_files(self) -> list[Path]:
        return [self.output_file]

    # -- process lifetime ----------------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.is_running and self._process else None

    @property
    def ports(self) -> list[int]:
        return [self.port] + ([self.tls_port] if self.tls_port else [])

    def start(self) -> None:
        """Run the broker and return once every listener accepts TCP connections."""
        if self.is_running:
            raise RuntimeError(f"{self.kind} is already running (pid {self.pid})")
        taken = [port for port in self.ports if not _port_is_bindable(port)]
        if taken:
            # Without this check the readiness probe below would connect to the intruder.
            raise BrokerStartError(f"port(s) {taken} on {HOST} already in use by another process")
        command = self._write_config()
        with self.output_file.open("ab") as output:
            self._process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        _live_brokers.add(self)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(self.ports)
        while True:
            # Checked last too: a broker may open one listener and then die on the next.
            if self._process.poll() is not None:
                raise BrokerStartError(
                    f"{self.kind} exited with status {self._process.returncode} while starting"
                    f"\n{self.log_text()}"
                )
            if not waiting:
                return
            waiting = [port for port in waiting if not port_is_listening(port)]
            if waiting and time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"{self.kind} did not listen on {HOST}:{waiting} within {START_TIMEOUT_S} s"
                    f"\n{self.log_text()}"
                )
            if waiting:
                time.sleep(0.05)

    def stop(self) -> None:
        """Shut the broker down cleanly (mosquitto writes its persistence file now) and wait."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(self.stop_signal)
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
                raise RuntimeError(
                    f"{self.kind} ignored {self.stop_signal.name} for {STOP_TIMEOUT_S} s; killed it"
                    f"\n{self.log_text()}"
                ) from None
        self._process = None
        _live_brokers.discard(self)

    def kill(self) -> None:
        """SIGKILL, like a power cut: nothing is saved, the ports close at once."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process = None
        _live_brokers.discard(self)

    def restart(self) -> None:
        """stop() then start(): same ports, same persistence file, same certificates and users."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def cpu_seconds(self) -> float:
        """User plus system CPU time the broker process has used so far (for benchmarks)."""
        pid = self.pid
        if pid is None:
            raise RuntimeError(f"{self.kind} is not running")
        stat = Path(f"/proc/{pid}/stat").read_text()
        # Fields after the command name, which is in parentheses and may itself hold spaces.
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def log_text(self, tail_chars: int = 8000) -> str:
        """The end of the broker's own log and its stdout/stderr, for failure messages."""
        parts = []
        for path in self._log_files():
            if path.exists():
                text = path.read_text(errors="replace")[-tail_chars:]
                parts.append(f"--- {path.name} ---\n{text}")
        return "\n".join(parts) or f"(no {self.kind} output in {self.workdir})"

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        tls = f", tls_port={self.tls_port}" if self.tls_port else ""
        return f"<{type(self).__name__} {HOST}:{self.port}{tls} {state}>"

    # -- TLS ------------------------------------------------------------------------------------

    def _make_tls_files(self) -> None:
        import trustme

        folder = self.workdir / "tls"
        folder.mkdir(exist_ok=True)
        self._ca = trustme.CA()
        server = self._ca.issue_cert(HOST, "localhost")
        self.ca_file = folder / "ca.pem"
        self.server_cert_file = folder / "server.pem"
        self.server_key_file = folder / "server.key"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        with self.server_cert_file.open("wb") as chain:
            for pem in server.cert_chain_pems:
                chain.write(pem.bytes())
        server.private_key_pem.write_to_path(str(self.server_key_file))

    def client_cert(self, name: str) -> tuple[Path, Path]:
        """A client certificate (cert file, key file) with common name `name`, from ca_file's CA."""
        if not self.tls:
            raise RuntimeError("client certificates need a broker made with tls=True")
        # An identity is needed besides the common name: a certificate whose subjectAltName
        # extension is empty is malformed.
        leaf = self._ca.issue_cert(f"{name}@clients.edge-agent.test", common_name=name)
        cert_file = self.workdir / "tls" / f"client-{name}.pem"
        key_file = self.workdir / "tls" / f"client-{name}.key"
        leaf.cert_chain_pems[0].write_to_path(str(cert_file))
        leaf.private_key_pem.write_to_path(str(key_file))
        return cert_file, key_file


class MosquittoBroker(Broker):
    kind = "mosquitto"
    supports_persistent_sessions = True
    supports_client_certs = True
    supports_acl = True

    def __init__(self, workdir: Path, **options: Any) -> None:
        executable = find_mosquitto()
        if executable is None:
            raise BrokerUnavailable("mosquitto is not installed")
        self.executable = executable
        self.config_file = Path(workdir) / "mosquitto.conf"
        self.log_file = Path(workdir) / "mosquitto.log"
        super().__init__(workdir, **options)

    def _write_password_file(self, path: Path) -> None:
        tool = shutil.which("mosquitto_passwd") or str(
            Path(self.executable).parent / "mosquitto_passwd"
        )
        if not os.access(tool, os.X_OK):
            raise BrokerUnavailable("mosquitto_passwd not found (it comes with mosquitto)")
        path.unlink(missing_ok=True)
        for username, password in self.users.items():
            create = ["-c"] if not path.exists() else []
            subprocess.run(
                [tool, *create, "-b", str(path), username, password],
                check=True,
                capture_output=True,
            )

    def _write_config(self) -> list[str]:
        lines = [
            f"listener {self.port} {HOST}",
        ]
        if self.tls_port is not None:
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {self.ca_file}",
                f"certfile {self.server_cert_file}",
                f"keyfile {self.server_key_file}",
                f"require_certificate {str(self.require_client_cert).lower()}",
            ]
        # per_listener_settings is false by default, so these apply to every listener.
        if self.password_file:
            lines += ["allow_anonymous false", f"password_file {self.password_file}"]
        else:
            lines += ["allow_anonymous true"]
        if self.acl_file:
            lines += [f"acl_file {self.acl_file}"]
        lines += self.extra_config
        if self.persistence:
            lines += [
                "persistence true",
                # mosquitto appends the file name to this as is: the trailing slash matters.
                f"persistence_location {self.workdir}/",
                "persistence_file mosquitto.db",
            ]
        lines += [
            # The default of 1000 would drop messages in a long outage test; 0 means no limit.
            "max_queued_messages 0",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto switches to the "mosquitto" user, which cannot read pytest's
            # 0700 temp folders; "root" tells it to stay.
            lines.append("user root")
        self.config_file.write_text("\n".join(lines) + "\n")
        return [self.executable, "-c", str(self.config_file)]

    def _log_files(self) -> list[Path]:
        return [self.log_file, self.output_file]


class AmqttBroker(Broker):
    """amqtt 0.12's broker script in a child Python.

    Its gaps, found in its source: sessions live only in memory (its SQL session plugin needs
    sqlalchemy, and keeps only retained messages, not queued ones); a TLS listener asks for a
    client certificate but never requires one; a disconnected clean_session=False subscriber only
    gets messages queued if it logged in with a password (allow_anonymous marks every session
    anonymous, and anonymous sessions get nothing queued), and those arrive with retain set.
    """

    kind = "amqtt"
    supports_persistent_sessions = False
    supports_client_certs = False
    marks_queued_messages_retained = True
    # Not SIGINT, though its script shuts down cleanly only on KeyboardInterrupt: that can land
    # inside asyncio's own callbacks, where it is swallowed and the broker hangs. SIGTERM just
    # ends the process, which loses nothing, as amqtt keeps nothing on disk.
    stop_signal = signal.SIGTERM

    def __init__(self, workdir: Path, **options: Any) -> None:
        if not amqtt_installed():
            raise BrokerUnavailable("amqtt is not installed")
        self.config_file = Path(workdir) / "amqtt.yaml"
        super().__init__(workdir, **options)

    @property
    def queues_for_offline_sessions(self) -> bool:
        return bool(self.users)

    def _write_password_file(self, path: Path) -> None:
        # amqtt reads argon2 (or bcrypt) hashes through pwdlib, a dependency of amqtt itself.
        from pwdlib.hashers.argon2 import Argon2Hasher

        hasher = Argon2Hasher()
        lines = [f"{username}:{hasher.hash(password)}" for username, password in self.users.items()]
        path.write_text("\n".join(lines) + "\n")

    def _write_config(self) -> list[str]:
        listeners: dict[str, dict[str, Any]] = {
            "default": {"type": "tcp", "bind": f"{HOST}:{self.port}"},
        }
        if self.tls_port is not None:
            listeners["tls"] = {
                "type": "tcp",
                "bind": f"{HOST}:{self.tls_port}",
                "ssl": True,
                "cafile": str(self.ca_file),
                "certfile": str(self.server_cert_file),
                "keyfile": str(self.server_key_file),
            }
        auth = "amqtt.plugins.authentication"
        plugins: dict[str, dict[str, Any]] = {
            f"{auth}.AnonymousAuthPlugin": {"allow_anonymous": not self.users},
        }
        if self.password_file:
            plugins[f"{auth}.FileAuthPlugin"] = {"password_file": str(self.password_file)}
        # Listing plugins replaces amqtt's defaults, which would also publish $SYS topics.
        config = {"listeners": listeners, "plugins": plugins}
        # JSON is YAML, and needs no YAML writer.
        self.config_file.write_text(json.dumps(config, indent=2))
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(self.config_file)]


def make_broker(workdir: Path, **options: Any) -> Broker:
    """A broker of the chosen kind, not started. Raises BrokerUnavailable/UnsupportedFeature."""
    return broker_class()(workdir, **options)


def start_broker(workdir: Path, **options: Any) -> Broker:
    """make_broker() and start() it."""
    broker = make_broker(workdir, **options)
    broker.start()
    return broker


# -- clients ------------------------------------------------------------------------------------


def make_client(
    broker: Broker,
    *,
    client_id: str = "",
    clean_session: bool = True,
    tls: bool = False,
    ca_file: Path | None = None,
    client_cert: tuple[Path, Path] | None = None,
    username: str | None = None,
    password: str | None = None,
    reconnect_on_failure: bool = True,
) -> mqtt.Client:
    """A paho 2.x MQTT 3.1.1 client set up for `broker`, not connected.

    tls=True means the broker's TLS listener, trusting `ca_file` (default: the broker's own CA).
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
        reconnect_on_failure=reconnect_on_failure,
    )
    if tls:
        trusted = ca_file or broker.ca_file
        if trusted is None or broker.tls_port is None:
            raise ValueError(f"{broker!r} has no TLS listener")
        certfile, keyfile = client_cert or (None, None)
        client.tls_set(
            ca_certs=str(trusted),
            certfile=str(certfile) if certfile else None,
            keyfile=str(keyfile) if keyfile else None,
        )
    if username is not None:
        client.username_pw_set(username, password)
    return client


def client_port(broker: Broker, tls: bool) -> int:
    if not tls:
        return broker.port
    if broker.tls_port is None:
        raise ValueError(f"{broker!r} has no TLS listener")
    return broker.tls_port


@dataclass(frozen=True)
class ConnectOutcome:
    accepted: bool
    reason: str  # the CONNACK's reason, or what broke the connection before one came


def try_connect(
    broker: Broker, *, timeout: float = WAIT_S, **client_options: Any
) -> ConnectOutcome:
    """Connect once (make_client options) and report whether the broker let the client in."""
    client = make_client(broker, reconnect_on_failure=False, **client_options)
    outcome: list[ConnectOutcome] = []
    errors: list[str] = []
    settled = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, _: Any) -> None:
        outcome.append(ConnectOutcome(not reason.is_failure, str(reason)))
        settled.set()

    def on_disconnect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, _: Any) -> None:
        # A TLS alert (say, "certificate required") arrives only after paho's handshake returned,
        # as a broken connection whose cause paho only logs.
        outcome.append(ConnectOutcome(False, "; ".join(errors) or f"disconnected: {reason}"))
        settled.set()

    def on_log(client: mqtt.Client, userdata: Any, level: int, text: str) -> None:
        if level == mqtt.MQTT_LOG_ERR:
            errors.append(text)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_log = on_log
    try:
        client.connect(broker.host, client_port(broker, client_options.get("tls", False)))
    except OSError as error:  # refused, or a TLS handshake the client itself rejected
        return ConnectOutcome(False, f"{type(error).__name__}: {error}")
    client.loop_start()
    try:
        if not settled.wait(timeout):
            return ConnectOutcome(False, f"no CONNACK within {timeout} s")
        return outcome[0]
    finally:
        client.disconnect()
        client.loop_stop()


def publish(
    broker: Broker,
    messages: Iterable[tuple[str, bytes | str]],
    *,
    qos: int = 1,
    retain: bool = False,
    timeout: float = WAIT_S,
    **client_options: Any,
) -> None:
    """Publish (topic, payload) pairs from a fresh client; return once the broker has them all
    (PUBACK/PUBCOMP for QoS 1/2), so a test can stop or restart the broker right after."""
    client = make_client(broker, reconnect_on_failure=False, **client_options)
    connected = threading.Event()
    refusal: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, _: Any) -> None:
        if reason.is_failure:
            refusal.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, client_port(broker, client_options.get("tls", False)))
    client.loop_start()
    try:
        if not connected.wait(timeout) or refusal:
            raise ConnectionError(f"publisher not let in by {broker!r}: {refusal or 'no CONNACK'}")
        sent = [client.publish(topic, body, qos=qos, retain=retain) for topic, body in messages]
        deadline = time.monotonic() + timeout
        for info in sent:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError(f"{broker!r} did not acknowledge message {info.mid} in time")
    finally:
        client.disconnect()
        client.loop_stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    qos: int


class Collector:
    """A real paho subscriber that records what it receives, for tests to wait on.

    It subscribes in on_connect, so its subscriptions come back whenever paho reconnects (after a
    broker restart, say) and a clean_session=True client loses nothing it could have kept.
    """

    def __init__(
        self,
        broker: Broker,
        topics: list[str],
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        qos: int = 1,
        connect: bool = True,
        **client_options: Any,
    ) -> None:
        self.broker = broker
        self.topics = list(topics)
        self.qos = qos
        self.client_id = client_id or f"collector-{uuid.uuid4().hex[:8]}"
        self._port = client_port(broker, client_options.get("tls", False))
        self._client = make_client(
            broker, client_id=self.client_id, clean_session=clean_session, **client_options
        )
        # Come back quickly after a restart; paho's default starts at 1 s and doubles to 120 s.
        # (paho annotates the delays as int, but only does arithmetic and sleeps with them.)
        self._client.reconnect_delay_set(min_delay=0.1, max_delay=1)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        # Reentrant, so a wait_for() predicate may call messages().
        self._condition = threading.Condition(threading.RLock())
        self._received: list[Received] = []
        self._connected = False
        self._subscribe_mid: int | None = None
        self.ready_connections = 0  # connections whose subscriptions the broker acknowledged
        self.session_present: list[bool] = []  # per accepted connection, from its CONNACK
        self.last_error: str | None = None
        self._looping = False
        if connect:
            self.connect()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._condition:
            if reason.is_failure:
                self.last_error = f"CONNACK: {reason}"
            else:
                self._connected = True
                self.session_present.append(bool(flags.session_present))
                wanted = [(topic, self.qos) for topic in self.topics]
                _, self._subscribe_mid = client.subscribe(wanted)
            self._condition.notify_all()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        with self._condition:
            if mid != self._subscribe_mid:
                return
            refused = [str(reason) for reason in reasons if reason.is_failure]
            if refused:
                self.last_error = f"SUBACK refused: {refused}"
            else:
                self.ready_connections += 1
            self._condition.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._condition:
            self._received.append(
                Received(message.topic, bytes(message.payload), bool(message.retain), message.qos)
            )
            self._condition.notify_all()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._condition:
            self._connected = False
            if reason.is_failure:
                self.last_error = f"disconnected: {reason}"
            self._condition.notify_all()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        with self._condition:
            self.last_error = "connection attempt failed"
            self._condition.notify_all()

    @property
    def is_connected(self) -> bool:
        with self._condition:
            return self._connected

    def connect(self) -> None:
        """(Re)connect in paho's background thread, retrying until the broker is there."""
        if self._looping:
            return
        self._client.connect_async(self.broker.host, self._port)
        self._client.loop_start()
        self._looping = True

    def disconnect(self) -> None:
        """Say DISCONNECT and stop the network thread. A clean_session=False session stays on the
        broker; connect() picks it up again."""
        if not self._looping:
            return
        self._client.disconnect()
        self._client.loop_stop()
        self._looping = False
        with self._condition:
            self._connected = False
            self._condition.notify_all()

    close = disconnect

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        """Wait until predicate() holds (checked whenever something arrives); False on timeout."""
        with self._condition:
            return self._condition.wait_for(predicate, timeout)

    def wait_connected(self, timeout: float = WAIT_S, *, connections: int = 1) -> bool:
        """Wait until the `connections`-th connection is up AND its subscriptions acknowledged,
        so that a message published right after cannot beat the subscription."""
        return self.wait_for(
            lambda: self._connected and self.ready_connections >= connections, timeout
        )

    def messages(self, topic_filter: str | None = None) -> list[Received]:
        with self._condition:
            return [
                message
                for message in self._received
                if topic_filter is None or mqtt.topic_matches_sub(topic_filter, message.topic)
            ]

    def payloads(self, topic_filter: str | None = None) -> list[bytes]:
        return [message.payload for message in self.messages(topic_filter)]

    def wait_for_messages(
        self, count: int, topic_filter: str | None = None, timeout: float = WAIT_S
    ) -> list[Received]:
        """The first `count` messages (matching topic_filter); AssertionError if they don't come."""
        if not self.wait_for(lambda: len(self.messages(topic_filter)) >= count, timeout):
            raise AssertionError(
                f"{self!r} got {len(self.messages(topic_filter))} of {count} messages"
                f" in {timeout} s\n{self.broker.log_text()}"
            )
        return self.messages(topic_filter)[:count]

    def __repr__(self) -> str:
        with self._condition:
            return (
                f"<Collector {self.client_id} on {self.topics} connected={self._connected}"
                f" ready_connections={self.ready_connections} received={len(self._received)}"
                f" last_error={self.last_error!r}>"
            )
