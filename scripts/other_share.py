#!/usr/bin/env python3
"""How much of the published audience mix is folded into "other", by traffic and window.

Every published table of counts folds the gender x age-bracket segments that hold fewer than
k people (`audience.min_segment_size`) into "other", so that no small group can be singled
out. The fewer people a table covers, the more of it is "other": a display that passes 60
people an hour sees about one person a minute, and a one-minute report is then nearly all
"other". This simulates a shop day to show the trade-off:

- people arrive at random (Poisson) at each of several rates per hour, over `--hours`;
- each is given a segment drawn from a mix (`--unknown` of them "unknown": too small, turned
  or cut off; the rest spread over the segments as in a typical shop audience, an assumption
  to replace with a display's own day totals);
- the day is cut into windows of each length, each window's counts folded with
  `segments.fold_small_segments` (the function the daemon publishes with; "unknown" folds
  too when it is small), and the share of people that end in "other" is measured.

What this does not model: traffic that comes in bursts (which helps), or a mix skewed to one
segment (which also helps); evenly spread traffic over many segments is the hard case.

Usage: scripts/other_share.py [--rates 30,60,120,300] [--windows 60,300,900,3600]
                              [--k 5] [--unknown 0.2] [--hours 12] [--seed 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from edge_agent.segments import DEFAULT_BRACKETS, OTHER, UNKNOWN, Gender, fold_small_segments

# An assumed shop audience by age bracket (DEFAULT_BRACKETS), split evenly by gender.
BRACKET_SHARES = {"0-12": 0.08, "13-19": 0.10, "20-34": 0.30, "35-54": 0.32, "55+": 0.20}


def draw_segment(rng: random.Random, unknown: float) -> str:
    if rng.random() < unknown:
        return UNKNOWN
    bracket = rng.choices(list(BRACKET_SHARES), weights=list(BRACKET_SHARES.values()))[0]
    gender = rng.choice([Gender.FEMALE, Gender.MALE])
    return f"{gender}/{bracket}"


def arrivals(rng: random.Random, per_hour: float, hours: float) -> list[float]:
    times, now = [], 0.0
    while True:
        now += rng.expovariate(per_hour / 3600)
        if now >= hours * 3600:
            return times
        times.append(now)


def other_share(people: list[tuple[float, str]], window_s: float, k: int) -> dict[str, float]:
    """Share of the people published as "other" (the windows folded one by one, as the
    day's totals sum them), and how many named segments the day's totals then show."""
    windows: dict[int, Counter[str]] = {}
    for at, segment in people:
        windows.setdefault(int(at // window_s), Counter())[segment] += 1
    day: Counter[str] = Counter()
    for counts in windows.values():
        day.update(fold_small_segments(counts, k))
    published_segments = sum(1 for name in day if name not in (OTHER, UNKNOWN))
    return {
        "other_share": round(day[OTHER] / len(people), 3) if people else 0.0,
        "segments_in_day_totals": published_segments,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="30,60,120,300", help="people per hour, comma list")
    parser.add_argument("--windows", default="60,300,900,3600", help="seconds, comma list")
    parser.add_argument("--k", type=int, default=5, help="smallest published segment")
    parser.add_argument("--unknown", type=float, default=0.2, help="share without a segment")
    parser.add_argument("--hours", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the numbers to this JSON file")
    args = parser.parse_args()
    try:
        rates = [float(r) for r in args.rates.split(",")]
        windows = [float(w) for w in args.windows.split(",")]
    except ValueError:
        print("other_share: --rates and --windows are comma-separated numbers", file=sys.stderr)
        return 2
    if args.k < 1 or not 0 <= args.unknown < 1 or min(rates + windows) <= 0:
        print("other_share: need k >= 1, 0 <= unknown < 1, positive rates", file=sys.stderr)
        return 2

    rng = random.Random(args.seed)
    rows = []
    for rate in rates:
        people = [(t, draw_segment(rng, args.unknown)) for t in arrivals(rng, rate, args.hours)]
        for window in windows:
            share = other_share(people, window, args.k)
            rows.append({"per_hour": rate, "window_s": window} | share)

    print(f"share of people published as 'other' (k={args.k}, {args.hours:g} h day,")
    brackets = len(DEFAULT_BRACKETS.labels)
    print(f"{args.unknown:.0%} unknown; segments: gender x {brackets} brackets)")
    header = "people/h " + "".join(f"{f'{w:g} s':>12}" for w in windows)
    print(header)
    for rate in rates:
        cells = [r for r in rows if r["per_hour"] == rate]
        print(f"{rate:>8g} " + "".join(f"{c['other_share']:>12.0%}" for c in cells))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = {k: v for k, v in vars(args).items() if k != "out"}
        args.out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
