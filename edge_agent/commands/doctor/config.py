"""The config check, the first one: it loads the configuration as the service does (the file,
then the environment file's overrides, as systemd's EnvironmentFile= reads them) and leaves it
in the run for every check that needs it. It fails, too, on what `run`'s preflight refuses
(`edge_agent.commands.preflight`): a state folder it cannot write, a missing source file or TLS
file.
"""

from __future__ import annotations

import os

from edge_agent.commands.doctor import base
from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status


def parse_environment_file(text: str) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them: # and ; start a comment line,
    blank lines are ignored, a value may be in single or double quotes."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key:
            continue  # systemd ignores such a line too (and logs it)
        values[key] = _unquote(value.strip())
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        out, chars = [], iter(value[1:-1])
        for char in chars:
            # Inside double quotes systemd takes a backslash only before " \ ` $.
            if char == "\\":
                following = next(chars, "")
                out.append(following if following in '"\\`$' else char + following)
            else:
                out.append(char)
        return "".join(out)
    out, chars = [], iter(value)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def check_config(doctor: DoctorRun) -> CheckResult:
    from edge_agent.config import ENV_PREFIX, load_config

    environ = dict(os.environ)
    env_note, env_problem, env_status, env_fix = "", "", Status.PASS, None
    if doctor.env_file is not None:
        try:
            from_file = parse_environment_file(doctor.env_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            env_problem = f"cannot read {doctor.env_file} ({reason}), so its overrides are missing"
            # The default file is root's: without sudo that is expected, not a failure.
            env_status = Status.FAIL if doctor.env_file_explicit else Status.WARN
            env_fix = (
                "check the path given to --env-file"
                if isinstance(error, FileNotFoundError)
                else f"run as root (sudo edge-agent doctor) so {doctor.env_file} is read"
            )
        else:
            environ.update(from_file)
            overrides = sum(name.upper().startswith(ENV_PREFIX) for name in from_file)
            env_note = (
                f" + {overrides} override{'' if overrides == 1 else 's'} from {doctor.env_file}"
            )
    doctor.environ = environ
    try:
        doctor.config = load_config(doctor.config_path, environ=environ)
    except ValueError as error:  # ConfigError: every problem, with file, line and key path
        target = doctor.config_path or "a config file"
        return CheckResult(
            "config",
            Status.FAIL,
            "\n".join(filter(None, [str(error), env_problem])),
            f"correct the lines named (`edge-agent config check {target}` lists every"
            " problem; config.yaml in the repository documents each key)",
        )
    from edge_agent.commands.preflight import preflight

    # What `run` would refuse to start on (the rules have a check of their own).
    refused = [f for f in preflight(doctor.config, doctor.config_path, environ) if f.stops_run]
    if refused:
        return CheckResult(
            "config",
            Status.FAIL,
            "\n".join(filter(None, [*(str(finding) for finding in refused), env_problem])),
            "correct the settings named: `edge-agent run` refuses to start until then",
        )
    if doctor.config_path is None:
        loaded = f"no {base.DEFAULT_CONFIG}: built-in defaults{env_note}"
    else:
        loaded = f"{doctor.config_path} loaded{env_note}"
    detail = f"{loaded}; {env_problem}" if env_problem else loaded
    return CheckResult("config", env_status, detail, env_fix)
