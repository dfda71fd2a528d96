"""`edge-agent rules check | schema | explain`: for the people who write the ad rules."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_agent.ads.explain import MAX_AGE_YEARS, MAX_ATTENTION_S
from edge_agent.segments import Gender

if TYPE_CHECKING:
    from edge_agent.ads.rules import RuleTable
    from edge_agent.config import Config


# What `rules explain` accepts: people as a camera could see them. A crowd is bounded so that
# a typo (--viewers 1000000000) is an error, not an hour of building pretend people.
MAX_VIEWERS = 1000


def _number_in(low: float, high: float, kind: type[float] | type[int] = float) -> Any:
    """An argparse type: a number from `low` to `high`, else argparse's own one-line error."""

    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (low <= value <= high):  # also false for nan
            raise argparse.ArgumentTypeError(f"{text} is out of range: {low:g} to {high:g}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    check = actions.add_parser("check", help="validate a rules file and its media")
    check.add_argument("file", type=Path, nargs="?", help="default: the config's ads.rules")
    actions.add_parser("schema", help="print the JSON Schema of rules.yaml")
    explain = actions.add_parser(
        "explain",
        help="the decision for a made-up audience, and why",
        description="Which ad would play for these people at this time, and why every other"
        " rule did not win. Build the audience from --gender/--age/--viewers (that many people"
        " alike) and/or --person for each member of a mixed group.",
    )
    explain.add_argument("--rules", dest="file", type=Path, help="default: the config's ads.rules")
    explain.add_argument("--gender", choices=[gender.value for gender in Gender])
    explain.add_argument(
        "--age",
        type=_number_in(0, MAX_AGE_YEARS),
        help=f"estimated age in years (0 to {MAX_AGE_YEARS:g})",
    )
    explain.add_argument(
        "--viewers",
        type=_number_in(1, MAX_VIEWERS, int),
        help=f"how many such people, all looking (default 1, at most {MAX_VIEWERS})",
    )
    explain.add_argument(
        "--person",
        action="append",
        default=[],
        metavar="GENDER:AGE[:away][:SECONDS]",
        help="one more person, e.g. female:30, male:8:away, unknown:?; repeatable",
    )
    explain.add_argument(
        "--attention",
        type=_number_in(0, MAX_ATTENTION_S),
        default=2.0,
        help="seconds each person has looked (default 2)",
    )
    explain.add_argument(
        "--at",
        help="local date and time in the rules' timezone, e.g. 2026-11-23T18:00 (default now)",
    )
    explain.add_argument("--json", action="store_true", help="the decision as JSON")
    for action in (check, explain):
        action.add_argument("--config", type=Path, help="config.yaml (for ads.rules, age brackets)")


def run(args: argparse.Namespace) -> int:
    if args.action == "schema":
        from edge_agent.ads.rules_schema import rules_json_schema

        print(json.dumps(rules_json_schema(), indent=2))
        return 0
    table, config = _rules_table(args)
    if args.action == "check":
        enabled = sum(rule.enabled for rule in table.rules)
        print(
            f"{table.source}: OK, {len(table.rules)} rules ({enabled} enabled),"
            f" {len(table.creatives)} creatives, version {table.version_id}"
        )
        return 0
    return _explain(args, table, config)


def _rules_table(args: argparse.Namespace) -> tuple[RuleTable, Config]:
    from edge_agent.ads.rules import load_rules
    from edge_agent.config import load_config

    config = load_config(args.config)
    path = args.file or config.ads.rules
    return load_rules(path, config.vision.brackets), config


def _explain(args: argparse.Namespace, table: RuleTable, config: Config) -> int:
    import datetime as dt

    from edge_agent.ads.decide import decide
    from edge_agent.ads.explain import decision_json, format_decision, make_person, parse_person

    brackets = config.vision.brackets
    people = [
        parse_person(text, index, brackets, args.attention)
        for index, text in enumerate(args.person)
    ]
    if args.gender or args.age is not None or args.viewers is not None:
        count = 1 if args.viewers is None else args.viewers
        gender = None if args.gender in (None, Gender.UNKNOWN) else args.gender
        people += [
            make_person(len(people) + n, gender, args.age, brackets, attention_s=args.attention)
            for n in range(count)
        ]
    try:
        at = dt.datetime.fromisoformat(args.at) if args.at else dt.datetime.now(dt.UTC)
    except ValueError:
        message = f"--at {args.at!r}: expected a date and time like 2026-11-23T18:00"
        raise ValueError(message) from None
    decision = decide(table, people, at)
    if args.json:
        print(json.dumps(decision_json(decision), indent=2, default=str))
    else:
        print(format_decision(decision, table))
    return 0
