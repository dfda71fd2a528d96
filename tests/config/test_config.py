"""Configuration: defaults that run, the committed config.yaml, errors naming file, line, key."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge_agent.ads.values import AdsSettings
from edge_agent.audience.values import FusionSettings, TrackerSettings
from edge_agent.config import (
    Config,
    ConfigError,
    ConfigProblem,
    load_config,
    read_secret,
    render_default_yaml,
)
from edge_agent.installed import default_models_dir
from edge_agent.segments import DEFAULT_BRACKETS, Brackets
from edge_agent.sources.factory import open_options, reader_options
from edge_agent.sources.values import SourceSettings
from edge_agent.telemetry.values import LinkSettings, TelemetrySettings
from edge_agent.validated_yaml import MAX_SECRET_BYTES, MAX_YAML_BYTES
from edge_agent.vision.values import (
    AnalyzerSettings,
    BlazeFaceVariant,
    Delegate,
    Precision,
    VisionSettings,
    YuNetModel,
)
from tests.support.paths import REPO

NO_ENV: dict[str, str] = {}


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path | None, environ: dict[str, str] | None = None) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=NO_ENV if environ is None else environ)
    return list(caught.value.problems)


def only(path: Path, environ: dict[str, str] | None = None) -> ConfigProblem:
    found = problems(path, environ)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------------------------------------
# Defaults


def test_defaults_convert_to_the_runtime_settings():
    config = load_config(None, environ=NO_ENV)
    assert config == Config()
    vision = config.vision_settings()
    assert vision == VisionSettings(models_dir=default_models_dir())
    assert vision.analyzer == AnalyzerSettings()
    assert vision.analyzer.brackets == DEFAULT_BRACKETS
    assert config.tracker_settings() == TrackerSettings()
    assert config.source.spec == "samples/demo.mp4"
    # The demo plays in real time, so it is read like a camera: latest frame wins.
    assert reader_options(config.source_settings()) == {
        "stall_timeout": 5.0,
        "backoff_max": 5.0,
        "lossless": False,
    }
    fast = load_config(None, environ={"EDGE_AGENT__SOURCE__REALTIME": "false"})
    assert reader_options(fast.source_settings())["lossless"] is True
    assert config.debug.save_annotated_frames_dir is None


def test_defaults_match_the_dataclasses_they_feed():
    # The same numbers live in the runtime dataclasses; the config must not quietly differ.
    config = Config()
    quality = config.vision.quality
    analyzer = AnalyzerSettings()
    for name in (
        "min_face_px",
        "max_yaw_deg",
        "max_pitch_deg",
        "min_sharpness",
        "gender_margin",
        "max_age_spread_years",
    ):
        assert getattr(quality, name) == getattr(analyzer, name), name
    assert TrackerSettings(**config.tracking.model_dump()) == TrackerSettings()
    assert config.source_settings() == SourceSettings()
    assert config.fusion_settings() == FusionSettings()
    ads = config.ads_settings()
    assert ads == AdsSettings(rules=ads.rules, last_good=ads.last_good)
    assert ads.last_good == config.state.dir / "rules.last-good.yaml"
    telemetry = config.telemetry_settings()
    assert telemetry.link == LinkSettings(client_id=telemetry.link.client_id)
    assert telemetry == TelemetrySettings(
        link=telemetry.link, state_dir=config.state.dir, device=telemetry.device
    )


def test_choices_match_the_vision_literals():
    # One home for these names: the config's choices are the vision stage's own Literals.
    definitions = Config.json_schema()["$defs"]
    vision = definitions["VisionConfig"]["properties"]
    blazeface = definitions["BlazeFaceDetectorConfig"]["properties"]
    yunet = definitions["YuNetDetectorConfig"]["properties"]
    assert tuple(blazeface["variant"]["enum"]) == typing.get_args(BlazeFaceVariant)
    assert tuple(yunet["model"]["enum"]) == typing.get_args(YuNetModel)
    assert tuple(yunet["precision"]["enum"]) == typing.get_args(Precision)
    assert tuple(vision["precision"]["enum"]) == typing.get_args(Precision)
    assert tuple(vision["delegate"]["enum"]) == typing.get_args(Delegate)


def test_settings_are_frozen():
    config = Config()
    with pytest.raises(ValidationError):
        config.vision.threads = 4  # type: ignore[misc]


def test_converted_settings_carry_the_configured_values(tmp_path):
    path = write(
        tmp_path,
        """
vision:
  models_dir: /opt/models
  detector: short_range
  min_detection_score: 0.6
  precision: float32
  threads: 3
  delegate: edgetpu
  quality: {min_face_px: 30, max_yaw_deg: 25, gender_margin: 0.2}
  age_brackets: [18, 30, 50]
tracking:
  confirm_hits: 5
  lost_after_s: 3
""",
    )
    config = load_config(path, environ=NO_ENV)
    vision = config.vision_settings()
    assert vision.models_dir == Path("/opt/models")
    assert (vision.detector.name, vision.precision, vision.delegate) == (
        "short_range",
        "float32",
        "edgetpu",
    )
    assert (vision.detector.min_score, vision.num_threads) == (0.6, 3)
    assert vision.analyzer.min_face_px == 30
    assert vision.analyzer.max_yaw_deg == 25
    assert vision.analyzer.gender_margin == 0.2
    assert vision.analyzer.max_pitch_deg == AnalyzerSettings().max_pitch_deg
    assert vision.analyzer.brackets == Brackets((18, 30, 50))
    tracker = config.tracker_settings()
    assert (tracker.confirm_hits, tracker.lost_after_s) == (5, 3.0)
    assert tracker.min_iou == TrackerSettings().min_iou


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("picamera", {"width": 640, "height": 480}),
        ("picamera:1", {"width": 640, "height": 480}),
        (0, {"width": 640, "height": 480}),
        ("/dev/video2", {"width": 640, "height": 480}),
        ("rtsp://cam.local/stream", {"width": 640, "height": 480}),
        ("footage.mp4", {"loop": True, "realtime": True}),
        ("frames/*.jpg", {"loop": True}),
    ],
)
def test_open_options_fit_the_kind_of_source(spec, expected):
    config = Config.model_validate({"source": {"spec": spec, "width": 640, "height": 480}})
    assert open_options(config.source_settings()) == expected


def test_open_options_are_accepted_by_open_source(tmp_path):
    from edge_agent.sources.factory import open_source
    from edge_agent.sources.images import ImageFolderSource
    from edge_agent.sources.opencv import OpenCVSource

    def opened(config: Config) -> object:
        settings = config.source_settings()
        return open_source(settings.spec, **open_options(settings))

    (tmp_path / "frames").mkdir()
    folder = Config.model_validate({"source": {"spec": str(tmp_path / "frames"), "fps": 5}})
    assert isinstance(opened(folder), ImageFolderSource)
    device = Config.model_validate({"source": {"spec": "/dev/video9", "fps": 5}})
    assert isinstance(opened(device), OpenCVSource)
    video = Config()
    assert isinstance(opened(video), OpenCVSource)


# ---------------------------------------------------------------------------------------------
# The committed file


def test_committed_config_yaml_is_the_generated_one():
    committed = (REPO / "config.yaml").read_text(encoding="utf-8")
    assert committed == render_default_yaml(), (
        "config.yaml is out of date: regenerate it with python -m edge_agent.config > config.yaml"
    )


def test_committed_config_yaml_loads_as_the_defaults():
    assert load_config(REPO / "config.yaml", environ=NO_ENV) == Config()


def test_every_key_is_documented_in_the_committed_file():
    text = (REPO / "config.yaml").read_text(encoding="utf-8")

    def check(model, indent):
        for name, field in model.model_fields.items():
            assert field.title, name
            assert field.description, name
            assert f"\n{indent}{name}:" in text, name
            if isinstance(field.annotation, type) and issubclass(field.annotation, Config.__base__):
                check(field.annotation, indent + "  ")

    check(Config, "")


def test_json_schema_documents_every_field():
    schema = Config.json_schema()
    assert schema["title"] == "Config"
    quality = schema["$defs"]["QualityConfig"]["properties"]["max_yaw_deg"]
    assert quality["description"].startswith("Faces turned sideways")
    assert quality["exclusiveMinimum"] == 0
    assert quality["maximum"] == 90
    assert schema["$defs"]["SourceConfig"]["additionalProperties"] is False


def test_empty_file_and_empty_sections_are_the_defaults(tmp_path):
    assert load_config(write(tmp_path, ""), environ=NO_ENV) == Config()
    assert load_config(write(tmp_path, "# nothing here\n"), environ=NO_ENV) == Config()
    assert load_config(write(tmp_path, "vision:\nsource:\n"), environ=NO_ENV) == Config()


# ---------------------------------------------------------------------------------------------
# Errors: file, line, key path, reason


def test_unknown_key_suggests_the_closest(tmp_path):
    path = write(tmp_path, "vision:\n  treads: 2\n")
    problem = only(path)
    assert (problem.file, problem.line, problem.key_path) == (str(path), 2, "vision.treads")
    assert "did you mean 'threads'?" in problem.message
    assert str(problem) == f"{path}:2: vision.treads: unknown key 'treads'; did you mean 'threads'?"


def test_unknown_section_lists_the_valid_ones(tmp_path):
    problem = only(write(tmp_path, "source: {}\nbroker:\n  host: broker\n"))
    assert (problem.line, problem.key_path) == (2, "broker")
    assert (
        "valid keys here: source, vision, tracking, audience, ads, state, mqtt, logging, privacy,"
        " debug" in problem.message
    )


def test_wrong_type(tmp_path):
    problem = only(write(tmp_path, "vision:\n  detector: short_range\n  threads: two\n"))
    assert (problem.line, problem.key_path) == (3, "vision.threads")
    assert "valid integer" in problem.message
    assert "(got 'two')" in problem.message


def test_out_of_range(tmp_path):
    problem = only(write(tmp_path, "audience:\n  window_s: 0\n"))
    assert (problem.line, problem.key_path) == (2, "audience.window_s")
    assert "greater than 0" in problem.message


def test_bad_detector_name_suggests_the_closest(tmp_path):
    problem = only(write(tmp_path, "vision:\n  detector: full_range_int\n"))
    assert (problem.line, problem.key_path) == (2, "vision.detector")
    assert "'short_range', 'full_range', 'full_range_sparse', 'full_range_int8', 'yunet_n'" in (
        problem.message
    )
    assert problem.message.endswith("did you mean 'full_range_int8'?")


def test_nested_key_in_quality(tmp_path):
    path = write(
        tmp_path,
        "vision:\n  threads: 2\n  quality:\n    min_face_px: 20\n    max_yaw_deg: 120\n",
    )
    problem = only(path)
    assert (problem.line, problem.key_path) == (5, "vision.quality.max_yaw_deg")
    assert str(problem) == (
        f"{path}:5: vision.quality.max_yaw_deg: Input should be less than or equal to 90 (got 120)"
    )


def test_unknown_nested_key_in_quality(tmp_path):
    problem = only(write(tmp_path, "vision:\n  quality:\n    min_face: 20\n"))
    assert (problem.line, problem.key_path) == (3, "vision.quality.min_face")
    assert "did you mean 'min_face_px'?" in problem.message


def test_bad_list_item_names_its_index_and_line(tmp_path):
    problem = only(write(tmp_path, "vision:\n  age_brackets:\n    - 13\n    - teen\n"))
    assert (problem.line, problem.key_path) == (4, "vision.age_brackets[1]")


def test_age_brackets_must_increase(tmp_path):
    problem = only(write(tmp_path, "vision:\n  age_brackets: [13, 20, 20]\n"))
    assert (problem.line, problem.key_path) == (2, "vision.age_brackets")
    assert "ages must increase" in problem.message


def test_source_spec_must_be_text_or_an_index(tmp_path):
    problem = only(write(tmp_path, "source:\n  spec: 1.5\n"))
    assert (problem.line, problem.key_path) == (2, "source.spec")
    assert "device index" in problem.message
    assert load_config(write(tmp_path, "source:\n  spec: 0\n"), environ=NO_ENV).source.spec == 0


def test_a_huge_bad_value_is_quoted_short(tmp_path):
    topic = "a#" * 40_000
    problem = only(write(tmp_path, f"mqtt:\n  base_topic: '{topic}'\n"))
    assert (problem.line, problem.key_path) == (2, "mqtt.base_topic")
    assert "wildcards" in problem.message
    assert len(problem.message) < 300 and "80,002 characters" in problem.message


def test_yaml_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "vision:\n  threads: 2\n   detector: short_range\n")
    problem = only(path)
    assert (problem.line, problem.column) == (3, 12)
    assert str(problem) == (
        f"{path}:3:12: vision.threads: YAML syntax error: mapping values are not allowed here"
    )


def test_duplicate_key_is_an_error(tmp_path):
    problem = only(write(tmp_path, "vision:\n  threads: 2\n  threads: 3\n"))
    assert (problem.line, problem.key_path) == (3, "vision.threads")
    assert "first on line 2" in problem.message


def test_top_level_must_be_a_mapping(tmp_path):
    problem = only(write(tmp_path, "- source\n- vision\n"))
    assert problem.line == 1
    assert "top level must be a mapping" in problem.message


def test_section_must_be_a_mapping(tmp_path):
    problem = only(write(tmp_path, "tracking: [1, 2]\n"))
    assert (problem.line, problem.key_path) == (1, "tracking")
    assert "must be a mapping" in problem.message


def test_missing_file(tmp_path):
    problem = only(tmp_path / "absent.yaml")
    assert problem.file == str(tmp_path / "absent.yaml")
    assert "cannot read" in problem.message


def test_every_error_is_reported_in_file_order(tmp_path):
    path = write(
        tmp_path,
        """\
source:
  widht: 640
vision:
  detector: full_range_int
  threads: 0
  quality:
    max_yaw_deg: 120
logging:
  level: verbose
""",
    )
    found = problems(path)
    assert [(p.line, p.key_path) for p in found] == [
        (2, "source.widht"),
        (4, "vision.detector"),
        (5, "vision.threads"),
        (7, "vision.quality.max_yaw_deg"),
        (9, "logging.level"),
    ]
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=NO_ENV)
    assert str(caught.value).splitlines() == [str(p) for p in found]
    assert all(line.startswith(f"{path}:") for line in str(caught.value).splitlines())


def test_log_level_is_case_insensitive(tmp_path):
    config = load_config(write(tmp_path, "logging: {level: debug}\n"), environ=NO_ENV)
    assert config.logging.level == "DEBUG"


# ---------------------------------------------------------------------------------------------
# Environment overrides


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, "vision:\n  threads: 2\n  quality:\n    max_yaw_deg: 30\n")
    config = load_config(
        path,
        environ={
            "EDGE_AGENT__VISION__THREADS": "4",
            "EDGE_AGENT__VISION__QUALITY__MAX_YAW_DEG": "35.5",
            "EDGE_AGENT__VISION__AGE_BRACKETS": "[18, 65]",
            "EDGE_AGENT__SOURCE__SPEC": "0",  # text stays text: "0" is device 0 to open_source
            "EDGE_AGENT__LOGGING__LEVEL": "debug",
            "EDGE_AGENT__DEBUG__SAVE_ANNOTATED_FRAMES_DIR": "",
            "EDGE_AGENT_MODELS": "/elsewhere",  # one underscore: not an override
            "PATH": "/usr/bin",
        },
    )
    assert config.vision.threads == 4
    assert config.vision.quality.max_yaw_deg == 35.5
    assert config.vision.age_brackets == (18, 65)
    assert config.source.spec == "0"
    assert config.logging.level == "DEBUG"
    assert config.debug.save_annotated_frames_dir is None


def test_environment_overrides_without_a_file():
    config = load_config(None, environ={"EDGE_AGENT__TRACKING__CONFIRM_HITS": "2"})
    assert config.tracking.confirm_hits == 2
    assert config.vision == Config().vision


def test_bad_environment_override_names_the_variable(tmp_path):
    path = write(tmp_path, "vision:\n  threads: 2\n")
    problem = only(path, environ={"EDGE_AGENT__VISION__THREADS": "many"})
    assert problem.env_var == "EDGE_AGENT__VISION__THREADS"
    assert problem.key_path == "vision.threads"
    assert (problem.file, problem.line) == (None, None)
    assert str(problem).startswith(
        "environment variable EDGE_AGENT__VISION__THREADS: vision.threads: Input should be a"
        " valid integer"
    )


def test_unknown_environment_key_names_the_variable():
    problem = only(None, environ={"EDGE_AGENT__VISION__TREADS": "2"})
    assert problem.env_var == "EDGE_AGENT__VISION__TREADS"
    assert "did you mean 'threads'?" in problem.message


def test_malformed_environment_name():
    problem = only(None, environ={"EDGE_AGENT__VISION____THREADS": "2"})
    assert problem.env_var == "EDGE_AGENT__VISION____THREADS"
    assert "double underscore" in problem.message


def test_file_and_environment_problems_are_reported_together(tmp_path):
    path = write(tmp_path, "audience:\n  min_segment_size: 0\n")
    found = problems(path, environ={"EDGE_AGENT__AUDIENCE__WINDOW_S": "-1"})
    assert [(p.line, p.env_var, p.key_path) for p in found] == [
        (2, None, "audience.min_segment_size"),
        (None, "EDGE_AGENT__AUDIENCE__WINDOW_S", "audience.window_s"),
    ]


def test_os_environ_is_read_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT__AUDIENCE__FUSION_SAMPLES", "7")
    assert load_config(None).audience.fusion_samples == 7


def test_environment_key_below_a_value_is_an_error(tmp_path):
    path = write(tmp_path, "vision:\n  age_brackets: [13, 20]\n")
    problem = only(path, environ={"EDGE_AGENT__VISION__AGE_BRACKETS__FIRST": "1"})
    assert problem.env_var == "EDGE_AGENT__VISION__AGE_BRACKETS__FIRST"
    assert problem.message.endswith("vision.age_brackets is not a section")


def test_audience_sections_convert_to_their_stages():
    from edge_agent.audience.values import AudienceSettings

    config = load_config(None, environ={})
    assert config.audience_settings() == AudienceSettings()
    fusion = config.fusion_settings()
    assert fusion.samples_needed == config.audience.fusion_samples
    assert fusion.brackets.edges == config.vision.age_brackets


# ---------------------------------------------------------------------------------------------
# The mqtt section


def test_mqtt_site_and_device_must_be_one_topic_level(tmp_path):
    problem = only(write(tmp_path, "mqtt:\n  site: berlin/mitte\n"))
    assert (problem.line, problem.key_path) == (2, "mqtt.site")
    assert "one MQTT topic level" in problem.message
    assert load_config(write(tmp_path, "mqtt:\n  device: door-left.2\n"), NO_ENV).mqtt.device == (
        "door-left.2"
    )


def test_mqtt_client_certificate_needs_its_key(tmp_path):
    problem = only(write(tmp_path, "mqtt:\n  tls:\n    enabled: true\n    cert_file: c.pem\n"))
    assert problem.key_path == "mqtt"
    assert "cert_file and tls.key_file go together" in problem.message


def test_privacy_texts_must_not_be_blank(tmp_path):
    problem = only(write(tmp_path, "privacy:\n  controller: Shop\n  contact: '  '\n"))
    assert problem.key_path == "privacy.contact"
    assert "must not be empty" in problem.message
    # An empty override means null, as for other optional text keys.
    config = load_config(None, environ={"EDGE_AGENT__PRIVACY__CONTACT": ""})
    assert config.privacy.contact is None


def test_mqtt_password_comes_from_the_environment_verbatim(tmp_path):
    config = load_config(
        write(tmp_path, "mqtt:\n  username: display\n"),
        {"EDGE_AGENT__MQTT__PASSWORD": "123: not yaml #"},
    )
    assert config.mqtt.password == "123: not yaml #"  # text keys are never parsed as YAML


def test_an_unreadable_password_file_stops_run_with_its_name(tmp_path, capsys):
    from edge_agent.cli import main

    missing = tmp_path / "no-such-password"
    path = write(
        tmp_path,
        f"mqtt:\n  username: display\n  password_file: {missing}\n"
        f"state:\n  dir: {tmp_path / 'state'}\n",
    )
    assert main(["run", "--config", str(path), "--max-frames", "1"]) == 2
    assert f"mqtt.password_file: cannot read {missing}" in capsys.readouterr().err


def test_a_secret_comes_inline_or_from_its_file(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cret\n", encoding="utf-8")
    assert read_secret("inline", secret, "mqtt.password_file") == "inline"
    assert read_secret(None, secret, "mqtt.password_file") == "s3cret"
    assert read_secret(None, None, "mqtt.password_file") is None
    with pytest.raises(ValueError, match=r"^mqtt\.password_file: cannot read .*absent"):
        read_secret(None, tmp_path / "absent", "mqtt.password_file")


@pytest.mark.parametrize("special", ["dev-zero", "fifo", "directory", "too-long"])
def test_a_password_file_that_is_not_a_small_file_is_refused_at_once(tmp_path, special):
    """/dev/zero used to grow memory without bound, a FIFO to block start-up forever."""
    secret = tmp_path / "password"
    if special == "dev-zero":
        secret = Path("/dev/zero")
    elif special == "fifo":
        os.mkfifo(secret)
    elif special == "directory":
        secret.mkdir()
    else:
        secret.write_text("x" * (MAX_SECRET_BYTES + 1))
    with pytest.raises(ValueError, match=rf"^mqtt\.password_file: cannot read {secret}: "):
        read_secret(None, secret, "mqtt.password_file")


BOMB = "".join(
    f"x{n}: &l{n} [{', '.join(['lol'] * 9 if n == 0 else [f'*l{n - 1}'] * 9)}]\n" for n in range(9)
)


@pytest.mark.parametrize(
    "environ", [{}, {"EDGE_AGENT__MQTT__PASSWORD": "s3cret"}], ids=["plain", "env-override"]
)
def test_a_yaml_bomb_is_refused_with_or_without_an_environment_override(tmp_path, environ):
    """An override used to deep-copy the document, expanding the bomb (MemoryError)."""
    path = write(tmp_path, BOMB + "vision:\n  brackets: *l8\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ=environ)
    (problem,) = caught.value.problems
    assert problem.file == str(path) and problem.line is not None and problem.line <= 9
    assert "YAML bomb" in problem.message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("!!bool maybe", "'maybe' is not a valid !!bool value"),
        ("!!timestamp x", "'x' is not a valid !!timestamp value"),
        ("!!float x", "'x' is not a valid !!float value"),
        ("!!python/object:os.system {}", "could not determine a constructor"),
        ("{<<: 5}", "expected a mapping or list of mappings for merging"),
    ],
)
def test_config_check_names_the_line_of_a_bad_tag(tmp_path, capsys, value, message):
    from edge_agent.cli import main

    path = write(tmp_path, f"mqtt:\n  port: 1883\n  keepalive_s: {value}\n")
    assert main(["config", "check", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"edge-agent: error: {path}:3:"), error
    assert message in error and error.count("\n") == 1, error


def test_bad_utf8_in_the_config_names_its_line_and_column(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"mqtt:\n  port: 1883\n  username: J\xf6rg\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (3, 14) and "not UTF-8" in problem.message


@pytest.mark.parametrize("special", ["dev-zero", "fifo", "directory", "huge"])
def test_a_config_that_is_not_a_small_regular_file_is_refused_at_once(tmp_path, special):
    path = tmp_path / "config.yaml"
    if special == "dev-zero":
        path = Path("/dev/zero")
    elif special == "fifo":
        os.mkfifo(path)
    elif special == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    (problem,) = caught.value.problems
    assert str(problem).startswith(f"{path}: cannot read the config file: ")
