"""docs/deployment.md and docs/fleet.md against the code they describe.

- Every configuration key the guides name exists, and every default they quote in brackets
  right after a key is the real default.
- The camera table's numbers follow from its formula and the fields of view it states.
- The installer options listed are the ones `scripts/install.sh --help` prints.
"""

from __future__ import annotations

import math
import re
import subprocess

import pytest

from edge_agent.config import load_config
from tests.support.paths import REPO

DEPLOYMENT = REPO / "docs" / "deployment.md"
FLEET = REPO / "docs" / "fleet.md"
SECTIONS = "source|vision|tracking|audience|ads|state|mqtt|logging|privacy|debug"
# `section.key` or `section.sub.key`, optionally followed by ** and "(default N" or "(N".
KEY = re.compile(rf"`((?:{SECTIONS})(?:\.[a-z_]+)+)`(?:\*\*)?(?: \((?:default )?(\d+(?:\.\d+)?))?")
FACE_M = 0.16


def defaults() -> dict:
    return load_config(None, environ={}).model_dump()


def lookup(tree: dict, dotted: str):
    node = tree
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"no config key {dotted}"
        node = node[part]
    return node


@pytest.mark.parametrize("doc", [DEPLOYMENT, FLEET], ids=lambda path: path.name)
def test_named_config_keys_exist_with_the_quoted_defaults(doc):
    tree = defaults()
    found = KEY.findall(doc.read_text())
    assert found, f"{doc.name} names no config keys"
    for key, quoted in found:
        if key.endswith(".md"):
            continue  # a file name (mqtt.md), not a key
        value = lookup(tree, key)
        if quoted:
            assert isinstance(value, int | float), f"{key} is not a number"
            assert float(quoted) == pytest.approx(float(value)), f"{doc.name}: {key} default"


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table after `heading`, as lists of stripped cells."""
    assert heading in text, f"no table headed {heading!r}"
    rows = []
    for line in text[text.index(heading) :].splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("*") for cell in line.strip("|").split("|")])
    return rows[2:]  # after the header and the separator


def test_camera_table_follows_its_formula():
    rows = table_rows(DEPLOYMENT.read_text(), "| camera | HFOV | frame width |")
    hfov = None
    checked = 0
    for camera, fov, width, *cells in rows:
        if camera:
            hfov = float(fov.rstrip("°"))
        assert hfov is not None
        metres = (1, 2, 3, 4)
        per_metre = FACE_M / (2 * math.tan(math.radians(hfov / 2)))
        if width == "share of frame width":
            for cell, distance in zip(cells, metres, strict=True):
                share = float(cell.rstrip(" %"))
                assert share == pytest.approx(100 * per_metre / distance, abs=0.06), camera
        else:
            pixels = int(width.removesuffix(" px"))
            for cell, distance in zip(cells, metres, strict=True):
                assert int(cell) == pytest.approx(pixels * per_metre / distance, abs=0.51)
        checked += 1
    assert checked >= 10


def test_default_detector_distances_follow_from_the_fields_of_view():
    """Each cell is "A m (B m)": the distance at which a face is the header's width in px at
    1280x720, and (in brackets) the header's second width at 640x480, the same lens."""
    text = DEPLOYMENT.read_text()
    heading = "| camera | found ("
    header = text[text.index(heading) :].splitlines()[0]
    widths = [
        tuple(int(px) for px in re.findall(r"(\d+) px", cell)) for cell in header.split("|")[2:-1]
    ]
    rows = table_rows(text, heading)
    assert len(rows) >= 4
    for camera, *cells in rows:
        hfov = float(re.search(r"\((\d+(?:\.\d+)?)°\)", camera).group(1))
        per_metre = FACE_M / (2 * math.tan(math.radians(hfov / 2)))
        for cell, (px_1280, px_640) in zip(cells, widths, strict=True):
            at_1280, at_640 = (float(m) for m in re.findall(r"(\d+(?:\.\d+)?) m", cell))
            # Rounded to 0.1 m in the table, to whole metres from 15 m on.
            for metres, frame_px, face_px in ((at_1280, 1280, px_1280), (at_640, 640, px_640)):
                expected = frame_px * per_metre / face_px
                assert metres == pytest.approx(expected, abs=0.06 if expected < 15 else 0.6), (
                    camera,
                    face_px,
                )


def test_blazeface_distance_thresholds_follow_from_the_fields_of_view():
    rows = table_rows(DEPLOYMENT.read_text(), "| camera, BlazeFace `full_range_int8` | face 7.5 %")
    for camera, *cells in rows:
        hfov = float(re.search(r"\((\d+(?:\.\d+)?)°\)", camera).group(1))
        per_metre = FACE_M / (2 * math.tan(math.radians(hfov / 2)))
        for cell, share in zip(cells, (0.075, 0.10, 0.125), strict=True):
            metres = float(cell.removesuffix(" m"))
            assert metres == pytest.approx(per_metre / share, abs=0.06), (camera, share)


def test_installer_options_are_the_documented_ones():
    installer = REPO / "scripts" / "install.sh"
    if not installer.exists():
        pytest.skip("scripts/install.sh is not in this checkout")
    usage = subprocess.run(
        ["bash", str(installer), "--help"], capture_output=True, text=True, check=True
    ).stdout
    offered = set(re.findall(r"^\s+(--[a-z-]+)", usage, re.M)) - {"--help"}
    rows = table_rows(DEPLOYMENT.read_text(), "| option | meaning |")
    documented = {re.match(r"`(--[a-z-]+)", option).group(1) for option, _ in rows}
    assert documented == offered
