"""Finding Chromium and the flags it runs the kiosk page with.

The page tests and `scripts/bench_kiosk.py` start it headless with `HEADLESS_ARGS`; on a
display, `KIOSK_ARGS` plus the page's address make it a full-screen signage browser.
"""

from __future__ import annotations

import os
import shutil

# Without the background-networking flags Chromium keeps dialling Google's services, which a
# closed shop network (or CI) refuses, many times a minute. Muted autoplay needs no gesture.
_QUIET = [
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--autoplay-policy=no-user-gesture-required",
]
# Headless, as root in CI (hence no sandbox), without a GPU.
HEADLESS_ARGS = ["--no-sandbox", "--disable-gpu", *_QUIET]
KIOSK_ARGS = ["--kiosk", "--noerrdialogs", "--disable-infobars", *_QUIET]


def find_chromium() -> str | None:
    """$EDGE_AGENT_CHROMIUM, else `chromium` (Debian, Raspberry Pi OS Bookworm), else
    `chromium-browser` (older Raspberry Pi OS) on PATH."""
    return (
        os.environ.get("EDGE_AGENT_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
