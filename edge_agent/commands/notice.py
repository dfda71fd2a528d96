"""Print the privacy notice for the sign next to the screen, generated from the configuration.

People in front of the camera must be told that their age and gender are estimated (EU AI Act
Art. 50(3) for biometric categorisation; GDPR Art. 13). Following the EDPB's layered approach
(Guidelines 3/2019 on video devices), the notice has two layers:

  1. the sign: a few lines a passer-by reads in seconds (what, who is responsible, whom to
     ask, where the full notice is), to put up where the camera sees people;
  2. the full notice: what is processed, why, what is kept and sent, and for how long.

Every number in it (report window, smallest published group, age brackets, the minors policy
of the ad rules) comes from the configuration, and its core is the statement the display
publishes on its MQTT `privacy` topic, so the sign and the display never disagree. Print it
again after changing the configuration.

Set `privacy.controller` and `privacy.contact` in config.yaml first; `--draft` previews the
notice with placeholders instead. The notice is refused while `debug.save_annotated_frames_dir`
is set: the display would then store images of faces, and the notice would be false.

    edge-agent notice --config /etc/edge-agent/config.yaml --format html --output notice.html

The text states what the system does; it is not legal advice. The operator remains
responsible for the legal basis of the processing and should have the notice checked by their
data protection officer.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent import installed

if TYPE_CHECKING:
    from edge_agent.config import Config

SYSTEM_CONFIG = installed.CONFIG
FORMATS = ("text", "markdown", "html")
WIDTH = 72
REQUIRED = ("controller", "contact")
SIGN_HEADING = "Camera: audience measurement"
TITLE = "Privacy notice: camera audience measurement"
OPERATOR_NOTE = (
    "Note for the operator (not part of the notice): this text states what the display does"
    " as configured; it is not legal advice. You remain responsible for the legal basis of"
    " the processing and for informing people: have the text checked by your data protection"
    " officer, and print it again after changing the configuration."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        help=f"config.yaml (default: {SYSTEM_CONFIG} if it exists, else the built-in defaults)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="text", help="text (default), markdown or html"
    )
    parser.add_argument(
        "--draft",
        action="store_true",
        help="print placeholders for a missing privacy.controller or privacy.contact",
    )
    parser.add_argument("--output", type=Path, metavar="FILE", help="write here, not to stdout")


def run(args: argparse.Namespace) -> int:
    from edge_agent.config import ConfigError, load_config

    path = args.config
    if path is None and SYSTEM_CONFIG.is_file():
        path = SYSTEM_CONFIG
    try:
        config = load_config(path)
    except ConfigError as error:
        return _fail(str(error))
    where = str(path) if path is not None else "the built-in defaults"
    frames_dir = config.debug.save_annotated_frames_dir
    if frames_dir is not None:
        return _fail(
            f"debug.save_annotated_frames_dir is set ({frames_dir}) in {where}: this display"
            " writes images of faces to disk, so a notice saying that no image is stored would"
            " be false. Set it to null before the display faces the public."
        )
    missing = [f"privacy.{key}" for key in REQUIRED if getattr(config.privacy, key) is None]
    if missing and not args.draft:
        return _fail(
            f"the notice needs {' and '.join(missing)}, not set in {where}: set them in"
            " config.yaml (see its privacy section), or use --draft for a preview with"
            " placeholders"
        )
    notice = build_notice(config, _minors_sentence(config))
    text = RENDERERS[args.format](notice)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
        print(f"edge-agent notice: wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if missing:
        print(
            f"edge-agent notice: DRAFT: placeholders for {', '.join(missing)}; do not put it up"
            " like this.",
            file=sys.stderr,
        )
    print(textwrap.fill(OPERATOR_NOTE, WIDTH), file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"edge-agent: error: {message}", file=sys.stderr)
    return 2


# --------------------------------------------------------------------------------------------
# Content


@dataclass(frozen=True, slots=True)
class Line:
    """A paragraph, optionally led by a label ("Responsible:") that formats may set off."""

    text: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    lines: tuple[Line, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    sign_heading: str
    sign: tuple[Line, ...]  # layer 1
    title: str
    sections: tuple[Section, ...]  # layer 2


def build_notice(config: Config, minors_sentence: str | None = None) -> Notice:
    """The two layers as plain text; rendering (and escaping) is the formats' business.

    `minors_sentence` says how possible minors are protected from targeting, when the ad
    rules could be read (see `_minors_sentence`).
    """
    from edge_agent.telemetry.payloads import PRIVACY_STATEMENT

    privacy, audience = config.privacy, config.audience
    controller = _value(privacy.controller, "controller")
    contact = _value(privacy.contact, "contact")
    more_info = None if privacy.more_info is None else _value(privacy.more_info, "more_info")
    k = audience.min_segment_size
    period = _duration(audience.window_s)
    targeted = config.ads.enabled
    purpose = "to choose ads and to count its audience" if targeted else "to count its audience"

    sign = [
        Line(
            "This screen has a camera. On this device, it estimates the age and gender of"
            f" people in front of it, {purpose}."
        ),
        Line("No image is stored or sent. Nobody is identified. Only counts are kept."),
        Line(controller, "Responsible:"),
    ]
    if more_info is None:
        sign.append(Line(contact, "Questions, your rights, full notice:"))
    else:
        sign += [Line(contact, "Questions and your rights:"), Line(more_info, "Full notice:")]

    why = [
        Line(
            "To count the audience of this screen: how many people passed by, how many looked"
            " at the screen, and for how long."
        )
    ]
    if targeted:
        why.insert(
            0,
            Line(
                "To choose which ad this screen plays: the ad shown may be chosen by the"
                " estimated age and gender of the people in front of it."
            ),
        )
        if minors_sentence:
            why.insert(1, Line(minors_sentence))
    else:
        why.append(Line("The estimates are not used to choose what the screen shows."))

    if k > 1:
        grouping = (
            f"Any group of one gender and age bracket with fewer than {k} people in such a"
            " period is merged into 'other', so that no small group can be singled out."
        )
    else:
        grouping = "Groups are not merged: a count may be as small as one person."
    kept = [
        Line(
            f"Only counts, totalled over periods of {period}: how many people passed by and"
            " how many looked at the screen, by gender and age bracket, and how long they"
            f" stayed and looked. {grouping}"
        ),
        Line(
            "No image or face crop is stored or sent. There is no face recognition: nobody is"
            " identified, and nobody is recognised or followed from one visit to the next."
            " These counts are all that is kept on this device or sent from it."
        ),
    ]

    responsible = [Line(controller, "Responsible:"), Line(contact, "Contact:")]
    if privacy.dpo_contact is not None:
        responsible.append(Line(_value(privacy.dpo_contact, "dpo_contact"), "Data protection:"))

    brackets = ", ".join(config.vision.brackets.labels)
    sections = [
        Section("In short", (Line(PRIVACY_STATEMENT.format(k=k)),)),
        Section(
            "What is processed",
            (
                Line(
                    "A camera at this screen sees the area in front of it. On this device, in"
                    " memory, faces in the camera's view are detected, and for each person the"
                    f" age bracket ({brackets}) and gender are estimated, as well as whether"
                    " and how long they look at the screen. Each camera image and face crop"
                    " exists for a fraction of a second and is then discarded."
                ),
                Line(
                    "While someone is in view, their estimate is kept in memory only to follow"
                    " them from one camera frame to the next; when they leave, it is added to"
                    " the counts and forgotten."
                ),
            ),
        ),
        Section("Why", tuple(why)),
        Section("What is kept and sent", tuple(kept)),
        Section("Who is responsible", tuple(responsible)),
        Section(
            "Questions and your rights",
            (
                Line(
                    "For questions about this processing, or to exercise your data protection"
                    f" rights, write to {contact}. As no image is kept and nobody is"
                    " identified, the display holds no record about any one person that could"
                    " be looked up afterwards."
                ),
            ),
        ),
    ]
    if more_info is not None:
        sections.append(Section("More information", (Line(more_info),)))
    return Notice(SIGN_HEADING, tuple(sign), TITLE, tuple(sections))


def _value(value: str | None, key: str) -> str:
    if value is None:
        return f"[set privacy.{key} in config.yaml]"
    # A postal address may come as several YAML lines; on a sign one line reads as well.
    return ", ".join(part.strip() for part in value.splitlines() if part.strip())


def _duration(seconds: float) -> str:
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} second{'' if seconds == 1 else 's'}"


def _minors_sentence(config: Config) -> str | None:
    """How the ad rules keep possible minors from targeting; None where that is not known.

    The notice does not fail over the rules: a rules file that cannot be read here (another
    working directory, a bad edit) only leaves the sentence out, and says so.
    """
    if not config.ads.enabled:
        return None
    from edge_agent.ads.rules import load_rules

    try:
        minors = load_rules(config.ads.rules, config.vision.brackets).minors
    except (ValueError, OSError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(
            f"edge-agent notice: could not read the ad rules ({first}); the notice leaves out"
            " how minors are protected from targeting",
            file=sys.stderr,
        )
        return None
    if not minors.protect:
        return None
    unknown = (
        ", and anyone whose age is not yet estimated"
        if minors.unknown_age_is_possible_minor
        else ""
    )
    # Say the threshold: estimates err by years, so it is well above 18 on purpose.
    return (
        "Ads are not chosen by age or gender while anyone who may be under 18 is present:"
        f" to be safe, that is anyone estimated younger than"
        f" {minors.possible_minor_below_age:g}{unknown}."
    )


# --------------------------------------------------------------------------------------------
# Formats


def render_text(notice: Notice) -> str:
    rule = "=" * WIDTH
    out = [rule, notice.sign_heading.upper(), "", *_paragraphs(notice.sign), rule]
    out += ["", notice.title, "=" * len(notice.title)]
    for section in notice.sections:
        out += ["", section.heading, "-" * len(section.heading), *_paragraphs(section.lines)]
    return "\n".join(out) + "\n"


def _paragraphs(lines: tuple[Line, ...]) -> list[str]:
    out: list[str] = []
    for index, line in enumerate(lines):
        # Labelled lines form one block, like an address card; plain ones are paragraphs.
        if index and not (line.label and lines[index - 1].label):
            out.append("")
        out += _wrap(line)
    return out


def _wrap(line: Line) -> list[str]:
    text = f"{line.label} {line.text}" if line.label else line.text
    return textwrap.wrap(
        text,
        WIDTH,
        subsequent_indent="  " if line.label else "",
        break_long_words=False,
        break_on_hyphens=False,
    )


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>&|#])")


def _md(text: str) -> str:
    # Config values could otherwise turn into links, emphasis or raw HTML.
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def render_markdown(notice: Notice) -> str:
    out = [f"# {_md(notice.sign_heading)}", ""]
    for line in notice.sign:
        out += [_md_line(line), ""]
    out += ["---", "", f"## {_md(notice.title)}"]
    for section in notice.sections:
        out += ["", f"### {_md(section.heading)}", ""]
        out += "\n\n".join(_md_line(line) for line in section.lines).splitlines()
    return "\n".join(out) + "\n"


def _md_line(line: Line) -> str:
    return f"**{_md(line.label)}** {_md(line.text)}" if line.label else _md(line.text)


_CSS = """\
@page { size: A4; margin: 15mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  margin: 0 auto; max-width: 180mm; color: #000; background: #fff; line-height: 1.35;
  font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif;
}
.sign {
  border: 2.5mm solid #000; padding: 8mm 10mm 5mm; font-size: 17pt;
  break-inside: avoid; page-break-inside: avoid;
}
.sign h1 {
  display: flex; align-items: center; gap: 6mm; margin: 0 0 5mm; font-size: 28pt;
  line-height: 1.1;
}
.sign svg { width: 20mm; height: 15mm; flex: none; }
.sign p { margin: 0 0 3mm; overflow-wrap: anywhere; }
.cut { margin: 2mm 0 10mm; font-size: 8pt; text-align: center; color: #555; }
.full { font-size: 10.5pt; }
.full h2 { margin: 0 0 3mm; font-size: 15pt; }
.full h3 { margin: 5mm 0 1.5mm; font-size: 11.5pt; break-after: avoid; page-break-after: avoid; }
.full p { margin: 0 0 2mm; overflow-wrap: anywhere; }
.full p.label { margin: 0; }
"""

# A camera pictogram drawn inline: the page must print without fetching anything.
_CAMERA = (
    '<svg viewBox="0 0 64 48" role="img" aria-label="camera">'
    '<rect x="2" y="10" width="42" height="30" rx="4" fill="#000"/>'
    '<path d="M44 20 L62 11 V39 L44 30 Z" fill="#000"/>'
    '<circle cx="23" cy="25" r="9" fill="#fff"/><circle cx="23" cy="25" r="5" fill="#000"/>'
    "</svg>"
)


def render_html(notice: Notice) -> str:
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(notice.title)}</title>",
        f"<style>\n{_CSS}</style>",
        "</head>",
        "<body>",
        # "--" cannot occur in the note, so the comment cannot end early.
        f"<!-- {e(OPERATOR_NOTE)} -->",
        '<section class="sign">',
        f"<h1>{_CAMERA}<span>{e(notice.sign_heading)}</span></h1>",
    ]
    out += [_html_line(line) for line in notice.sign]
    out += [
        "</section>",
        '<p class="cut">Cut along the outside of the black frame and put the sign up where'
        " the camera sees people; keep the full notice below available.</p>",
        '<section class="full">',
        f"<h2>{e(notice.title)}</h2>",
    ]
    for section in notice.sections:
        out.append(f"<h3>{e(section.heading)}</h3>")
        out += [_html_line(line) for line in section.lines]
    out += ["</section>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


def _html_line(line: Line) -> str:
    if not line.label:
        return f"<p>{html.escape(line.text)}</p>"
    return (
        f'<p class="label"><strong>{html.escape(line.label)}</strong> {html.escape(line.text)}</p>'
    )


RENDERERS = {"text": render_text, "markdown": render_markdown, "html": render_html}
