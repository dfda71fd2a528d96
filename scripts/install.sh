#!/usr/bin/env bash
# Install edge-agent as a service on this display: Raspberry Pi OS Bookworm (Pi camera or USB
# camera) or Debian 12 (USB camera). Run from a checkout: sudo scripts/install.sh [options]
#
# What it sets up (docs/deployment.md explains each part):
#   apt packages       python3-venv, chromium and cage (the kiosk), python3-picamera2 for the Pi
#                      camera, mosquitto with --with-mosquitto
#   /opt/edge-agent    venv/ (--system-site-packages, so apt's picamera2 is importable),
#                      models/, docs/, config.example.yaml; /usr/local/bin/edge-agent
#   /etc/edge-agent    config.yaml, environment (secrets, root only), ads/ (rules and media):
#                      written once from the examples, never overwritten
#   /var/lib/edge-agent  the daemon's state (MQTT outbox, today's totals, last good rules)
#   users              edge-agent (the daemon, group video), edge-agent-kiosk (the browser),
#                      declared in /etc/sysusers.d/edge-agent.conf
#   systemd            edge-agent.service and edge-agent-kiosk.service, enabled
#
# Running it again changes only what differs (a new version of the code, models or units) and
# says so; when nothing differs it changes nothing. --uninstall removes what it added and keeps
# the configuration, the ads and the state unless --purge.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: sudo scripts/install.sh [options]
  --source SPEC         camera (default: picamera on a Raspberry Pi, else /dev/video0)
  --site NAME           store id, the second MQTT topic level (default: default)
  --device NAME         display id, the third topic level (default: the host name)
  --broker HOST[:PORT]  MQTT broker (default: localhost:1883)
  --with-mosquitto      also install mosquitto on this display (loopback only, tuned)
  --no-kiosk            no kiosk service (something else drives the screen); removes it if
                        an earlier install added it
  --no-apt              do not install apt packages (they must be there already)
  --root DIR            install into DIR as the filesystem root (tests): no apt, nothing
                        started; the venv's scripts then point into DIR
  --dry-run             print what would change, change nothing
  --uninstall           remove what install added; keep /etc/edge-agent, /var/lib/edge-agent
                        and the system users
  --purge               with --uninstall: remove those too
  -h, --help            this text
--source, --site, --device and --broker only shape a new /etc/edge-agent/config.yaml; once it
exists, edit it instead.
EOF
}

# --- options -----------------------------------------------------------------------------------

root=""
dry_run=0
apt=1
kiosk=1
kiosk_removal=0
mosquitto=0
uninstall=0
purge=0
source_spec=""
site=""
device=""
broker=""

need_value() {
    if [ $# -lt 2 ] || [ -z "$2" ]; then
        echo "install.sh: $1 needs a value (see --help)" >&2
        exit 2
    fi
}

while [ $# -gt 0 ]; do
    case "$1" in
        --source) need_value "$@"; source_spec="$2"; shift ;;
        --site) need_value "$@"; site="$2"; shift ;;
        --device) need_value "$@"; device="$2"; shift ;;
        --broker) need_value "$@"; broker="$2"; shift ;;
        --with-mosquitto) mosquitto=1 ;;
        --no-kiosk) kiosk=0; kiosk_removal=1 ;;
        --no-apt) apt=0 ;;
        --root) need_value "$@"; root="$(realpath -m "$2")"; shift ;;
        --dry-run) dry_run=1 ;;
        --uninstall) uninstall=1 ;;
        --purge) purge=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ "$purge" = 1 ] && [ "$uninstall" = 0 ]; then
    echo "install.sh: --purge goes with --uninstall" >&2
    exit 2
fi
if [ -n "$root" ]; then
    apt=0 # the packages of another root are not ours to manage
    if [ "$root" = / ]; then root=""; fi
fi
if [ "$dry_run" = 0 ] && [ "$(id -u)" != 0 ]; then
    echo "install.sh: run it as root (sudo), or with --dry-run to see what it would do" >&2
    exit 1
fi

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${EDGE_AGENT_PYTHON:-/usr/bin/python3}"

# Installed paths, always written as on the target; $root is prepended when touching them.
PREFIX=/opt/edge-agent
VENV=$PREFIX/venv
CONF_DIR=/etc/edge-agent
STATE_DIR=/var/lib/edge-agent
KIOSK_STATE_DIR=/var/lib/edge-agent-kiosk
UNIT_DIR=/etc/systemd/system
SERVICE=edge-agent.service
KIOSK_SERVICE=edge-agent-kiosk.service
SYSUSERS=/etc/sysusers.d/edge-agent.conf
PAM=/etc/pam.d/edge-agent-kiosk
MOSQUITTO_CONF=/etc/mosquitto/conf.d/edge-agent.conf
COMMAND_LINK=/usr/local/bin/edge-agent
APT_RECORD=$PREFIX/apt-packages-installed
SOURCE_STAMP=$VENV/.edge-agent-source.sha256

# --- reporting and guarded changes ---------------------------------------------------------------

changes=0
systemd_running=0
if [ -z "$root" ] && [ -d /run/systemd/system ]; then systemd_running=1; fi

at() { printf '%s%s' "$root" "$1"; }
say() { printf '%s\n' "$*"; }
changed() {
    changes=$((changes + 1))
    if [ "$dry_run" = 1 ]; then say "  would $*"; else say "  $*"; fi
}
# Runs a command that changes the system, or under --dry-run only says it would.
act() {
    if [ "$dry_run" = 1 ]; then say "  would run: $*"; else "$@"; fi
}

# SRC -> DEST with MODE, written only when missing or different (a package-owned file).
put_file() {
    local src="$1" dest="$2" mode="$3" target
    target="$(at "$dest")"
    if [ -f "$target" ] && cmp -s "$src" "$target"; then
        if [ "$(stat -c %a "$target")" != "${mode#0}" ]; then
            changed "chmod $mode $dest"
            act chmod "$mode" "$target"
        fi
        return 0
    fi
    if [ -e "$target" ]; then changed "update $dest"; else changed "install $dest"; fi
    act install -D -m "$mode" "$src" "$target"
}

# SRC -> DEST only when DEST does not exist: the user's file from then on, never overwritten.
put_once() {
    local src="$1" dest="$2" mode="$3"
    if [ -e "$(at "$dest")" ]; then return 0; fi
    changed "install $dest"
    act install -D -m "$mode" "$src" "$(at "$dest")"
}

put_dir() {
    local dir="$1" mode="$2" owner="${3:-}" target
    target="$(at "$dir")"
    if [ ! -d "$target" ]; then
        changed "create $dir"
        act install -d -m "$mode" "$target"
    elif [ "$(stat -c %a "$target")" != "${mode#0}" ]; then
        changed "chmod $mode $dir"
        act chmod "$mode" "$target"
    fi
    if [ -n "$owner" ] && [ -d "$target" ] && [ "$(stat -c %u:%g "$target")" != "$owner" ]; then
        changed "chown $dir"
        act chown "$owner" "$target"
    fi
}

# Every file of SRC_DIR (not recursive) in DEST_DIR, and nothing else there.
sync_dir() {
    local src_dir="$1" dest_dir="$2" path name
    put_dir "$dest_dir" 0755
    for path in "$src_dir"/*; do
        [ -f "$path" ] || continue
        put_file "$path" "$dest_dir/$(basename "$path")" 0644
    done
    if [ -d "$(at "$dest_dir")" ]; then
        for path in "$(at "$dest_dir")"/*; do
            [ -f "$path" ] || continue
            name="$(basename "$path")"
            if [ ! -f "$src_dir/$name" ]; then
                changed "remove $dest_dir/$name (no longer shipped)"
                act rm -f "$path"
            fi
        done
    fi
}

put_link() {
    local target_path="$1" link="$2"
    if [ "$(readlink "$(at "$link")" 2>/dev/null)" = "$target_path" ]; then return 0; fi
    changed "link $link -> $target_path"
    act mkdir -p "$(dirname "$(at "$link")")"
    act ln -sfn "$target_path" "$(at "$link")"
}

remove_path() {
    local path="$1"
    if [ -e "$(at "$path")" ] || [ -L "$(at "$path")" ]; then
        changed "remove $path"
        act rm -rf "$(at "$path")"
    fi
}

# uid:gid of a user in the target's own /etc/passwd (under --root the host's is not the one).
owner_of() {
    local passwd
    passwd="$(at /etc/passwd)"
    [ -f "$passwd" ] || return 0
    awk -F: -v user="$1" '$1 == user { print $3 ":" $4 }' "$passwd"
}

systemctl_at() {
    if [ -n "$root" ]; then
        act systemctl --root="$root" "$@"
    elif [ "$systemd_running" = 1 ]; then
        act systemctl "$@"
    else
        act systemctl --root=/ "$@" # enable/disable still work without a running systemd
    fi
}

unit_enabled() {
    # A link into the target's /etc, so it dangles when seen from outside a --root.
    [ -L "$(at "$UNIT_DIR/multi-user.target.wants/$1")" ]
}

yaml_quote() {
    local text="$1"
    printf "'%s'" "${text//\'/\'\'}"
}

is_raspberry_pi() {
    [ -r /proc/device-tree/model ] && tr -d '\0' </proc/device-tree/model | grep -q "Raspberry Pi"
}

# --- uninstall -----------------------------------------------------------------------------------

uninstall_all() {
    say "edge-agent: uninstalling${root:+ from $root}"
    local unit recorded=""
    for unit in "$KIOSK_SERVICE" "$SERVICE"; do
        if [ -e "$(at "$UNIT_DIR/$unit")" ]; then
            if [ "$systemd_running" = 1 ]; then
                changed "stop and disable $unit"
                act systemctl disable --now "$unit"
            elif unit_enabled "$unit"; then
                changed "disable $unit"
                systemctl_at disable "$unit"
            fi
        fi
        remove_path "$UNIT_DIR/$unit"
    done
    if [ "$systemd_running" = 1 ]; then act systemctl daemon-reload; fi
    remove_path "$PAM"
    if [ -e "$(at "$MOSQUITTO_CONF")" ]; then
        remove_path "$MOSQUITTO_CONF"
        if [ "$systemd_running" = 1 ] && systemctl is-active --quiet mosquitto; then
            act systemctl restart mosquitto
        fi
    fi
    remove_path "$COMMAND_LINK"
    if [ -f "$(at "$APT_RECORD")" ]; then recorded="$(tr '\n' ' ' <"$(at "$APT_RECORD")")"; fi
    remove_path "$PREFIX"
    remove_path "$KIOSK_STATE_DIR"
    remove_path "$SYSUSERS"
    if [ -d "$(at "$(dirname "$SYSUSERS")")" ]; then
        act rmdir --ignore-fail-on-non-empty "$(at "$(dirname "$SYSUSERS")")"
    fi
    if [ "$purge" = 1 ]; then
        remove_path "$CONF_DIR"
        remove_path "$STATE_DIR"
        local user
        for user in edge-agent-kiosk edge-agent; do
            if [ -n "$(owner_of "$user")" ]; then
                changed "delete the user $user"
                act userdel ${root:+--root "$root"} "$user"
            fi
            # userdel leaves the user's own group where login.defs does not say otherwise.
            if grep -q "^$user:" "$(at /etc/group)" 2>/dev/null; then
                changed "delete the group $user"
                act groupdel ${root:+--root "$root"} "$user"
            fi
        done
    else
        say "  kept $CONF_DIR (configuration, ads) and $STATE_DIR (undelivered MQTT messages);"
        say "  the users edge-agent and edge-agent-kiosk stay. --uninstall --purge removes them."
    fi
    if [ -n "${recorded// /}" ]; then
        say "  apt packages this installer added are left installed; to remove them:"
        say "    sudo apt-get remove $recorded"
    fi
    summary
}

summary() {
    if [ "$changes" = 0 ]; then
        say "edge-agent: nothing to change"
    elif [ "$dry_run" = 1 ]; then
        say "edge-agent: $changes change(s) would be made (dry run)"
    else
        say "edge-agent: $changes change(s) made"
    fi
}

# --- install steps -------------------------------------------------------------------------------

apt_packages() {
    local wanted=(python3-venv)
    if [ "$kiosk" = 1 ]; then wanted+=(chromium cage); fi
    if [[ "$source_spec" == picamera* ]]; then wanted+=(python3-picamera2); fi
    if [ "$mosquitto" = 1 ]; then wanted+=(mosquitto); fi
    local missing=() package
    for package in "${wanted[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" = 0 ]; then return 0; fi
    if [ "$apt" = 0 ]; then
        if [ -z "$root" ]; then
            say "  missing apt packages (--no-apt): ${missing[*]}; install them first" >&2
            [ "$dry_run" = 1 ] || exit 1
        fi
        return 0
    fi
    changed "apt-get install ${missing[*]}"
    act env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    act env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    if [ "$dry_run" = 0 ]; then
        mkdir -p "$(at "$PREFIX")"
        printf '%s\n' "${missing[@]}" >>"$(at "$APT_RECORD")"
    fi
}

users() {
    put_file "$repo/systemd/sysusers.conf" "$SYSUSERS" 0644
    if [ "$dry_run" = 1 ] && [ ! -e "$(at "$SYSUSERS")" ]; then
        changed "create the users edge-agent and edge-agent-kiosk (systemd-sysusers)"
        return 0
    fi
    # systemd-sysusers rewrites /etc/group whenever it has `m` lines, even with nothing to add;
    # so it runs only when a user or a membership it declares is missing.
    if ! users_complete; then
        changed "create the users edge-agent and edge-agent-kiosk (systemd-sysusers)"
        act systemd-sysusers ${root:+--root="$root"} "$(at "$SYSUSERS")"
    fi
}

users_complete() {
    local kind name group
    while read -r kind name group _; do
        case "$kind" in
            u) [ -n "$(owner_of "$name")" ] || return 1 ;;
            m) awk -F: -v group="$group" -v user="$name" '$1 == group {
                   n = split($4, members, ","); for (i = 1; i <= n; i++) if (members[i] == user) found = 1
               } END { exit !found }' "$(at /etc/group)" 2>/dev/null || return 1 ;;
        esac
    done <"$repo/systemd/sysusers.conf"
}

venv_and_package() {
    local target_venv stamp constraints merged build
    target_venv="$(at "$VENV")"
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        echo "install.sh: edge-agent needs Python 3.11+; $python is not" >&2
        exit 1
    fi
    if [ ! -x "$target_venv/bin/python" ]; then
        changed "create the venv $VENV (--system-site-packages)"
        act "$python" -m venv --system-site-packages "$target_venv"
    fi
    # Debian's numpy stays when apt's picamera2 is used: constraints-raspios.txt says why.
    constraints="$repo/constraints.txt"
    merged="$(mktemp)"
    if [[ "$source_spec" == picamera* ]]; then
        local overridden
        overridden="$(grep -v -e '^#' -e '^$' "$repo/constraints-raspios.txt" \
            | sed 's/[=<>!~].*//' | tr 'A-Z_.' 'a-z--' | paste -sd '|')"
        awk -v names="^($overridden)$" '{ name = tolower($0); sub(/[=<>!~].*/, "", name);
            gsub(/[_.]/, "-", name); if (name !~ names) print }' "$constraints" >"$merged"
        grep -v -e '^#' -e '^$' "$repo/constraints-raspios.txt" >>"$merged"
    else
        cp "$constraints" "$merged"
    fi
    # The package's own files and the pins decide whether the venv is current.
    stamp="$(cd "$repo" && {
        find edge_agent setup.cfg pyproject.toml README.md -type f ! -path '*/__pycache__/*' \
            ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum
        cat "$merged"
        "$python" --version
    } | sha256sum | cut -d' ' -f1)"
    if [ -f "$(at "$SOURCE_STAMP")" ] \
        && [ "$(cat "$(at "$SOURCE_STAMP")")" = "$stamp" ]; then
        rm -f "$merged"
        return 0
    fi
    changed "install the edge-agent package and its dependencies into $VENV"
    if [ "$dry_run" = 0 ]; then
        # Built from a copy, so a root-owned build/ never lands in the checkout.
        build="$(mktemp -d)"
        cp -r "$repo/edge_agent" "$repo/setup.cfg" "$repo/pyproject.toml" "$repo/README.md" \
            "$build/"
        find "$build" -name __pycache__ -prune -exec rm -rf {} +
        say "    (pip; a few minutes on a Raspberry Pi)"
        PIP_DISABLE_PIP_VERSION_CHECK=1 "$target_venv/bin/python" -m pip install --quiet \
            --no-input -c "$merged" "$build"
        rm -rf "$build"
        printf "%s\n" "$stamp" >"$(at "$SOURCE_STAMP")"
    fi
    rm -f "$merged"
}

write_config() {
    local dest="$CONF_DIR/config.yaml" text host port
    if [ -e "$(at "$dest")" ]; then
        if [ -n "$site$device$broker" ] || [ "$source_given" = 1 ]; then
            say "  note: $dest exists and is yours; --source/--site/--device/--broker were not"
            say "        applied: edit the file instead"
        fi
        return 0
    fi
    host=localhost
    port=1883
    if [ -n "$broker" ]; then
        if [[ "$broker" =~ ^\[(.*)\]:([0-9]+)$ ]] || [[ "$broker" =~ ^([^:]+):([0-9]+)$ ]]; then
            host="${BASH_REMATCH[1]}"
            port="${BASH_REMATCH[2]}"
        else
            host="$broker"
        fi
    fi
    text="$(mktemp)"
    {
        cat <<EOF
# edge-agent on this display. Written by scripts/install.sh on the first install and never
# overwritten. Every key, with its default and what it means: $PREFIX/config.example.yaml
# (or \`edge-agent config schema\`). After a change:
#   sudo edge-agent config check $dest && sudo systemctl restart edge-agent
# Secrets such as the broker password go in $CONF_DIR/environment, not here.

source:
  spec: $(yaml_quote "$source_spec")
  # The detector needs faces about 10 % of the frame's width, whatever the resolution; a
  # larger frame gives sharper faces for age and gender (docs/deployment.md, measured).
  width: 1280
  height: 720

vision:
  models_dir: $PREFIX/models

ads:
  rules: $CONF_DIR/ads/rules.yaml

state:
  dir: $STATE_DIR

mqtt:
  host: $(yaml_quote "$host")
  port: $port
  site: $(yaml_quote "${site:-default}")
EOF
        if [ -n "$device" ]; then
            printf '  device: %s\n' "$(yaml_quote "$device")"
        else
            printf '  # device: null means this machine'"'"'s host name\n'
        fi
        cat <<EOF

# Who is responsible, for the on-site privacy notice (\`edge-agent notice\`).
privacy:
  controller: null
  contact: null
EOF
    } >"$text"
    changed "write $dest"
    act install -D -m 0644 "$text" "$(at "$dest")"
    rm -f "$text"
    if [ "$dry_run" = 0 ] && [ -x "$(at "$VENV")/bin/edge-agent" ]; then
        # The real loader checks what the options became (site and device must be topic levels);
        # the paths it names are for the installed system, not this (perhaps staged) root.
        if ! "$(at "$VENV")/bin/edge-agent" config check --values-only "$(at "$dest")" >/dev/null; then
            rm -f "$(at "$dest")"
            echo "install.sh: the options above do not make a valid config; nothing written" >&2
            exit 2
        fi
    fi
}

write_environment() {
    local dest="$CONF_DIR/environment" text
    if [ -e "$(at "$dest")" ]; then return 0; fi
    text="$(mktemp)"
    cat >"$text" <<'EOF'
# Secrets and overrides for edge-agent.service (systemd EnvironmentFile; readable by root only).
# Any config key can be set as EDGE_AGENT__SECTION__KEY=value; `edge-agent doctor` reads this
# file too. After a change: sudo systemctl restart edge-agent
# With per-display broker accounts (docs/fleet.md) the user name is <site>/<device>:
#EDGE_AGENT__MQTT__USERNAME=store-7/door-left
#EDGE_AGENT__MQTT__PASSWORD=change-me
EOF
    changed "write $dest (root only)"
    act install -D -m 0600 "$text" "$(at "$dest")"
    rm -f "$text"
}

example_ads() {
    # The marketer's folder: filled with the examples once, then theirs.
    if [ -e "$(at "$CONF_DIR/ads/rules.yaml")" ]; then return 0; fi
    changed "copy the example ads to $CONF_DIR/ads"
    act install -d -m 0755 "$(at "$CONF_DIR/ads")" "$(at "$CONF_DIR/ads/creatives")"
    act install -m 0644 "$repo/ads/rules.yaml" "$repo/ads/rules.schema.json" "$repo/ads/README.md" \
        "$(at "$CONF_DIR/ads/")"
    act install -m 0644 "$repo"/ads/creatives/* "$(at "$CONF_DIR/ads/creatives/")"
}

units() {
    local unit_changes=$changes
    put_file "$repo/systemd/$SERVICE" "$UNIT_DIR/$SERVICE" 0644
    if [ "$kiosk" = 1 ]; then
        put_file "$repo/systemd/$KIOSK_SERVICE" "$UNIT_DIR/$KIOSK_SERVICE" 0644
        put_file "$repo/systemd/pam-edge-agent-kiosk" "$PAM" 0644
    elif [ "$kiosk_removal" = 1 ] && [ -e "$(at "$UNIT_DIR/$KIOSK_SERVICE")" ]; then
        if [ "$systemd_running" = 1 ]; then act systemctl disable --now "$KIOSK_SERVICE"; fi
        if unit_enabled "$KIOSK_SERVICE"; then systemctl_at disable "$KIOSK_SERVICE"; fi
        remove_path "$UNIT_DIR/$KIOSK_SERVICE"
        remove_path "$PAM"
        remove_path "$KIOSK_STATE_DIR"
    fi
    if [ "$systemd_running" = 1 ] && [ "$changes" != "$unit_changes" ]; then
        act systemctl daemon-reload
    fi
    local unit
    for unit in "$SERVICE" $([ "$kiosk" = 1 ] && echo "$KIOSK_SERVICE"); do
        if ! unit_enabled "$unit"; then
            changed "enable $unit"
            systemctl_at enable "$unit"
        fi
    done
}

mosquitto_config() {
    if [ "$mosquitto" = 0 ]; then return 0; fi
    local before=$changes
    put_file "$repo/systemd/mosquitto-edge-agent.conf" "$MOSQUITTO_CONF" 0644
    if [ "$systemd_running" = 1 ] && [ "$changes" != "$before" ]; then
        act systemctl enable mosquitto
        act systemctl restart mosquitto
    fi
}

start_or_restart() {
    # Only a running systemd starts anything, and only when something changed: a second run
    # that changes nothing does not even blink the screen.
    if [ "$systemd_running" = 0 ] || [ "$changes" = 0 ]; then return 0; fi
    say "  starting $SERVICE"
    act systemctl restart "$SERVICE"
    if [ "$kiosk" = 1 ]; then
        if systemctl is-enabled --quiet lightdm.service 2>/dev/null \
            || systemctl is-active --quiet display-manager.service 2>/dev/null; then
            say "  note: a desktop runs on this display; the kiosk needs the console:"
            say "        sudo raspi-config nonint do_boot_behaviour B1 && sudo reboot"
            say "        (or --no-kiosk and start Chromium from the desktop, docs/deployment.md)"
        else
            act systemctl restart "$KIOSK_SERVICE"
        fi
    fi
}

install_all() {
    local how=""
    if [ "$dry_run" = 1 ]; then how=" (dry run)"; fi
    say "edge-agent: installing${root:+ into $root}$how"
    apt_packages
    users
    local owner
    owner="$(owner_of edge-agent)"
    put_dir "$PREFIX" 0755
    venv_and_package
    sync_dir "$repo/models" "$PREFIX/models"
    sync_dir "$repo/docs" "$PREFIX/docs"
    put_file "$repo/config.yaml" "$PREFIX/config.example.yaml" 0644
    put_link "$VENV/bin/edge-agent" "$COMMAND_LINK"
    put_dir "$CONF_DIR" 0755
    write_config
    write_environment
    example_ads
    put_dir "$STATE_DIR" 0750 "$owner"
    units
    mosquitto_config
    start_or_restart
    summary
    if [ "$dry_run" = 0 ] && [ -z "$root" ] && [ "$changes" != 0 ]; then
        say "Next: sudo edge-agent doctor    (checks camera, models, broker, disk, clock)"
        say "      edge-agent notice         (the privacy sign to put up next to the screen)"
    fi
}

source_given=0
if [ -n "$source_spec" ]; then source_given=1; fi
if [ -z "$source_spec" ]; then
    if is_raspberry_pi; then source_spec=picamera; else source_spec=/dev/video0; fi
fi
# The Pi camera's packages are needed whenever the existing config uses it, too.
if [ -f "$(at "$CONF_DIR/config.yaml")" ] \
    && grep -Eq "^[[:space:]]+spec:[[:space:]]*'?picamera" "$(at "$CONF_DIR/config.yaml")"; then
    source_spec=picamera
fi

if [ "$uninstall" = 1 ]; then uninstall_all; else install_all; fi
