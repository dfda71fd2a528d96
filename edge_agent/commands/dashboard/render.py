"""Rendering: pure functions of a `FleetView` (and the time it was taken) to rich renderables.

Pure, so tests render to a recording `Console` and read what a person would read. A few devices
get a detailed panel each, a fleet gets one table line per device whose number columns never
shrink (the creative's name is the column a narrow terminal cuts); the package docstring
(`edge_agent.commands.dashboard`) describes the layout as the user sees it. No paho here:
nothing that draws the screen waits on the network.
"""

from __future__ import annotations

import datetime as dt

from rich import box
from rich.console import Group, JustifyMethod, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from edge_agent.commands.dashboard.model import DeviceView, FleetView, Health, Segment, Window
from edge_agent.segments import OTHER, UNKNOWN, segment_name

DETAIL_LIMIT = 6  # more devices than this: one table line per device instead of panels
BAR_WIDTH = 12  # cells for the largest segment of a window
NOT_ONLINE_NAMED_MAX = 8  # devices named in the header's "not online" line

STATE_STYLE = {"online": "bold green", "stopped": "bold yellow", "offline": "bold red"}
GENDER_STYLE = {"female": "magenta", "male": "cyan"}
_EIGHTHS = " ▏▎▍▌▋▊▉"
NO_VALUE = "-"  # a value not received yet


def ago(ts_ms: int, now_ms: int) -> str:
    """'5 s ago', '3 min ago', '2 h ago', '4 d ago'; 'just now' under a second."""
    seconds = (now_ms - ts_ms) / 1000
    if seconds < 0:
        # The device's clock is ahead of this machine's; say so rather than hide it.
        return "just now" if seconds > -2 else f"{_span(-seconds)} ahead"
    if seconds < 1:
        return "just now"
    return f"{_span(seconds)} ago"


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def bar(count: int, largest: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar in eighths of a cell; any count above 0 shows at least a sliver."""
    if count <= 0 or largest <= 0:
        return ""
    eighths = max(1, round(count / largest * width * 8))
    return "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")


def local_time(iso_utc: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso_utc).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return iso_utc


def _state_text(device: DeviceView, now_ms: int) -> Text:
    availability = device.availability
    if availability is None:
        return Text("? unknown: no availability message yet", style="dim")
    state = availability.state
    text = Text(f"● {state}", style=STATE_STYLE.get(state, ""))
    if availability.since_ms is not None:
        text.append(f" since {ago(availability.since_ms, now_ms)}")
    else:
        text.append(f" · connection lost (it had connected {ago(availability.ts_ms, now_ms)})")
    if availability.version:
        text.append(f" · v{availability.version}", style="dim")
    return text


def _health_text(health: Health | None, now_ms: int) -> Text:
    if health is None:
        return Text(NO_VALUE, style="dim")
    text = Text(f"{health.fps:.1f} fps")
    if health.outbox_pending is not None:
        waiting = health.outbox_pending
        text.append(f" · outbox {waiting} waiting", style="yellow" if waiting > 100 else "")
    if health.outbox_dropped:
        text.append(f" · {health.outbox_dropped} dropped", style="bold red")
    if health.source_connected is False:
        text.append(" · camera lost", style="bold red")
    # Stats come every interval_s; three missed in a row means the numbers above are old.
    late = health.interval_s is not None and now_ms - health.ts_ms > 3000 * health.interval_s
    text.append(f"  (stats {ago(health.ts_ms, now_ms)})", style="bold yellow" if late else "dim")
    return text


def _segment_cell(segment: Segment | None, largest: int, style: str) -> Text:
    if segment is None:
        return Text("")
    text = Text(bar(segment.passers_by, largest), style=style)
    text.append(f" {segment.passers_by}")
    if segment.viewers is not None:
        text.append(f" ({segment.viewers})", style="dim")
    return text


def render_window_bars(window: Window) -> Table:
    """Female and male side by side per age bracket, then other and unknown."""
    gendered = [segment for segment in window.segments if segment.gender is not None]
    genders = sorted(
        {segment.gender for segment in gendered if segment.gender},
        key=lambda gender: (gender not in GENDER_STYLE, gender),
    )
    brackets = sorted({(s.bracket_order, s.bracket) for s in gendered})
    by_name = {segment.name: segment for segment in window.segments}
    largest = max((segment.passers_by for segment in window.segments), default=0)
    table = Table(box=None, show_header=bool(genders), padding=(0, 2, 0, 0), pad_edge=False)
    table.add_column("age", style="bold")
    for gender in genders or ["passers-by"]:
        table.add_column(gender, no_wrap=True)
    for _, bracket in brackets:
        table.add_row(
            bracket,
            *(
                _segment_cell(
                    by_name.get(segment_name(g, bracket)), largest, GENDER_STYLE.get(g, "")
                )
                for g in genders
            ),
        )
    for name in (OTHER, UNKNOWN):
        if name in by_name:
            cells = [Text("")] * max(0, len(genders) - 1)
            table.add_row(name, _segment_cell(by_name[name], largest, "white"), *cells)
    return table


def _window_block(device: DeviceView, now_ms: int) -> RenderableType:
    window = device.window
    if window is None:
        every = f" (one every {device.window_s:g} s)" if device.window_s else ""
        return Text(f"none received yet{every}: reports are not retained", style="dim")
    heading = Text(
        f"{local_time(window.window_start)} to {local_time(window.window_end)}"
        f" ({ago(window.ts_ms, now_ms)}): {window.passers_by} passers-by · {window.viewers}"
        " viewers"
    )
    if not window.segments:
        return heading
    note = "bar = passers-by, (n) = of them viewers"
    if window.min_segment_size:
        note += f"; groups under {window.min_segment_size} are counted in other"
    return Group(heading, render_window_bars(window), Text(note, style="dim"))


def render_device_panel(device: DeviceView, now_ms: int) -> Panel:
    rows = Table.grid(padding=(0, 1))
    rows.add_column(style="bold", no_wrap=True)
    rows.add_column()
    rows.add_row("state", _state_text(device, now_ms))
    rows.add_row("health", _health_text(device.health, now_ms))
    current = device.current
    rows.add_row(
        "now",
        Text(
            f"{current.viewers_now} viewers · {current.present} present"
            f"  ({ago(current.ts_ms, now_ms)})"
        )
        if current
        else Text(NO_VALUE, style="dim"),
    )
    today = device.today
    rows.add_row(
        "today",
        Text(f"{today.passers_by} passers-by · {today.viewers} viewers  ({today.date})")
        if today
        else Text(NO_VALUE, style="dim"),
    )
    playing = device.playing
    if playing:
        text = Text(playing.creative_id, style="bold")
        text.append(f" · rule {playing.rule_id}" if playing.rule_id else " · default playlist")
        if playing.reason:
            text.append(f" · {playing.reason}")
        text.append(f"  (since {ago(playing.started_ms, now_ms)})", style="dim")
        rows.add_row("playing", text)
    else:
        rows.add_row("playing", Text(NO_VALUE, style="dim"))
    error = device.last_error
    if error:
        where = f" ({error.file}:{error.line})" if error.file and error.line else ""
        # events/error also carries the all-clear (source_back): not shown as an alarm.
        style = "green" if error.kind.endswith("_back") else "red"
        rows.add_row(
            "last error",
            Text(f"{error.kind} {ago(error.ts_ms, now_ms)}: {error.message}{where}", style=style),
        )
    rows.add_row("last window", _window_block(device, now_ms))
    return Panel(
        rows,
        title=Text(device.name, style="bold"),
        title_align="left",
        border_style=STATE_STYLE.get(device.state, "dim").replace("bold ", ""),
    )


def short_ago(ts_ms: int, now_ms: int) -> str:
    """'5s', '3m', '2h', '4d': ages for the one-line-per-device table."""
    seconds = max(0.0, (now_ms - ts_ms) / 1000)
    number, unit = _span(seconds).split()
    return f"{number}{unit[0]}"


def render_fleet_table(view: FleetView) -> Table:
    """One line per device under a line per site (so the device column stays narrow); the
    creative's name is last and is the one cut when the terminal is too narrow."""
    now_ms = view.taken_ms
    table = Table(
        box=box.SIMPLE_HEAD,  # its column separators are the only gaps: no padding needed
        padding=0,
        caption="now: viewers/present · today, window: passers-by/viewers · ages: s m h d ago",
        caption_justify="left",
    )
    rows: list[list[RenderableType]] = []
    site = None
    for device in view.devices:
        if device.site != site:
            site = device.site
            rows.append([Text(site, style="bold underline")] + [""] * (len(_FLEET_COLUMNS) - 1))
        rows.append(_table_row(device, now_ms))
    for index, name in enumerate(_FLEET_COLUMNS):
        if name == "playing":
            table.add_column(name, no_wrap=True, overflow="ellipsis")
            continue
        # Never shrunk: a cut number or state is worse than a cut creative name.
        widest = max([len(name), *(_width(row[index]) for row in rows)])
        justify: JustifyMethod = "left" if name in ("device", "state", "last error") else "right"
        table.add_column(name, justify=justify, no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    return table


# "playing" last: it is the column a narrow terminal cuts.
_FLEET_COLUMNS = (
    "device",
    "state",
    "fps",
    "outbox",
    "now",
    "today",
    "window",
    "last error",
    "playing",
)


def _width(cell: RenderableType) -> int:
    return cell.cell_len if isinstance(cell, Text) else len(str(cell))


def _table_row(device: DeviceView, now_ms: int) -> list[RenderableType]:
    """The cells of one device, in _FLEET_COLUMNS order."""
    health, current, today = device.health, device.current, device.today
    window, error, availability = device.window, device.last_error, device.availability
    state = Text(device.state, style=STATE_STYLE.get(device.state, "dim"))
    if availability is not None and availability.since_ms is not None:
        state.append(f" {short_ago(availability.since_ms, now_ms)}")
    outbox = health.outbox_pending if health else None
    last_error: RenderableType = ""
    if error:
        style = "green" if error.kind.endswith("_back") else "red"
        last_error = Text(f"{error.kind} {short_ago(error.ts_ms, now_ms)}", style=style)
    return [
        Text(f"  {device.device}"),
        state,
        f"{health.fps:.1f}" if health else NO_VALUE,
        NO_VALUE if outbox is None else str(outbox),
        f"{current.viewers_now}/{current.present}" if current else NO_VALUE,
        f"{today.passers_by}/{today.viewers}" if today else NO_VALUE,
        f"{window.passers_by}/{window.viewers}" if window else NO_VALUE,
        last_error,
        device.playing.creative_id if device.playing else NO_VALUE,
    ]


def render_header(view: FleetView) -> RenderableType:
    line = Text("edge-agent dashboard", style="bold")
    line.append(f" · {view.broker} ")
    if view.connected:
        line.append("connected", style="green")
    else:
        line.append(view.connection_note or "not connected", style="bold red")
    line.append(f" · {view.subscription}", style="dim")
    counts = Text(f"devices {view.online}/{len(view.devices)} online")
    counts.append(f" · {view.received} messages received · {view.ignored} ignored")
    if view.duplicates:
        counts.append(f" · {view.duplicates} duplicates")
    if view.out_of_order:
        counts.append(f" · {view.out_of_order} out of order")
    counts.append(
        f" · {dt.datetime.fromtimestamp(view.taken_ms / 1000).strftime('%H:%M:%S')}", style="dim"
    )
    lines: list[RenderableType] = [line, counts]
    not_online = [device for device in view.devices if device.state != "online"]
    if not_online:
        names = ", ".join(
            f"{device.name} ({device.state})" for device in not_online[:NOT_ONLINE_NAMED_MAX]
        )
        more = len(not_online) - NOT_ONLINE_NAMED_MAX
        lines.append(
            Text(f"not online: {names}" + (f" and {more} more" if more > 0 else ""), style="red")
        )
    return Group(*lines)


def render(view: FleetView, layout: str = "auto") -> RenderableType:
    """The whole screen. layout: auto (panels up to DETAIL_LIMIT devices) | panels | table."""
    header = render_header(view)
    if not view.devices:
        waiting = "waiting for messages" if view.connected else "no data yet"
        return Group(header, Text(f"\nno device seen on {view.subscription} ({waiting})"))
    use_panels = layout == "panels" or (layout == "auto" and len(view.devices) <= DETAIL_LIMIT)
    if use_panels:
        panels = [render_device_panel(device, view.taken_ms) for device in view.devices]
        return Group(header, *panels)
    return Group(header, render_fleet_table(view))
