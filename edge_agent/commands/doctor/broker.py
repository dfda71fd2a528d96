"""The broker check: one MQTT connection with the configured address, TLS and login; then one
QoS 1 publish to the device's own `doctor` topic (empty, not retained) over a second
connection, to find an ACL that denies the display's topics; and the wording that turns a
socket, TLS, CONNACK or PUBACK failure into its cause and its fix.

The publish goes over MQTT 5 where the broker speaks it, because only MQTT 5 says "Not
authorized" in the PUBACK: mosquitto acknowledges a denied MQTT 3.1.1 publish as if it were
delivered (or hangs up, which MQTT 3.1.1 also allows; that is reported too).

paho is imported only when the check runs.
"""

from __future__ import annotations

import errno
import secrets
import socket
import ssl
import threading
import time
from typing import Any

from edge_agent.commands.doctor import base
from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status

# MQTT 5 reason codes paho reports for the MQTT 3.1.1 CONNACK return codes 4 and 5.
BAD_USER_NAME_OR_PASSWORD = 134
NOT_AUTHORIZED = 135

PASSWORD_FIX = (
    "set the broker login: mqtt.username in the config, and the password as"
    f" EDGE_AGENT__MQTT__PASSWORD=... in {base.DEFAULT_ENV_FILE} (or mqtt.password_file);"
    " then sudo systemctl restart edge-agent"
)


def check_broker(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    mqtt = doctor.config.mqtt
    if not mqtt.enabled:
        return CheckResult("broker", Status.SKIP, "MQTT is off (mqtt.enabled: false)")
    from edge_agent.telemetry.client import new_paho_client

    address = f"{mqtt.host}:{mqtt.port}"
    try:
        link = doctor.config.telemetry_settings().link
    except ValueError as error:
        return CheckResult(
            "broker",
            Status.FAIL,
            str(error),
            "create the password file, readable by the service's user, or set"
            f" EDGE_AGENT__MQTT__PASSWORD in {base.DEFAULT_ENV_FILE}",
        )
    password, tls = link.password, link.tls
    # An id of its own: reusing the daemon's would make the broker drop the daemon's session.
    client_id = f"edge-agent-doctor-{secrets.token_hex(4)}"
    try:
        client = new_paho_client(
            client_id,
            username=mqtt.username,
            password=password,
            tls=tls,
            reconnect_on_failure=False,
            tls_prefix="mqtt.tls.",
        )
    except (OSError, ValueError) as error:  # ssl.SSLError is an OSError
        return CheckResult(
            "broker",
            Status.FAIL,
            f"TLS settings unusable: {error}",
            "check mqtt.tls.ca_file, cert_file and key_file: PEM files readable by this user",
        )
    client.connect_timeout = doctor.timeout
    answers: list[tuple[str, Any]] = []
    answered = threading.Event()

    def on_connect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        answers.append(("connack", reason))
        answered.set()

    def on_disconnect(_client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        answers.append(("closed", reason))
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    started = time.monotonic()
    try:
        # TCP connect, TLS handshake and CONNECT happen here, bounded by connect_timeout.
        client.connect(mqtt.host, mqtt.port, keepalive=mqtt.keepalive_s)
    except OSError as error:
        detail, fix = describe_connect_error(
            error, mqtt.host, mqtt.port, timeout=doctor.timeout, tls=tls is not None
        )
        return CheckResult("broker", Status.FAIL, detail, fix)
    client.loop_start()
    try:
        answered.wait(max(0.1, doctor.timeout - (time.monotonic() - started)))
    finally:
        client.disconnect()
        client.loop_stop()
    who = f"as user {mqtt.username}" if mqtt.username is not None else "anonymously"
    if not answers:
        return CheckResult(
            "broker",
            Status.FAIL,
            f"{address} accepted the connection but sent no CONNACK within {doctor.timeout:g} s",
            "is this an MQTT broker's port? with TLS on the broker, set mqtt.tls.enabled: true"
            " (usually port 8883); else look at the broker's log",
        )
    kind, reason = answers[0]
    if kind == "closed":
        hint = (
            "the broker may want a client certificate (mqtt.tls.cert_file, key_file)"
            if tls
            else "a TLS port? then set mqtt.tls.enabled: true"
        )
        return CheckResult(
            "broker",
            Status.FAIL,
            f"{address} closed the connection before accepting it ({reason})",
            f"{hint}; check the broker's log for why it hung up",
        )
    if reason.is_failure:
        detail, fix = describe_refusal(reason, address, mqtt.username)
        return CheckResult("broker", Status.FAIL, detail, fix)
    encryption = "no TLS"
    if tls is not None:
        encryption = "TLS" if tls.verify_hostname else "TLS, host name not checked"
    detail = f"connected to {address} ({encryption}, {who})"
    if password is not None and mqtt.username is None:
        detail += "; a password is set but no mqtt.username, so it is not used"
    settings = doctor.config.telemetry_settings()
    topic = f"{settings.base_topic}/{settings.site}/{settings.device}/{DOCTOR_LEAF}"
    denied = probe_publish(
        mqtt.host,
        mqtt.port,
        topic,
        username=mqtt.username,
        password=password,
        tls=tls,
        timeout=doctor.timeout,
    )
    if denied is not None:
        problem, fix = denied
        return CheckResult("broker", Status.FAIL, f"{detail}, but {problem}", fix)
    return CheckResult("broker", Status.PASS, detail)


DOCTOR_LEAF = "doctor"  # <base>/<site>/<device>/doctor: inside the display's own ACL rights


def acl_fix(topic: str) -> str:
    root = topic.rsplit("/", 1)[0]
    return (
        f"give the display's MQTT user write access to {root}/# in the broker's ACL"
        ' (docs/fleet.md, "Credentials and access control"), or correct mqtt.username; the'
        ' broker\'s log shows "Denied PUBLISH"'
    )


def probe_publish(
    host: str,
    port: int,
    topic: str,
    *,
    username: str | None,
    password: str | None,
    tls: Any,
    timeout: float,
) -> tuple[str, str] | None:
    """One empty, non-retained QoS 1 publish to `topic`. None if the broker took it; else
    (what went wrong, the fix). MQTT 5 first; MQTT 3.1.1 if the broker does not accept 5."""
    import paho.mqtt.client as paho

    for protocol in (paho.MQTTv5, paho.MQTTv311):
        outcome = _publish_once(host, port, topic, username, password, tls, timeout, protocol)
        if outcome != "no connection":
            return outcome if isinstance(outcome, tuple) else None
    return None  # the connection check itself passed; nothing more to say here


def _publish_once(
    host: str,
    port: int,
    topic: str,
    username: str | None,
    password: str | None,
    tls: Any,
    timeout: float,
    protocol: int,
) -> tuple[str, str] | str | None:
    """None: acknowledged; (problem, fix); or "no connection" (try another protocol)."""
    from edge_agent.telemetry.client import new_paho_client

    client = new_paho_client(
        f"edge-agent-doctor-{secrets.token_hex(4)}",
        username=username,
        password=password,
        tls=tls,
        reconnect_on_failure=False,
        protocol=protocol,
        tls_prefix="mqtt.tls.",
    )
    client.connect_timeout = timeout
    events: list[tuple[str, Any]] = []
    happened = threading.Condition()

    def note(kind: str, reason: Any) -> None:
        with happened:
            events.append((kind, reason))
            happened.notify_all()

    client.on_connect = lambda _c, _u, _f, reason, _p: note("connack", reason)
    client.on_disconnect = lambda _c, _u, _f, reason, _p: note("closed", reason)
    client.on_publish = lambda _c, _u, _mid, reason, _p: note("puback", reason)

    def wait_for(kinds: tuple[str, ...], deadline: float) -> tuple[str, Any] | None:
        with happened:
            while True:
                for event in events:
                    if event[0] in kinds:
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                happened.wait(left)

    deadline = time.monotonic() + timeout
    try:
        client.connect(host, port, keepalive=60)
    except OSError:
        return "no connection"
    client.loop_start()
    try:
        answer = wait_for(("connack", "closed"), deadline)
        if answer is None or answer[0] == "closed" or answer[1].is_failure:
            return "no connection"
        events.clear()
        client.publish(topic, b"", qos=1, retain=False)
        answer = wait_for(("puback", "closed"), deadline)
    finally:
        client.disconnect()
        client.loop_stop()
    if answer is None:
        return (
            f"no PUBACK for a test publish to {topic} within {timeout:g} s",
            "look at the broker's log; a slow network may need a longer --timeout",
        )
    kind, reason = answer
    if kind == "closed":
        return (
            f"the broker closed the connection after a publish to {topic}: check its ACL",
            acl_fix(topic),
        )
    if reason.is_failure:
        return (
            f"the broker refused a publish to {topic} ({reason}): check its ACL",
            acl_fix(topic),
        )
    return None


def describe_connect_error(
    error: OSError, host: str, port: int, *, timeout: float, tls: bool
) -> tuple[str, str]:
    """(detail, fix) for a connection that failed before MQTT could say anything."""
    address = f"{host}:{port}"
    check_address = "check mqtt.host and mqtt.port, the network, and any firewall between"
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"TLS: the certificate of {address} is not trusted:"
            f" {getattr(error, 'verify_message', None) or error}",
            "set mqtt.tls.ca_file to the CA that signed the broker's certificate, and use a"
            " host name the certificate lists (or mqtt.tls.verify_hostname: false)",
        )
    if isinstance(error, ssl.SSLError):
        return (
            f"TLS handshake with {address} failed: {error.reason or error}",
            "is it the broker's TLS port (usually 8883)? if the broker has no TLS, set"
            " mqtt.tls.enabled: false; a client certificate goes in mqtt.tls.cert_file/key_file",
        )
    if tls and isinstance(error, ConnectionResetError | ConnectionAbortedError):
        # A plain MQTT listener takes the TLS hello for a malformed CONNECT and hangs up.
        return (
            f"TLS handshake with {address} failed: the broker hung up ({error.strerror})",
            "is it the broker's TLS port (usually 8883)? if the broker has no TLS, set"
            " mqtt.tls.enabled: false",
        )
    if isinstance(error, socket.gaierror):
        return (
            f"cannot resolve the host name {host!r}: {error.strerror}",
            "check the spelling of mqtt.host and this display's DNS (resolvectl status,"
            " /etc/resolv.conf); an IP address avoids DNS",
        )
    if isinstance(error, ConnectionRefusedError):
        return (
            f"connection refused by {address}: nothing listens there",
            "install and start the broker (sudo apt install mosquitto; sudo systemctl enable"
            f" --now mosquitto), or {check_address}",
        )
    if isinstance(error, TimeoutError):
        return (f"no answer from {address} within {timeout:g} s (timed out)", check_address)
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return (f"{address} is unreachable: {error.strerror}", check_address)
    return (f"cannot connect to {address}: {error.strerror or error}", check_address)


def describe_refusal(reason: Any, address: str, username: str | None) -> tuple[str, str]:
    """(detail, fix) for a CONNACK that said no."""
    who = f"user {username}" if username is not None else "an anonymous client"
    code = getattr(reason, "value", None)
    if code == BAD_USER_NAME_OR_PASSWORD:
        return f"{address} refused the login: bad user name or password for {who}", PASSWORD_FIX
    if code == NOT_AUTHORIZED:
        # What mosquitto answers to a wrong password as well as to an unknown user.
        why = "the broker wants a login" if username is None else "wrong password or unknown user"
        return f"{address} refused the login: {who} is not authorised ({why})", PASSWORD_FIX
    return (
        f"{address} refused the connection: {reason}",
        "look at the broker's log for why; check mqtt.client_id and the broker's settings",
    )
