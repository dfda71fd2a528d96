"""The MQTT topic tree: one place that knows every topic, its QoS, retain flag and rate.

    edge-agent/<site>/<device>/availability        retained   online | stopped | offline (will)
    edge-agent/<site>/<device>/privacy             retained   what is measured; what never leaves
    edge-agent/<site>/<device>/audience/current    retained   people and viewers in front now
    edge-agent/<site>/<device>/audience/today      retained   passers-by and viewers since midnight
    edge-agent/<site>/<device>/audience/report                one closed window of counts
    edge-agent/<site>/<device>/ads/playing         retained   what the screen shows now
    edge-agent/<site>/<device>/ads/play                       proof of play, with its audience
    edge-agent/<site>/<device>/ads/decision                   why the screen changed
    edge-agent/<site>/<device>/stats               retained   pipeline health
    edge-agent/<site>/<device>/events/error                   something needs a person

`TOPICS` below is the contract's table; docs/mqtt.md and the tests are generated from or
checked against it, so a topic cannot change without the documentation changing too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edge_agent.telemetry.outbox import Importance
from edge_agent.telemetry.values import DEFAULT_BASE, base_topic_problem, check_id

# The rule lives with the values (the configuration checks topics too); the link imports it here.
from edge_agent.telemetry.values import topic_name_problem as topic_name_problem


class Leaf(StrEnum):
    """The part of a topic after edge-agent/<site>/<device>/."""

    AVAILABILITY = "availability"
    PRIVACY = "privacy"
    AUDIENCE_CURRENT = "audience/current"
    AUDIENCE_TODAY = "audience/today"
    AUDIENCE_REPORT = "audience/report"
    ADS_PLAYING = "ads/playing"
    ADS_PLAY = "ads/play"
    ADS_DECISION = "ads/decision"
    STATS = "stats"
    EVENTS_ERROR = "events/error"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    leaf: Leaf
    message_type: str  # the payload's "type" and its JSON Schema's name
    qos: int
    retain: bool
    # None: a latest-value state kept in memory and re-sent on every connect (never queued);
    # otherwise the outbox importance of a record that must not be lost (or dropped last).
    importance: Importance | None
    rate: str  # when it is published, in words (for the docs)
    summary: str


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        Leaf.AVAILABILITY,
        "availability",
        1,
        True,
        None,
        "on connect (`online`), on clean exit (`stopped`); `offline` is the broker's last will",
        "Whether the daemon is running and connected. Sent after the states below on every"
        " connect, so a dashboard never sees `online` with stale or missing state.",
    ),
    TopicSpec(
        Leaf.PRIVACY,
        "privacy",
        1,
        True,
        None,
        "on every connect",
        "The privacy statement: what is measured, the minimum group size, that no image or"
        " per-person record leaves the device.",
    ),
    TopicSpec(
        Leaf.AUDIENCE_CURRENT,
        "audience_current",
        1,
        True,
        None,
        "on change, at most once a second; and every 60 s",
        "People in front of the screen now and how many of them look at it.",
    ),
    TopicSpec(
        Leaf.AUDIENCE_TODAY,
        "audience_today",
        1,
        True,
        None,
        "after every window report; the first after local midnight starts from 0 again",
        "Passers-by and viewers since local midnight, by segment; survives restarts.",
    ),
    TopicSpec(
        Leaf.AUDIENCE_REPORT,
        "audience_report",
        1,
        False,
        Importance.REPORT,
        "once per window (`audience.window_s`, default 60 s), and at shutdown",
        "One closed window: passers-by and viewers by gender x age bracket, dwell and"
        " attention statistics. Never dropped.",
    ),
    TopicSpec(
        Leaf.ADS_PLAYING,
        "ads_playing",
        1,
        True,
        None,
        "when a play starts",
        "The creative on screen now, its rule and the reason.",
    ),
    TopicSpec(
        Leaf.ADS_PLAY,
        "ads_play",
        1,
        False,
        Importance.REPORT,
        "when a play ends (one per play)",
        "Proof of play: creative, rule, start, end, how it ended, and its audience. Never dropped.",
    ),
    TopicSpec(
        Leaf.ADS_DECISION,
        "ads_decision",
        1,
        False,
        Importance.EVENT,
        "when a play starts",
        "Why the screen changed: the winning rule, its reason, the audience at that moment.",
    ),
    TopicSpec(
        Leaf.STATS,
        "stats",
        1,
        True,
        Importance.STATS,
        "every `logging.stats_interval_s` (default 30 s)",
        "Pipeline health: fps, stage times, skipped frames, camera, outbox backlog. Dropped"
        " first when the outbox is full.",
    ),
    TopicSpec(
        Leaf.EVENTS_ERROR,
        "error",
        1,
        False,
        Importance.EVENT,
        "when it happens",
        "Something a person should look at: a bad rules edit (with file, line and key), the"
        " camera lost or back.",
    ),
)

SPECS: dict[Leaf, TopicSpec] = {spec.leaf: spec for spec in TOPICS}


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of one device."""

    site: str
    device: str
    base: str = DEFAULT_BASE

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        check_id(self.device, "device")
        problem = base_topic_problem(self.base)
        if problem is not None:
            raise ValueError(f"base topic {self.base[:80]!r} {problem}")

    @property
    def root(self) -> str:
        return f"{self.base}/{self.site}/{self.device}"

    def topic(self, leaf: Leaf) -> str:
        return f"{self.root}/{leaf.value}"

    @property
    def subscription(self) -> str:
        """Everything this device publishes."""
        return f"{self.root}/#"


def fleet_subscription(base: str = DEFAULT_BASE, site: str = "+", device: str = "+") -> str:
    """Everything from every device (or one site, or one device)."""
    return f"{base}/{site}/{device}/#"


def parse_topic(topic: str, base: str = DEFAULT_BASE) -> tuple[str, str, Leaf] | None:
    """(site, device, leaf) of one of our topics; None for anything else."""
    prefix = f"{base}/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix) :].split("/", 2)
    if len(parts) != 3:
        return None
    site, device, rest = parts
    try:
        return site, device, Leaf(rest)
    except ValueError:
        return None


def render_topic_table(base: str = DEFAULT_BASE) -> str:
    """The Markdown table of docs/mqtt.md (a test keeps the page and this table in step)."""
    rows = [
        "| topic | payload `type` | QoS | retained | kept in the outbox | when |",
        "| --- | --- | :-: | :-: | --- | --- |",
    ]
    for spec in TOPICS:
        kept = (
            "no: latest value, re-sent on connect"
            if spec.importance is None
            else (f"yes ({spec.importance.name.lower()})")
        )
        rows.append(
            f"| `{base}/<site>/<device>/{spec.leaf.value}` | `{spec.message_type}` | {spec.qos}"
            f" | {'yes' if spec.retain else 'no'} | {kept} | {spec.rate} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m edge_agent.telemetry.topics
    print(render_topic_table(), end="")
