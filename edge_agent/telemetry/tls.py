"""The TLS files of the MQTT connection, checked before anything connects.

ssl and paho report a bad file as `FileNotFoundError` without the setting's name, or as
`[SSL] PEM lib (_ssl.c:3900)`, which names nothing. Each problem here is one line that names
the setting, the file and what is wrong with it, for `config check` and for start-up alike.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

# A certificate chain is a few kilobytes; reading more guards against a device file
# (/dev/zero) named by mistake.
MAX_PEM_BYTES = 1024 * 1024
_PEM_BEGIN = b"-----BEGIN "


def _file_problem(setting: str, path: Path) -> str | None:
    """Missing, not a regular file, unreadable, too big or without a PEM block: one line."""
    where = f"{setting} {path}"
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{where}: no such file"
    except OSError as error:
        return f"{where}: cannot be read ({error.strerror or error})"
    if not stat.S_ISREG(info.st_mode):
        return f"{where}: not a regular file"
    if info.st_size > MAX_PEM_BYTES:
        return f"{where}: {info.st_size:,} bytes, too big for a PEM file"
    try:
        with path.open("rb") as file:
            head = file.read(MAX_PEM_BYTES)
    except OSError as error:
        user = f" by user {os.getuid()}" if hasattr(os, "getuid") else ""
        return f"{where}: cannot be read{user} ({error.strerror or error})"
    if _PEM_BEGIN not in head:
        return f"{where}: not a PEM file (no '-----BEGIN' line; DER? convert it with openssl)"
    return None


def tls_file_problems(
    ca_file: Path | None,
    cert_file: Path | None,
    key_file: Path | None,
    *,
    prefix: str = "mqtt.tls.",
) -> list[str]:
    """One line per problem with the CA, certificate and key files (None: not used).
    The files are also loaded the way the connection will load them, so a PEM file that
    holds the wrong thing (a key as the CA, a key that does not match its certificate) is
    caught here too."""
    problems = []
    named = {"ca_file": ca_file, "cert_file": cert_file, "key_file": key_file}
    for name, path in named.items():
        if path is not None:
            problem = _file_problem(prefix + name, Path(path))
            if problem is not None:
                problems.append(problem)
    if problems:
        return problems
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, ValueError) as error:
            problems.append(
                f"{prefix}ca_file {ca_file}: no usable CA certificate in it"
                f" ({getattr(error, 'reason', None) or error})"
            )
    if cert_file is not None and key_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except ssl.SSLError as error:
            reason = getattr(error, "reason", None) or str(error)
            if "KEY_VALUES_MISMATCH" in reason:
                detail = "the key does not belong to the certificate"
            else:
                detail = f"not a certificate and its private key ({reason})"
            problems.append(f"{prefix}cert_file {cert_file} / key_file {key_file}: {detail}")
        except OSError as error:
            problems.append(
                f"{prefix}cert_file {cert_file} / key_file {key_file}: {error.strerror or error}"
            )
    return problems
