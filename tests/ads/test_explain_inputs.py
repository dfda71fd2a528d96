"""`edge-agent rules explain` refuses people no camera could see, with argparse's one line."""

from __future__ import annotations

import pytest

from edge_agent.cli import main
from tests.support.paths import REPO

RULES = str(REPO / "ads" / "rules.yaml")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--age", "-5"], "argument --age: -5 is out of range: 0 to 120"),
        (["--age", "nan"], "argument --age: nan is out of range"),
        (["--age", "200"], "argument --age: 200 is out of range"),
        (["--age", "old"], "argument --age: 'old' is not a number"),
        (["--viewers", "0"], "argument --viewers: 0 is out of range: 1 to 1000"),
        (["--viewers", "1000000000"], "argument --viewers: 1000000000 is out of range"),
        (["--attention", "-1"], "argument --attention: -1 is out of range"),
    ],
)
def test_impossible_audiences_are_usage_errors(capsys, arguments, message):
    with pytest.raises(SystemExit) as exited:
        main(["rules", "explain", "--rules", RULES, *arguments])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"edge-agent rules explain: error: {message}" in error


@pytest.mark.parametrize(
    ("person", "message"),
    [
        ("female:-5", "age is out of range: 0 to 120"),
        ("male:inf", "age is out of range"),
        ("male:30:-2", "attention is out of range"),
    ],
)
def test_impossible_people_are_errors(capsys, person, message):
    assert main(["rules", "explain", "--rules", RULES, "--person", person]) == 2
    error = capsys.readouterr().err
    assert error == f"edge-agent: error: --person {person!r}: {message}" + error.split(message)[1]
    assert error.count("\n") == 1


def test_a_possible_audience_is_explained(capsys):
    at = ["--at", "2026-11-23T18:00"]
    assert main(["rules", "explain", "--rules", RULES, "--age", "0", "--viewers", "2", *at]) == 0
    assert "2 present, 2 looking" in capsys.readouterr().out
