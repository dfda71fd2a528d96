"""The paho client every MQTT connection of ours starts from: the link, the dashboard, the
demo's view and `edge-agent doctor` differ only in what they do once connected."""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.telemetry.tls import tls_file_problems
from edge_agent.telemetry.values import TlsSettings


def new_paho_client(
    client_id: str,
    *,
    username: str | None = None,
    password: str | None = None,
    tls: TlsSettings | None = None,
    reconnect_min_s: float = 1.0,
    reconnect_max_s: float = 60.0,
    reconnect_on_failure: bool = True,
    protocol: int = mqtt.MQTTv311,
    tls_prefix: str = "TLS ",
) -> mqtt.Client:
    """A paho 2.x MQTT 3.1.1 client (clean session) with credentials, TLS and back-off set:
    what every connection of ours has in common (the link, the dashboard, the demo's view).
    `protocol=mqtt.MQTTv5` for a client that must see the broker's reason codes (doctor).
    A TLS file that is missing or not PEM raises ValueError naming it, after `tls_prefix`
    (the daemon's "mqtt.tls.": "mqtt.tls.ca_file /etc/...: no such file")."""
    if tls is not None:
        problems = tls_file_problems(tls.ca_file, tls.cert_file, tls.key_file, prefix=tls_prefix)
        if problems:
            raise ValueError("; ".join(problems))
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        # MQTT 5 has no clean_session; connect(clean_start=...) defaults to a clean start.
        clean_session=True if protocol != mqtt.MQTTv5 else None,
        protocol=protocol,
        reconnect_on_failure=reconnect_on_failure,
    )
    client.reconnect_delay_set(  # type: ignore[arg-type]  # paho does float arithmetic
        min_delay=reconnect_min_s, max_delay=reconnect_max_s
    )
    if username is not None:
        client.username_pw_set(username, password)
    if tls is not None:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
        if not tls.verify_hostname:
            client.tls_insecure_set(True)
    return client
