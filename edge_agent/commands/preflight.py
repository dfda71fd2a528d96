"""What a valid configuration still needs from this machine, checked before anything starts.

    findings = preflight(config, Path("config.yaml"))
    for finding in findings: print(finding)      # FILE:LINE: key.path: reason

`edge-agent run` refuses to start on a finding that `stops_run` (one line each, non-zero exit:
systemd's status shows it) and `edge-agent config check` lists every finding. Both look at
the same things, without opening the camera or the broker:

- `state.dir` is a folder this user can write in, or one it can create;
- the debug frames folder likewise, when that option is on;
- `ads.rules` is a readable file (when the ads are on). Not fatal for `run`: it starts with the
  last good copy of the rules when there is one, and says why otherwise;
- a video file, image file or folder named by `source.spec` exists and can be read;
- the TLS files exist and parse as PEM (when TLS is on).

A finding is located like every other configuration problem: the file and line of the key,
or the environment variable that set it. Writing is tried for real, as the user running the
check (`sudo edge-agent config check` checks as root, the service runs as edge-agent). A full
disk is not a finding: the daemon must start and ride it out (the outbox's job).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from edge_agent.config.base import ConfigError, ConfigProblem
from edge_agent.config.loading import ENV_PREFIX
from edge_agent.config.model import Config
from edge_agent.telemetry.tls import tls_file_problems as telemetry_tls_problems
from edge_agent.validated_yaml import KeyPath, parse_yaml


@dataclass(frozen=True, slots=True)
class Finding:
    problem: ConfigProblem
    stops_run: bool = True  # False: `run` copes on its own (and logs it); config check fails

    def __str__(self) -> str:
        return str(self.problem)


class PreflightError(ConfigError):
    """`run` cannot start on this machine; one finding per line."""


def preflight(
    config: Config,
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every finding for `config` as loaded from `config_path` with `environ`'s overrides."""
    where = _Locator(config_path, os.environ if environ is None else environ)
    findings: list[Finding] = []

    def add(path: KeyPath, message: str, *, stops_run: bool = True) -> None:
        findings.append(Finding(where.problem(path, message), stops_run))

    for message in _folder_problems(config.state.dir):
        add(("state", "dir"), message)
    debug_dir = config.debug.save_annotated_frames_dir
    if debug_dir is not None:
        for message in _folder_problems(debug_dir):
            add(("debug", "save_annotated_frames_dir"), message)
    if config.ads.enabled:
        for message in _readable_file_problems(config.ads.rules):
            add(("ads", "rules"), message, stops_run=False)
    for message in _source_problems(config.source.spec):
        add(("source", "spec"), message)
    if config.mqtt.enabled and config.mqtt.tls.enabled:
        for key, message in tls_file_problems(config):
            add(("mqtt", "tls", key), message)
    return findings


def refuse_to_start(findings: list[Finding]) -> None:
    """PreflightError with the findings that stop `run`, if there are any."""
    stopping = [finding.problem for finding in findings if finding.stops_run]
    if stopping:
        raise PreflightError(stopping)


# --------------------------------------------------------------------------------------------
# The checks: each gives the reasons a path is unusable, as text without the key.


# A disk that is full now: `run` must still start (and count in memory) rather than refuse.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _folder_problems(folder: Path) -> list[str]:
    """A folder to write in: it is one and takes a new file, or it can be created."""
    if folder.exists():
        if not folder.is_dir():
            return [f"{folder} is not a folder"]
        try:
            # A real write, not os.access(): root passes access() on a read-only mount too.
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as error:
            if error.errno in _FULL:
                return []  # a full disk is for the outbox to ride out, not a setting to fix
            return [f"cannot write in {folder}: {_reason(error)}"]
        return []
    parent = folder.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return [f"cannot create {folder}: {parent} is not a folder"]
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        if error.errno in _FULL:
            return []
        return [f"cannot create {folder}: {parent} is not writable ({_reason(error)})"]
    return []


def _readable_file_problems(path: Path) -> list[str]:
    if not path.exists():
        relative = "" if path.is_absolute() else " (relative to the working directory)"
        return [f"no such file: {path}{relative}"]
    if not path.is_file():
        return [f"{path} is not a file"]
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        return [f"cannot read {path}: {_reason(error)}"]
    return []


def _source_problems(spec: str | int) -> list[str]:
    """A file or folder source must be there now; a camera or stream is only tried by `run`
    (it may come back, and opening it here would take it from a running service)."""
    from edge_agent.sources.spec import is_glob, parse_spec

    parsed = parse_spec(spec)
    if not parsed.is_file:
        return []
    target = str(parsed.target)
    path = Path(target)
    if parsed.kind == "images" and path.is_dir():
        return [] if os.access(path, os.R_OK | os.X_OK) else [f"cannot read the folder {path}"]
    if parsed.kind == "images" and is_glob(target):
        return [] if glob.glob(target) else [f"no file matches {target}"]
    problems = _readable_file_problems(path)
    if not problems and path.stat().st_size == 0:
        problems = [f"{path} is empty"]
    return problems


def check_tls_files(config: Config) -> list[str]:
    """One line per problem with the TLS files of `config` (missing, unreadable, not PEM, not
    loadable as CA / certificate and key); empty when TLS is off or the files are fine."""
    mqtt = config.mqtt
    if not mqtt.enabled or not mqtt.tls.enabled:
        return []
    tls = mqtt.tls
    return telemetry_tls_problems(tls.ca_file, tls.cert_file, tls.key_file)


def tls_file_problems(config: Config) -> list[tuple[str, str]]:
    """(key under mqtt.tls, reason) for each TLS file that is missing, unreadable, not PEM or
    not what it should hold: the MQTT link's own check (telemetry/tls.py), run before it
    connects, so a bad file stops the start with its line instead of at connect time."""
    tls = config.mqtt.tls
    located = []
    for problem in telemetry_tls_problems(tls.ca_file, tls.cert_file, tls.key_file, prefix=""):
        # Each problem starts with the setting it is about: "ca_file PATH: reason", or for a
        # certificate and key that do not go together "cert_file PATH / key_file PATH: reason".
        key, rest = problem.split(" ", 1)
        located.append((key, problem if " / key_file " in rest else rest))
    return located


# --------------------------------------------------------------------------------------------
# Where a key was set


class _Locator:
    """The file line of a key, or the environment variable that overrode it."""

    def __init__(self, config_path: str | os.PathLike[str] | None, environ: Mapping[str, str]):
        self.file = None if config_path is None else os.fspath(config_path)
        self.environ = {
            name.upper(): name for name in environ if name.upper().startswith(ENV_PREFIX)
        }
        self.lines: dict[KeyPath, int] = {}
        if self.file is not None:
            # The file loaded already; this only finds the lines again. Without them the key
            # path still names the setting.
            with contextlib.suppress(Exception):
                _, self.lines = parse_yaml(Path(self.file).read_text(encoding="utf-8"), self.file)

    def problem(self, path: KeyPath, message: str) -> ConfigProblem:
        key = ".".join(str(part) for part in path)
        variable = self.environ.get(ENV_PREFIX + "__".join(str(p) for p in path).upper())
        if variable is not None:
            return ConfigProblem(message, key_path=key, env_var=variable)
        return ConfigProblem(message, self.file, self.lines.get(path), key_path=key)
