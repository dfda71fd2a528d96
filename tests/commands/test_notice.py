"""`edge-agent notice`: the on-site privacy notice, generated from the configuration."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.commands import notice
from tests.support.paths import REPO

RULES = REPO / "ads" / "rules.yaml"
CONTROLLER = "Example Foods GmbH"
CONTACT = "privacy@example-foods.example"
MORE_INFO = "https://example-foods.example/privacy"
FORMATS = ("text", "markdown", "html")


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    # Environment overrides would change what the notice says.
    for name in list(os.environ):
        if name.upper().startswith("EDGE_AGENT__"):
            monkeypatch.delenv(name)


def config_file(tmp_path: Path, *sections: str, privacy: str | None = None) -> Path:
    if privacy is None:
        privacy = (
            f"privacy:\n  controller: {CONTROLLER}\n  contact: {CONTACT}\n"
            f"  more_info: {MORE_INFO}\n"
        )
    # An absolute rules path: the notice must not depend on the working directory here.
    text = f"ads:\n  rules: '{RULES}'\n{privacy}" + "".join(sections)
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_notice(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["notice", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def sign_of(text: str) -> list[str]:
    """Layer 1 of the text format: the lines between the two rules of '='."""
    lines = text.splitlines()
    rules = [index for index, line in enumerate(lines) if re.fullmatch("=+", line)]
    return lines[rules[0] + 1 : rules[1]]


@pytest.mark.parametrize("fmt", FORMATS)
def test_configured_names_appear_in_every_format(tmp_path, capsys, fmt):
    code, out, err = run_notice(capsys, "--config", str(config_file(tmp_path)), "--format", fmt)
    assert code == 0, err
    for value in (CONTROLLER, CONTACT, MORE_INFO):
        assert value in out
    assert "[set privacy." not in out
    assert "data protection officer" in err  # the operator's note, not on the sign


def test_numbers_come_from_the_config(tmp_path, capsys):
    path = config_file(tmp_path, "audience:\n  window_s: 300\n  min_segment_size: 7\n")
    code, out, _ = run_notice(capsys, "--config", str(path))
    assert code == 0
    assert "periods of 5 minutes" in out
    assert "fewer than 7 people" in out
    assert "smaller than 7 people" in out  # the published statement, as layer 2's core
    assert "5 people" not in out and "1 minute" not in out


def test_layer_two_is_built_on_the_published_statement(tmp_path, capsys):
    from edge_agent.telemetry.payloads import PRIVACY_STATEMENT

    path = config_file(tmp_path, "audience:\n  min_segment_size: 9\n")
    code, out, _ = run_notice(capsys, "--config", str(path), "--format", "markdown")
    assert code == 0
    assert PRIVACY_STATEMENT.format(k=9) in out


def test_age_brackets_come_from_the_config(tmp_path, capsys):
    path = config_file(tmp_path, "vision:\n  age_brackets: [18, 30, 65]\n")
    code, out, _ = run_notice(capsys, "--config", str(path), "--format", "markdown")
    assert code == 0
    assert "(0-17, 18-29, 30-64, 65+)" in out


def test_the_sign_is_short_enough_to_read_in_passing(tmp_path, capsys):
    code, out, _ = run_notice(capsys, "--config", str(config_file(tmp_path)))
    assert code == 0
    sign = sign_of(out)
    assert sign[0] == "CAMERA: AUDIENCE MEASUREMENT"
    assert len(sign) <= 14
    words = " ".join(sign).split()
    assert len(words) <= 70, len(words)
    for value in (CONTROLLER, CONTACT, MORE_INFO):
        assert value in " ".join(sign)
    assert all(len(line) <= notice.WIDTH for line in out.splitlines() if " " in line.strip())


def test_missing_controller_is_refused_naming_the_key(tmp_path, capsys):
    path = config_file(tmp_path, privacy=f"privacy:\n  contact: {CONTACT}\n")
    code, out, err = run_notice(capsys, "--config", str(path))
    assert code == 2
    assert out == ""
    assert "privacy.controller" in err and "privacy.contact" not in err
    assert "--draft" in err


def test_draft_prints_placeholders(tmp_path, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text(f"ads:\n  rules: '{RULES}'\n", encoding="utf-8")
    code, out, err = run_notice(capsys, "--config", str(empty))
    assert code == 2
    assert "privacy.controller and privacy.contact" in err
    code, out, err = run_notice(capsys, "--config", str(empty), "--draft")
    assert code == 0
    assert "[set privacy.controller in config.yaml]" in " ".join(sign_of(out))
    assert "[set privacy.contact in config.yaml]" in out
    assert "DRAFT" in err


def test_saved_face_images_make_the_notice_false_so_it_is_refused(tmp_path, capsys):
    path = config_file(tmp_path, f"debug:\n  save_annotated_frames_dir: '{tmp_path / 'f'}'\n")
    for extra in ([], ["--draft"]):
        code, out, err = run_notice(capsys, "--config", str(path), *extra)
        assert code == 2
        assert out == ""
        assert "debug.save_annotated_frames_dir" in err


def test_a_bad_config_is_refused_with_the_loaders_message(tmp_path, capsys):
    path = config_file(tmp_path, "audience:\n  min_segment_size: 0\n")
    code, out, err = run_notice(capsys, "--config", str(path))
    assert code == 2
    assert out == ""
    assert f"{path}:" in err and "audience.min_segment_size" in err


def test_html_escapes_config_values_and_is_self_contained(tmp_path, capsys):
    hostile = "Shop <script>alert(1)</script> & Co"
    privacy = (
        f"privacy:\n  controller: '{hostile}'\n  contact: '\"><img src=x>'\n"
        "  more_info: <a href='http://evil.example'>here</a>\n"
    )
    path = config_file(tmp_path, privacy=privacy)
    code, out, _ = run_notice(capsys, "--config", str(path), "--format", "html")
    assert code == 0
    assert "Shop &lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in out
    lowered = out.lower()
    assert "<script" not in lowered and "<img" not in lowered and "<a " not in lowered
    assert not re.search(r"<[^>]*\b(src|href)\s*=", lowered)  # as text it is harmless
    assert "<link" not in lowered and "@import" not in lowered and "url(" not in lowered
    assert "@page" in out and "size: a4" in lowered
    assert out.index('class="sign"') < out.index('class="full"')


def test_markdown_escapes_config_values(tmp_path, capsys):
    path = config_file(
        tmp_path, privacy="privacy:\n  controller: '[Shop](http://x) <b>*Co*</b>'\n  contact: c\n"
    )
    code, out, _ = run_notice(capsys, "--config", str(path), "--format", "markdown")
    assert code == 0
    assert r"\[Shop\](http://x) \<b\>\*Co\*\</b\>" in out
    assert out.startswith("# Camera: audience measurement\n")


def test_a_postal_address_over_several_lines_reads_as_one(tmp_path, capsys):
    privacy = (
        f"privacy:\n  controller: {CONTROLLER}\n"
        "  contact: |\n    Data Protection\n    Hauptstr. 1\n    10115 Berlin\n"
    )
    code, out, _ = run_notice(capsys, "--config", str(config_file(tmp_path, privacy=privacy)))
    assert code == 0
    assert "Data Protection, Hauptstr. 1, 10115 Berlin" in " ".join(out.split())


def test_targeting_and_the_minors_policy_come_from_the_config_and_rules(tmp_path, capsys):
    code, out, _ = run_notice(capsys, "--config", str(config_file(tmp_path)))
    assert code == 0
    text = " ".join(out.split())
    assert "chosen by the estimated age and gender" in text
    assert "anyone estimated younger than 25" in text  # ads/rules.yaml's minors policy

    off = tmp_path / "off.yaml"
    off.write_text("ads:\n  enabled: false\nprivacy:\n  controller: A\n  contact: B\n")
    code, out, _ = run_notice(capsys, "--config", str(off))
    assert code == 0
    text = " ".join(out.split())
    assert "chosen by the estimated age and gender" not in text
    assert "not used to choose what the screen shows" in text


def test_unreadable_rules_do_not_stop_the_notice(tmp_path, capsys):
    path = config_file(tmp_path)
    path.write_text(path.read_text().replace(str(RULES), str(tmp_path / "missing.yaml")))
    code, out, err = run_notice(capsys, "--config", str(path))
    assert code == 0
    assert "chosen by the estimated age and gender" in " ".join(out.split())
    assert "younger than" not in out
    assert "could not read the ad rules" in err


def test_output_file(tmp_path, capsys):
    target = tmp_path / "notice.html"
    args = ["--config", str(config_file(tmp_path)), "--format", "html", "--output", str(target)]
    code, out, err = run_notice(capsys, *args)
    assert code == 0
    assert out == ""
    assert CONTROLLER in target.read_text(encoding="utf-8")
    assert str(target) in err


def test_without_config_the_system_file_is_read_when_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(notice, "SYSTEM_CONFIG", config_file(tmp_path))
    code, out, _ = run_notice(capsys)
    assert code == 0 and CONTROLLER in out
    monkeypatch.setattr(notice, "SYSTEM_CONFIG", tmp_path / "absent.yaml")
    code, _, err = run_notice(capsys)  # the built-in defaults: no controller
    assert code == 2 and "privacy.controller" in err


def test_the_html_page_shows_the_sign_in_a_real_browser(tmp_path, capsys, browser):
    target = tmp_path / "notice.html"
    args = ["--config", str(config_file(tmp_path)), "--format", "html", "--output", str(target)]
    assert run_notice(capsys, *args)[0] == 0
    requests: list[str] = []
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", lambda request: requests.append(request.url))
        page.goto(target.as_uri())
        sign = page.inner_text(".sign")
        assert "Camera: audience measurement" in sign
        assert CONTROLLER in sign and CONTACT in sign
        assert page.is_visible("text=What is kept and sent")
        assert page.pdf(format="A4")[:4] == b"%PDF"
    finally:
        context.close()
    assert requests == [target.as_uri()]  # nothing fetched besides the page itself
