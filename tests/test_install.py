"""scripts/install.sh in a throw-away root, and the systemd units it installs.

The root starts as a small Debian: its user and group files (with the video, render and input
groups), systemd's own units (so `systemd-analyze verify --root` can resolve the targets) and
the cage binary the kiosk unit starts. The installer runs for real in it: systemd-sysusers
creates the users, pip installs the package into a venv, `systemctl --root` enables the units.
Only apt and starting services are left out, as `--root` promises.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO

INSTALL = REPO / "scripts" / "install.sh"
SERVICE = "/etc/systemd/system/edge-agent.service"
KIOSK = "/etc/systemd/system/edge-agent-kiosk.service"
# Backups and the lock that the shadow tools and systemd-sysusers leave beside what they edit.
ACCOUNT_LEFTOVERS = {"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-", "etc/.pwd.lock"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root")


def required_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("EDGE_AGENT_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(f"{name} is missing, and EDGE_AGENT_REQUIRE_DEPLOY_TOOLS=1")
        pytest.skip(f"{name} is missing (apt-get install systemd cage)")
    return path


def seed_root(root: Path) -> None:
    for folder in ("etc/systemd/system/multi-user.target.wants", "etc/pam.d", "opt", "var/lib",
                   "usr/local/bin", "usr/bin"):  # fmt: skip
        (root / folder).mkdir(parents=True)
    # Like any booted Debian, something else is enabled already (so the folder stays).
    (root / "etc/systemd/system/multi-user.target.wants/cron.service").symlink_to(
        "/lib/systemd/system/cron.service"
    )
    etc = root / "etc"
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nvideo:x:44:\ninput:x:101:\nrender:x:102:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nvideo:*::\ninput:*::\nrender:*::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    units = Path("/usr/lib/systemd/system")
    if units.is_dir():
        shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True)
    cage = shutil.which("cage")
    if cage is not None:
        shutil.copy2(cage, root / "usr/bin/cage")


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root with its type, mode, owner and content (sha256 or link target)."""
    entries: dict[str, tuple[object, ...]] = {}
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        relative = path.relative_to(root).as_posix()
        if stat.S_ISLNK(info.st_mode):
            content: object = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            content = None
        entries[relative] = (stat.filemode(info.st_mode), info.st_uid, info.st_gid, content)
    return entries


def install(root: Path, *options: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(INSTALL), "--root", str(root), *options],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def user_ids(root: Path, name: str) -> tuple[int, int] | None:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    return None


@dataclass
class Installed:
    root: Path
    seed: dict[str, tuple[object, ...]]
    first: subprocess.CompletedProcess[str]
    after_first: dict[str, tuple[object, ...]]
    second: subprocess.CompletedProcess[str]
    after_second: dict[str, tuple[object, ...]]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("install") / "root"
    seed_root(root)
    seed = snapshot(root)
    first = install(root, "--site", "store-7", "--broker", "broker.example:8883")
    after_first = snapshot(root)
    second = install(root)
    return Installed(root, seed, first, after_first, second, snapshot(root))


def test_install_lays_out_the_documented_files(installed: Installed) -> None:
    root = installed.root
    for path in [
        "opt/edge-agent/venv/bin/edge-agent",
        "opt/edge-agent/models/manifest.json",
        "opt/edge-agent/models/face_detection_full_range_int8.tflite",
        "opt/edge-agent/config.example.yaml",
        "opt/edge-agent/docs/mqtt.md",
        "etc/edge-agent/config.yaml",
        "etc/edge-agent/ads/rules.yaml",
        "etc/edge-agent/ads/creatives/welcome.png",
        "etc/sysusers.d/edge-agent.conf",
        "etc/pam.d/edge-agent-kiosk",
        SERVICE.lstrip("/"),
        KIOSK.lstrip("/"),
    ]:
        assert (root / path).is_file(), path
    assert os.readlink(root / "usr/local/bin/edge-agent") == "/opt/edge-agent/venv/bin/edge-agent"
    # Enabled the way systemctl does it: a link in the target's wants folder.
    wants = root / "etc/systemd/system/multi-user.target.wants"
    assert os.readlink(wants / "edge-agent.service") == SERVICE
    assert os.readlink(wants / "edge-agent-kiosk.service") == KIOSK
    # The venv sees system packages (apt's picamera2 on a Pi).
    venv_config = (root / "opt/edge-agent/venv/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in venv_config
    # Models are byte for byte the repository's.
    for model in (REPO / "models").glob("*.tflite"):
        assert (root / "opt/edge-agent/models" / model.name).read_bytes() == model.read_bytes()


def test_users_permissions_and_secrets(installed: Installed) -> None:
    root = installed.root
    daemon = user_ids(root, "edge-agent")
    kiosk = user_ids(root, "edge-agent-kiosk")
    assert daemon is not None and kiosk is not None
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",")
        for line in (root / "etc/group").read_text().splitlines()
    }
    assert "edge-agent" in groups["video"]
    assert {"video", "render", "input"} <= {
        g for g, users in groups.items() if "edge-agent-kiosk" in users
    }
    state = (root / "var/lib/edge-agent").stat()
    assert (state.st_uid, state.st_gid) == daemon
    assert stat.S_IMODE(state.st_mode) == 0o750
    environment = root / "etc/edge-agent/environment"
    assert stat.S_IMODE(environment.stat().st_mode) == 0o600
    assert environment.stat().st_uid == 0


def test_the_written_config_is_valid_and_uses_the_options(installed: Installed) -> None:
    root = installed.root
    config = root / "etc/edge-agent/config.yaml"
    edge_agent = root / "opt/edge-agent/venv/bin/edge-agent"
    check = subprocess.run(
        # The paths it names are the installed system's, not this staged root's.
        [str(edge_agent), "config", "check", "--values-only", str(config)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    from edge_agent.config import load_config

    loaded = load_config(config, environ={})
    assert loaded.mqtt.site == "store-7"
    assert (loaded.mqtt.host, loaded.mqtt.port) == ("broker.example", 8883)
    assert loaded.state.dir == Path("/var/lib/edge-agent")
    assert loaded.ads.rules == Path("/etc/edge-agent/ads/rules.yaml")
    assert loaded.vision.models_dir == Path("/opt/edge-agent/models")
    assert loaded.source.spec in ("picamera", "/dev/video0")


def test_installing_twice_changes_nothing_the_second_time(installed: Installed) -> None:
    assert installed.after_second == installed.after_first
    assert "edge-agent: nothing to change" in installed.second.stdout
    assert "edge-agent: nothing to change" not in installed.first.stdout


def test_units_verify_clean(installed: Installed) -> None:
    analyze = required_tool("systemd-analyze")
    required_tool("cage")
    result = subprocess.run(
        [analyze, "verify", f"--root={installed.root}", SERVICE, KIOSK],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_the_daemon_unit_is_hardened(installed: Installed) -> None:
    analyze = required_tool("systemd-analyze")
    result = subprocess.run(
        [analyze, "security", "--offline=yes", f"--root={installed.root}", SERVICE],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for edge-agent.service: (\d+\.\d)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 3.0, result.stdout


def test_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    seed_root(root)
    before = snapshot(root)
    result = install(root, "--dry-run")
    assert snapshot(root) == before
    assert "would install /etc/systemd/system/edge-agent.service" in result.stdout
    assert "would write /etc/edge-agent/config.yaml" in result.stdout
    assert "change(s) would be made (dry run)" in result.stdout


def test_bad_options_are_refused_before_anything_changes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    seed_root(root)
    before = snapshot(root)
    result = subprocess.run(
        [str(INSTALL), "--root", str(root), "--bogus"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown option --bogus" in result.stderr
    assert snapshot(root) == before


# The tests below change the installed root: they run last, in this order.


def test_an_edited_config_and_ads_survive_a_reinstall(installed: Installed) -> None:
    root = installed.root
    config = root / "etc/edge-agent/config.yaml"
    rules = root / "etc/edge-agent/ads/rules.yaml"
    config.write_text(config.read_text() + "\n# edited on site\n")
    rules.write_text(rules.read_text() + "\n# edited by marketing\n")
    (root / "etc/edge-agent/ads/creatives/welcome.png").unlink()
    result = install(root, "--site", "elsewhere")
    assert config.read_text().endswith("# edited on site\n")
    assert rules.read_text().endswith("# edited by marketing\n")
    assert not (root / "etc/edge-agent/ads/creatives/welcome.png").exists()
    assert "were not" in result.stdout and "applied" in result.stdout  # --site is not silent


def test_uninstall_keeps_user_data_and_purge_removes_the_rest(installed: Installed) -> None:
    root = installed.root
    (root / "var/lib/edge-agent/outbox.sqlite3").write_bytes(b"undelivered")
    install(root, "--uninstall")
    after = snapshot(root)
    added = {path for path in after if path not in installed.seed}
    # What stays: the configuration, the ads, the state with its undelivered messages, and
    # the system users (their files are still there).
    kept = {path for path in added if not path.startswith(("etc/edge-agent", "var/lib/edge-agent"))}
    assert kept <= ACCOUNT_LEFTOVERS, sorted(kept)
    assert (root / "var/lib/edge-agent/outbox.sqlite3").read_bytes() == b"undelivered"
    assert user_ids(root, "edge-agent") is not None
    for gone in ("opt/edge-agent", "usr/local/bin/edge-agent", SERVICE.lstrip("/"),
                 KIOSK.lstrip("/"), "etc/pam.d/edge-agent-kiosk", "etc/sysusers.d/edge-agent.conf",
                 "etc/systemd/system/multi-user.target.wants/edge-agent.service"):  # fmt: skip
        assert not (root / gone).exists() and not (root / gone).is_symlink(), gone

    install(root, "--uninstall", "--purge")
    purged = snapshot(root)
    leftovers = {path for path in purged if path not in installed.seed}
    assert leftovers <= ACCOUNT_LEFTOVERS, sorted(leftovers)
    changed = {path for path in installed.seed if purged.get(path) != installed.seed[path]}
    # The account files are rewritten with the same lines, so only their content is compared.
    assert changed <= {"etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"}, sorted(changed)
    for name in ("passwd", "group", "shadow", "gshadow"):
        assert purged[f"etc/{name}"][3] == installed.seed[f"etc/{name}"][3], name


def test_shell_scripts_pass_shellcheck() -> None:
    shellcheck = required_tool("shellcheck")
    scripts = sorted(str(path) for path in (REPO / "scripts").glob("*.sh"))
    result = subprocess.run(
        [shellcheck, *scripts, str(REPO / ".ci" / "run")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_mosquitto_config_runs_and_acknowledges(tmp_path: Path) -> None:
    """The broker config --with-mosquitto installs, in a real mosquitto (on a free port)."""
    from edge_agent.telemetry.client import new_paho_client
    from tests.support.mqtt_broker import find_mosquitto, free_port, port_is_listening

    mosquitto = find_mosquitto()
    if mosquitto is None:
        if os.environ.get("EDGE_AGENT_REQUIRE_MOSQUITTO") == "1":
            pytest.fail("mosquitto is missing, and EDGE_AGENT_REQUIRE_MOSQUITTO=1")
        pytest.skip("mosquitto is missing")
    shipped = (REPO / "systemd" / "mosquitto-edge-agent.conf").read_text()
    assert "listener 1883 127.0.0.1" in shipped
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        shipped.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
        + f"persistence true\npersistence_location {tmp_path}/\nuser root\n"
    )
    broker = subprocess.Popen(
        [mosquitto, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    client = new_paho_client("install-test", reconnect_on_failure=False)
    try:
        deadline = time.monotonic() + 10
        while not port_is_listening(port) and broker.poll() is None:
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)
        assert broker.poll() is None, broker.stdout.read() if broker.stdout else ""
        client.connect("127.0.0.1", port)
        client.loop_start()
        info = client.publish("edge-agent/s/d/audience/report", b"{}", qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published()
    finally:
        client.loop_stop()
        client.disconnect()
        broker.terminate()
        broker.wait(timeout=10)
