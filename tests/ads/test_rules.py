"""The rules file: the example loads, and every kind of mistake is named by file, line and key."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edge_agent.ads.rules import TOP_LEVEL, RulesError, load_rules
from edge_agent.ads.rules_schema import rules_json_schema
from edge_agent.ads.values import MediaKind
from edge_agent.segments import DEFAULT_BRACKETS, Brackets
from edge_agent.validated_yaml import MAX_YAML_BYTES
from tests.support.ads import BASE, write_rules, write_video
from tests.support.paths import REPO


def problems(path: Path) -> list:
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    for problem in caught.value.problems:
        assert problem.file == str(path)
        assert problem.line is not None and problem.line >= 1
        assert problem.key_path
    return list(caught.value.problems)


def only(path: Path):
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


def test_the_example_rules_load_with_their_media():
    table = load_rules(REPO / "ads" / "rules.yaml")
    assert [c.creative_id for c in table.default_playlist] == ["welcome", "store-hours"]
    assert [c.creative_id for c in table.neutral_playlist] == ["family-deals", "fresh-fruit"]
    sneakers = table.creatives["sneakers"]
    assert sneakers.kind is MediaKind.VIDEO
    assert sneakers.duration_s == pytest.approx(6.0, abs=0.1)  # read from the file
    assert all(creative.path.is_file() for creative in table.creatives.values())
    assert str(table.timezone) == "Europe/Berlin"
    assert len(table.version_id) == 12


def test_the_committed_json_schema_is_current():
    committed = json.loads((REPO / "ads" / "rules.schema.json").read_text())
    assert committed == rules_json_schema()
    # Editors only flag unknown keys if the schema forbids them at every level.
    assert committed["additionalProperties"] is False
    for definition in committed["$defs"].values():
        assert definition.get("additionalProperties") is False


def test_a_minimal_file_takes_every_default(tmp_path):
    table = load_rules(write_rules(tmp_path))
    assert table.rules == ()
    assert table.group_policy == "majority"
    assert table.minors.protect is True
    assert table.minors.possible_minor_below_age == 25


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    path = write_rules(tmp_path, "- id: r\n  creatives: [t1]\n  priorty: 3\n")
    problem = only(path)
    assert problem.key_path == "rules[0].priorty"
    assert problem.line == len(BASE.splitlines()) + 4
    assert "did you mean 'priority'" in problem.message


def test_bad_enum_value_suggests_the_right_one(tmp_path):
    path = write_rules(tmp_path, "- id: r\n  creatives: [t1]\n  audience: {gender: femal}\n")
    problem = only(path)
    assert problem.key_path == "rules[0].audience.gender"
    assert "did you mean 'female'" in problem.message


def test_times_are_checked_and_an_unquoted_time_still_works(tmp_path):
    rules = "- id: r\n  creatives: [t1]\n  when: {between: [{from: '25:00', to: '02:00'}]}\n"
    problem = only(write_rules(tmp_path, rules))
    assert problem.key_path == "rules[0].when.between[0].from"
    assert "HH:MM" in problem.message
    # YAML 1.1 reads 18:00 as the number 1080; the rule still means six in the evening.
    rules = "- id: r\n  creatives: [t1]\n  when: {between: [{from: 18:00, to: 22:30}]}\n"
    window = load_rules(write_rules(tmp_path, rules)).rules[0].when.between[0]
    assert (window.start, window.end) == ("18:00", "22:30")


def test_an_empty_time_window_is_an_error(tmp_path):
    rules = "- id: r\n  creatives: [t1]\n  when: {between: [{from: '10:00', to: '10:00'}]}\n"
    assert "empty window" in only(write_rules(tmp_path, rules)).message


def test_ranges_must_be_ordered(tmp_path):
    rules = "- id: r\n  creatives: [t1]\n  audience: {age: {min: 40, max: 20}}\n"
    problem = only(write_rules(tmp_path, rules))
    assert problem.key_path == "rules[0].audience.age"
    assert "less than min" in problem.message
    rules = "- id: r\n  creatives: [t1]\n  when: {dates: {from: 2026-12-01, to: 2026-11-01}}\n"
    assert "before" in only(write_rules(tmp_path, rules)).message


def test_references_to_unknown_creatives_are_named(tmp_path):
    path = write_rules(tmp_path, "- id: r\n  creatives: [t1, nope]\n")
    problem = only(path)
    assert problem.key_path == "rules[0].creatives[1]"
    assert "'nope'" in problem.message
    head = BASE.replace("default_playlist: [a, b]", "default_playlist: [a, zz]")
    assert only(write_rules(tmp_path, head=head)).key_path == "default_playlist[1]"
    head = BASE.replace("minors: {playlist: [n]}", "minors: {playlist: [x]}")
    assert only(write_rules(tmp_path, head=head)).key_path == "minors.playlist[0]"


def test_duplicate_ids_are_errors(tmp_path):
    rules = "- id: r\n  creatives: [t1]\n- id: r\n  creatives: [t2]\n"
    problem = only(write_rules(tmp_path, rules))
    assert (problem.key_path, problem.line) == ("rules[1].id", len(BASE.splitlines()) + 4)
    head = BASE + "  - {id: a, file: media/b.png, duration_s: 3}\n"
    assert "duplicate creative id 'a'" in only(write_rules(tmp_path, head=head)).message


def test_media_problems_name_the_creative(tmp_path):
    head = BASE.replace("media/b.png", "media/missing.png")
    problem = only(write_rules(tmp_path, head=head))
    assert problem.key_path == "creatives[1].file"
    assert "no such file" in problem.message
    (tmp_path / "media" / "broken.png").write_bytes(b"not a png at all")
    head = BASE.replace("media/b.png", "media/broken.png")
    assert "not a readable image" in only(write_rules(tmp_path, head=head)).message
    head = BASE.replace("media/b.png, duration_s: 10", "media/b.png")
    assert only(write_rules(tmp_path, head=head)).key_path == "creatives[1].duration_s"
    head = BASE.replace("media/b.png", "media/b.txt")
    assert "not an image or video" in only(write_rules(tmp_path, head=head)).message


def test_a_video_without_duration_plays_its_length(tmp_path):
    write_video(tmp_path / "media" / "clip.webm", seconds=2.0, fps=10)
    head = BASE + "  - {id: clip, file: media/clip.webm}\n"
    clip = load_rules(write_rules(tmp_path, head=head)).creatives["clip"]
    assert clip.kind is MediaKind.VIDEO
    assert clip.duration_s == pytest.approx(2.0, abs=0.11)
    (tmp_path / "media" / "bad.webm").write_bytes(b"\x1a\x45\xdf\xa3 not really webm")
    head = BASE + "  - {id: clip, file: media/bad.webm}\n"
    assert "not a readable video" in only(write_rules(tmp_path, head=head)).message


def test_unknown_age_brackets_list_the_configured_ones(tmp_path):
    known = DEFAULT_BRACKETS.labels[2]
    rules = f"- id: r\n  creatives: [t1]\n  audience: {{brackets: [{known}, 21-30]}}\n"
    path = write_rules(tmp_path, rules)
    problem = only(path)
    assert problem.key_path == "rules[0].audience.brackets[1]"
    assert ", ".join(DEFAULT_BRACKETS.labels) in problem.message
    # With the config's own brackets, their labels are what rules may name.
    configured = Brackets((21, 31))  # 0-20, 21-30, 31+
    with pytest.raises(RulesError) as caught:
        load_rules(path, configured)
    assert [p.key_path for p in caught.value.problems] == ["rules[0].audience.brackets[0]"]
    assert "0-20, 21-30, 31+" in caught.value.problems[0].message
    rules = "- id: r\n  creatives: [t1]\n  audience: {brackets: [21-30, 31+]}\n"
    table = load_rules(write_rules(tmp_path, rules), configured)
    assert table.rules[0].audience.brackets == ("21-30", "31+")


def test_timezone_must_be_known(tmp_path):
    head = BASE.replace("timezone: UTC", "timezone: Europe/Berln")
    problem = only(write_rules(tmp_path, head=head))
    assert problem.key_path == "timezone"
    assert "IANA" in problem.message


def test_yaml_syntax_errors_name_line_and_key(tmp_path):
    path = write_rules(tmp_path, "- id: r\n  creatives: [t1\n  priority: 2\n")
    problem = only(path)
    assert "YAML syntax error" in problem.message
    assert problem.key_path.startswith("rules[0].creatives")


def test_a_file_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("- just\n- a list\n")
    problem = only(path)
    assert problem.key_path == TOP_LEVEL
    assert "must be a mapping" in problem.message
    path.write_text("")
    assert only(path).key_path == TOP_LEVEL


def test_every_problem_is_reported_at_once(tmp_path):
    rules = (
        "- id: r\n  creatives: [t1]\n  weight: 0\n"
        "- id: s\n  creatives: [t2]\n  play: {min_s: -1, max_per_hour: 0}\n"
    )
    found = problems(write_rules(tmp_path, rules))
    assert {p.key_path for p in found} == {
        "rules[0].weight",
        "rules[1].play.min_s",
        "rules[1].play.max_per_hour",
    }


def test_yaml_booleans_in_text_fields_get_a_hint(tmp_path):
    # `off`, `no`, `yes` and `on` are booleans to YAML 1.1: a classic for ids.
    problem = only(write_rules(tmp_path, "- {id: off, creatives: [t1]}\n"))
    assert problem.key_path == "rules[0].id"
    assert "put the text in quotes" in problem.message
    assert (
        load_rules(write_rules(tmp_path, "- {id: 'off', creatives: [t1]}\n")).rules[0].id == "off"
    )


def test_schema_errors_and_missing_media_are_reported_together(tmp_path):
    """One round of fixes, not two: a creative's missing file is named alongside a schema
    error elsewhere, and so is a rule naming an unknown creative."""
    path = write_rules(
        tmp_path, "- {id: r, creatives: [t1], weight: 0}\n- {id: s, creatives: [nope]}\n"
    )
    path.write_text(path.read_text().replace("media/t3.png", "media/gone.png"))
    found = {p.key_path: p for p in problems(path)}
    assert set(found) == {"creatives[5].file", "rules[0].weight", "rules[1].creatives[0]"}
    assert "no such file" in found["creatives[5].file"].message
    assert found["creatives[5].file"].line == 12


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!bool maybe", "'maybe' is not a valid !!bool value"),
        ("!!timestamp x", "'x' is not a valid !!timestamp value"),
        ("!!int x", "'x' is not a valid !!int value"),
        ("!!python/object:os.system {}", "could not determine a constructor"),
        ("!local 2", "could not determine a constructor for the tag '!local'"),
    ],
)
def test_a_tag_with_a_bad_value_names_its_line_and_key(tmp_path, value, message):
    path = write_rules(tmp_path, f"- {{id: r, creatives: [t1], weight: {value}}}\n")
    problem = only(path)
    assert (problem.line, problem.key_path) == (14, "rules[0].weight")
    assert message in problem.message


def test_bad_utf8_names_its_line(tmp_path):
    path = write_rules(tmp_path, "- {id: r, creatives: [t1]}\n")
    path.write_bytes(path.read_bytes().replace(b"id: r", b"id: r\xe9"))
    problem = only(path)
    assert problem.line == 14 and "not UTF-8" in problem.message


def test_a_bomb_is_refused_at_its_line(tmp_path):
    bomb = "".join(
        f"x{n}: &l{n} [{', '.join(['lol'] * 9 if n == 0 else [f'*l{n - 1}'] * 9)}]\n"
        for n in range(9)
    )
    path = write_rules(tmp_path, head=bomb + BASE)
    problem = only(path)
    assert problem.line is not None and problem.line <= 9 and "YAML bomb" in problem.message


@pytest.mark.parametrize("special", ["fifo", "directory", "huge"])
def test_special_and_oversized_files_are_refused_without_reading_them(tmp_path, special):
    path = tmp_path / "rules.yaml"
    if special == "fifo":
        os.mkfifo(path)  # reading it would wait for a writer forever
    elif special == "directory":
        path.mkdir()
    else:
        path.write_bytes(BASE.encode() + b"#" * MAX_YAML_BYTES)
    problem = only(path)
    assert "cannot read the rules file" in problem.message
    assert str(problem).startswith(f"{path}:1: ")


def test_the_number_of_creatives_is_bounded(tmp_path):
    many = "".join(f"  - {{id: c{n}, file: media/a.png, duration_s: 1}}\n" for n in range(600))
    path = write_rules(tmp_path, head=BASE.replace("creatives:\n", "creatives:\n" + many))
    problem = only(path)
    assert problem.key_path == "creatives" and "at most 500" in problem.message
