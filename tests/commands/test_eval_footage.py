"""`edge-agent eval-footage` on the committed footage: generated (demo.mp4) and real (three
CC BY clips with a truth written by watching them, tests/../samples/footage-real)."""

from __future__ import annotations

import json

import pytest

from edge_agent.cli import main
from tests.support.paths import REPO

SAMPLES = REPO / "samples"
REAL = SAMPLES / "footage-real"
REAL_CLIPS = {  # clip -> people in it
    "face-demographics-walking.gif": 2,
    "face-demographics-walking-and-pause.gif": 3,
    "head-pose-face-detection-female-and-male.gif": 2,
}


def evaluate(tmp_path, video, truth, *options: str) -> dict:
    out = tmp_path / "footage.json"
    code = main(["eval-footage", str(video), str(truth), "--json", str(out), *options])
    assert code == 0
    return json.loads(out.read_text())


def test_demo_footage_is_counted_close_to_the_truth(tmp_path, capsys):
    result = evaluate(tmp_path, SAMPLES / "demo.mp4", SAMPLES / "demo_truth.json")
    truth = json.loads((SAMPLES / "demo_truth.json").read_text())
    countable = [p for p in truth["people"] if p["visible_face_s"]]
    assert result["truth"] == "generated"
    assert result["true_people"] == len(countable)
    assert abs(result["counted_people"] - len(countable)) <= 1
    assert result["matched_people"] >= len(countable) - 1
    assert result["median_dwell_error_s"] < 1.0
    assert result["viewer_recall_pct"] >= 80 and result["viewer_precision_pct"] >= 80
    assert "count_error_pct" in capsys.readouterr().out


# Every frame, every second one (a device at half the clip's frame rate), and paced at the
# clip's own rate as a camera would deliver it.
PACINGS = {
    "every frame": ("--every", "1"),
    "every 2nd": ("--every", "2"),
    "realtime": ("--realtime",),
}


@pytest.fixture(scope="module")
def real_results(tmp_path_factory) -> dict[tuple[str, str], dict]:
    """Each clip at each pacing, run once for the tests below."""
    results = {}
    for clip in sorted(REAL_CLIPS):
        for pacing, options in PACINGS.items():
            out = tmp_path_factory.mktemp("footage")
            results[clip, pacing] = evaluate(out, REAL / clip, REAL / "truth.json", *options)
    return results


@pytest.mark.parametrize("pacing", sorted(PACINGS))
@pytest.mark.parametrize("clip", sorted(REAL_CLIPS))
def test_real_clips_one_track_per_person_and_no_wrong_gender(real_results, clip, pacing):
    result = real_results[clip, pacing]
    assert result["truth"] == "watched"
    assert result["true_people"] == result["counted_people"] == REAL_CLIPS[clip]
    assert result["count_error"] == 0
    assert result["tracks_per_person"] == 1.0
    assert result["extra_tracks"] == 0 and result["identity_switches"] == 0
    # Right or unknown, never wrong.
    assert result["gender_wrong_people"] == []
    assert result["gender_accuracy"] in (None, 1.0)


@pytest.mark.parametrize("pacing", ["every frame", "realtime"])
def test_real_clips_leave_at_most_one_person_unknown(real_results, pacing):
    unknown = {
        clip: real_results[clip, pacing]["gender_unknown_people"] for clip in sorted(REAL_CLIPS)
    }
    assert sum(len(people) for people in unknown.values()) <= 1, unknown


def test_a_truth_written_by_watching_needs_no_boxes(tmp_path):
    clip = "face-demographics-walking-and-pause.gif"
    watched = json.loads((REAL / "truth.json").read_text())[clip]
    for person in watched["people"]:
        del person["boxes"]
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps(watched))
    result = evaluate(tmp_path, REAL / clip, truth)
    assert result["true_people"] == result["counted_people"] == 3
    assert result["tracks_per_person"] == 1.0
    # Without boxes three people who come and go together cannot be told apart: the
    # figure is a best case, and the worst case is reported beside it.
    assert result["identity_switches"] is None
    assert result["gender_accuracy_worst_case"] <= result["gender_accuracy"]
    for key in ("true_people", "counted_people", "count_error", "tracks_per_person",
                "gender_accuracy", "unknown_share"):  # fmt: skip
        assert key in result


def test_unusable_truth_or_video_is_a_clear_error(tmp_path, capsys):
    video = REAL / "face-demographics-walking.gif"
    assert main(["eval-footage", str(SAMPLES / "demo.mp4"), str(REAL / "truth.json")]) == 2
    assert "no truth for demo.mp4" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["eval-footage", str(video), str(broken)]) == 2
    assert "broken.json" in capsys.readouterr().err
    missing = tmp_path / "missing.mp4"
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"fps": 10, "people": []}))
    assert main(["eval-footage", str(missing), str(truth)]) == 2
    assert "missing.mp4" in capsys.readouterr().err
