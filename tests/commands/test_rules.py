"""`edge-agent rules check|schema|explain`, run as a marketer runs them, on the example rules."""

from __future__ import annotations

import json

import pytest

from edge_agent.cli import main
from tests.support.paths import REPO

EXAMPLE = REPO / "ads" / "rules.yaml"


def explain(capsys, *args: str) -> str:
    assert main(["rules", "explain", "--rules", str(EXAMPLE), *args]) == 0
    return capsys.readouterr().out


def test_check_accepts_the_example(capsys):
    assert main(["rules", "check", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "OK, 8 rules (7 enabled), 11 creatives" in out


def test_check_rejects_a_bad_file_with_file_line_and_key(tmp_path, capsys):
    bad = tmp_path / "rules.yaml"
    bad.write_text(EXAMPLE.read_text().replace("priority: 10", "priorty: 10"))
    assert main(["rules", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    line = EXAMPLE.read_text().splitlines().index("    priority: 10") + 1
    assert f"{bad}:{line}: rules[1].priorty: unknown key 'priorty'" in err


def test_schema_is_json_for_editors(capsys):
    assert main(["rules", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "edge-agent ad rules"
    assert "default_playlist" in schema["required"]


@pytest.mark.parametrize(
    ("args", "decision", "why"),
    [
        ([], "Decision: default playlist", "nobody there"),
        (
            ["--gender", "female", "--age", "30", "--viewers", "1"],
            "Decision: rule perfume-evening",
            "1 of 1 person female aged 25-54",
        ),
        (
            ["--person", "female:30", "--person", "male:41", "--person", "male:52"],
            "Decision: rule razor-men",
            "2 of 3 people male aged >= 25",
        ),
        (
            ["--person", "female:35", "--person", "male:9"],
            "Decision: rule group-offer",
            "A possible minor is present",
        ),
        (["--person", "male:9"], "Decision: neutral playlist", "possible minor"),
    ],
)
def test_explain_gives_the_decision_and_why(capsys, args, decision, why):
    out = explain(capsys, *args, "--at", "2026-11-23T18:00")
    assert decision in out
    assert why in out


def test_explain_outside_a_time_window(capsys):
    out = explain(capsys, "--gender", "female", "--age", "50", "--at", "2026-11-23T10:00")
    assert "perfume-evening              10  off schedule   10:00 is outside 16:00-21:00" in out
    assert "Decision: rule morning-coffee" in out


def test_explain_lists_every_rule_with_its_verdict(capsys):
    out = explain(capsys, "--gender", "male", "--age", "30", "--at", "2026-11-28T23:30")
    rows = {line.split()[0]: line for line in out.splitlines()[6:] if line.strip()}
    assert set(rows) - {"rule"} == {
        "black-friday",
        "perfume-evening",
        "razor-men",
        "sneakers-young-adults",
        "group-offer",
        "morning-coffee",
        "late-night-weekend",
        "summer-sale",
    }
    assert "CHOSEN" in rows["black-friday"]  # Saturday 28 November: the campaign wins
    assert "outranked" in rows["razor-men"]


def test_explain_json(capsys):
    out = explain(capsys, "--person", "female:30:away", "--at", "2026-11-23T18:00", "--json")
    decision = json.loads(out)
    assert decision["kind"] == "rule"
    assert decision["viewers"] == 0
    assert decision["local_time"].startswith("2026-11-23T18:00")


def test_explain_rejects_a_malformed_person(capsys):
    assert main(["rules", "explain", "--rules", str(EXAMPLE), "--person", "female"]) == 2
    assert "GENDER:AGE" in capsys.readouterr().err
