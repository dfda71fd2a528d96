"""The broker check: one MQTT connection with the configured address, TLS and login, closed again
without publishing; and the wording that turns a socket, TLS or CONNACK failure into its cause
and its fix.

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
    return CheckResult("broker", Status.PASS, detail)


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
