"""`edge-agent eval-detect`: the matching on hand-made boxes, and the real command with the real
default detector on canvases built from public-domain portraits."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.cli import main
from edge_agent.commands.evaluation.detection import (
    BUCKET_NAMES,
    ImageMatch,
    Tally,
    match,
    recall_by_width,
    summarize,
    width_bucket,
)
from edge_agent.vision.detectors import make_detector
from edge_agent.vision.values import Box, VisionSettings, detector_settings
from tests.support.images import place

DETECTOR = "full_range_int8"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# -- matching on hand-made boxes ---------------------------------------------------------------


def test_iou_of_exactly_half_matches_and_just_below_does_not():
    face = Box(0, 0, 10, 10)
    assert match([face], [(Box(0, 0, 10, 5), 0.9)]).found == (True,)  # IoU 50 / 100
    below = match([face], [(Box(0, 0, 10, 4.99), 0.9)])
    assert below.found == (False,)
    assert below.unmatched == 1


def test_touching_boxes_do_not_match_and_identical_ones_do():
    face = Box(10, 10, 20, 20)
    assert match([face], [(Box(20, 10, 30, 20), 0.9)]) == ImageMatch((False,), 1)
    assert match([face], [(Box(10, 10, 20, 20), 0.9)]) == ImageMatch((True,), 0)


def test_greedy_by_score_the_surer_detection_takes_the_face_first():
    face = Box(0, 0, 10, 10)
    # The weak detection fits the face better, but the strong one (IoU 0.7) comes first.
    result = match([face], [(Box(0, 0, 10, 10), 0.6), (Box(0, 0, 10, 7), 0.95)])
    assert result == ImageMatch((True,), 1)


def test_greedy_takes_the_highest_iou_face_even_when_that_strands_another():
    left, right = Box(0, 0, 10, 10), Box(4, 0, 14, 10)
    between = Box(3, 0, 13, 10)  # IoU 0.54 with left, 0.82 with right
    on_right = Box(4, 0, 14, 10)  # IoU 0.43 with left, 1.0 with right
    # `between` is surer: it takes right, and on_right has nothing left above 0.5.
    assert match([left, right], [(on_right, 0.6), (between, 0.9)]) == ImageMatch((False, True), 1)
    # The same boxes with the scores swapped: on_right takes right, between takes left.
    assert match([left, right], [(on_right, 0.9), (between, 0.6)]) == ImageMatch((True, True), 0)


def test_one_detection_cannot_match_two_faces():
    faces = [Box(0, 0, 10, 10), Box(0.5, 0, 10.5, 10)]  # two labels of about the same face
    result = match(faces, [(Box(0, 0, 10, 10), 0.9)])
    assert result.found == (True, False)
    assert result.unmatched == 0


def test_a_second_detection_of_a_found_face_is_unmatched():
    face = Box(0, 0, 10, 10)
    result = match([face], [(Box(0, 0, 10, 10), 0.9), (Box(0, 0, 10, 9), 0.8)])
    assert result.found == (True,)
    assert result.unmatched == 1


def test_no_faces_every_detection_unmatched_and_no_detections_nothing_found():
    assert match([], [(Box(0, 0, 5, 5), 0.9), (Box(9, 9, 19, 19), 0.7)]).unmatched == 2
    assert match([Box(0, 0, 5, 5)], []).found == (False,)


@pytest.mark.parametrize(
    ("width", "bucket"),
    [(0.5, "<20"), (19.9, "<20"), (20, "20-40"), (39.9, "20-40"), (40, "40-80"),
     (79.9, "40-80"), (80, ">=80"), (400, ">=80")],
)  # fmt: skip
def test_width_bucket_boundaries(width, bucket):
    assert width_bucket(width) == bucket


def test_recall_by_width_counts_each_bucket_and_empty_is_null():
    widths = [19.9, 20, 39.9, 40, 80]
    found = [True, False, True, True, False]
    by_width = recall_by_width(widths, found)
    assert list(by_width) == list(BUCKET_NAMES) == ["<20", "20-40", "40-80", ">=80"]
    assert by_width["<20"] == {"faces": 1, "found": 1, "recall": 100.0}
    assert by_width["20-40"] == {"faces": 2, "found": 1, "recall": 50.0}
    assert by_width["40-80"] == {"faces": 1, "found": 1, "recall": 100.0}
    assert by_width[">=80"] == {"faces": 1, "found": 0, "recall": 0.0}
    assert recall_by_width([50], [True])["<20"] == {"faces": 0, "found": 0, "recall": None}


def test_summary_rounds_recall_to_two_decimals():
    tally = Tally()
    faces = [Box(0, 0, 30, 30), Box(50, 0, 80, 30), Box(100, 0, 130, 30)]
    tally.add(faces, 2, ImageMatch((True, False, False), 1), 2.0)
    tally.add([], 0, ImageMatch((), 0), 4.0)
    result = summarize(tally)
    assert result["images"] == 2
    assert result["recall"] == 33.33
    assert result["recall_by_width_px"]["20-40"] == {"faces": 3, "found": 1, "recall": 33.33}
    assert result["recall_by_width_px"][">=80"]["recall"] is None
    assert result["detections"] == 2
    assert result["unmatched_detections"] == 1
    assert result["unmatched_per_image"] == 0.5
    assert result["ms_per_image"] == 3.0


# -- the real command on real photos ------------------------------------------------------------


def write_rgb(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # PNG: lossless, so the command sees exactly the pixels the labels were made on.
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def labelled_set(tmp_path_factory, models_dir, astronaut, grace_hopper, non_faces) -> Path:
    """Portraits pasted at known scales onto grey canvases, each labelled with the box the
    default detector itself finds there (so no model output is written into the test), plus a
    labelled box where there is no face and a face-free scene with no boxes."""
    folder = tmp_path_factory.mktemp("eval-detect")
    settings = VisionSettings(models_dir=models_dir, detector=detector_settings(DETECTOR))
    detector = make_detector(settings)
    portraits = {
        # name: (canvas, the face-width bucket the scale puts the face in)
        "images/astronaut_small.png": (place(astronaut, (240, 180), (10, 5), 0.3), "20-40"),
        "astronaut_mid.png": (place(astronaut, (640, 480), (10, 5), 0.6), "40-80"),
        "images/hopper_big.png": (place(grace_hopper, (640, 480), (10, 5), 0.5), ">=80"),
    }
    boxes: dict[str, list] = {}
    for name, (canvas, bucket) in portraits.items():
        write_rgb(folder / name, canvas)
        best = max(detector.detect(canvas), key=lambda d: d.score)
        assert width_bucket(best.box.width) == bucket, (name, best.box)  # the set's premise
        boxes[Path(name).name] = [[*(round(v, 2) for v in best.box), "face"]]
    # A labelled face the detector cannot find: grey, nothing there. 100 px wide: ">=80".
    write_rgb(folder / "nobody.png", np.full((300, 400, 3), 114, dtype=np.uint8))
    boxes["nobody.png"] = [[150, 100, 250, 220, "face"]]
    write_rgb(folder / "images" / "coffee.png", non_faces["coffee"])
    boxes["coffee.png"] = []
    (folder / "boxes.json").write_text(json.dumps(boxes))
    return folder


def detections_on(folder: Path, models_dir: Path) -> int:
    settings = VisionSettings(models_dir=models_dir, detector=detector_settings(DETECTOR))
    detector = make_detector(settings)
    names = json.loads((folder / "boxes.json").read_text())
    total = 0
    for name in names:
        path = folder / name if (folder / name).is_file() else folder / "images" / name
        total += len(detector.detect(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)))
    return total


def test_eval_detect_reports_recall_by_face_width(labelled_set, models_dir, tmp_path, capsys):
    out = tmp_path / "out" / "detect.json"
    plots = tmp_path / "plots"
    code = main(["eval-detect", str(labelled_set / "boxes.json"), "--detector", DETECTOR,
                 "--json", str(out), "--plots", str(plots)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == {
        "images", "faces", "recall", "recall_by_width_px", "detections",
        "unmatched_detections", "unmatched_per_image", "ms_per_image", "detector", "input_pixels",
    }  # fmt: skip
    assert result["images"] == 5
    assert result["faces"] == 4
    assert result["recall"] == 75.0  # the three portraits, not the empty grey box
    assert result["recall_by_width_px"] == {
        "<20": {"faces": 0, "found": 0, "recall": None},
        "20-40": {"faces": 1, "found": 1, "recall": 100.0},
        "40-80": {"faces": 1, "found": 1, "recall": 100.0},
        ">=80": {"faces": 2, "found": 1, "recall": 50.0},
    }
    # Whatever the detector finds beyond the three labelled faces (on the coffee or anywhere)
    # is unmatched: the coffee scene adds no found face.
    detections = detections_on(labelled_set, models_dir)
    assert result["detections"] == detections
    assert result["unmatched_detections"] == detections - 3
    assert result["unmatched_per_image"] == round((detections - 3) / 5, 3)
    assert result["ms_per_image"] > 0
    assert result["detector"] == DETECTOR
    assert result["input_pixels"] is None

    printed = capsys.readouterr().out
    for text in ("recall (IoU >= 0.5)", "75.0 %", "20-40", ">=80", "unmatched per image",
                 "ms per image", DETECTOR, "upper bound on false detections"):  # fmt: skip
        assert text in printed, text
    assert sorted(p.name for p in plots.iterdir()) == ["recall_by_width.png"]
    assert (plots / "recall_by_width.png").read_bytes()[:8] == PNG_SIGNATURE


def test_eval_detect_limit_and_a_high_min_score(labelled_set, tmp_path):
    out = tmp_path / "detect.json"
    code = main(["eval-detect", str(labelled_set / "boxes.json"), "--detector", DETECTOR,
                 "--limit", "2", "--min-score", "0.999", "--json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["images"] == 2
    assert result["faces"] == 2
    # No real face scores 0.999: the threshold reached the detector.
    assert result["detections"] == 0
    assert result["recall"] == 0.0


def test_eval_detect_with_tiles(labelled_set, tmp_path):
    out = tmp_path / "tiled.json"
    code = main(["eval-detect", str(labelled_set / "boxes.json"), "--detector", DETECTOR,
                 "--tiles", "2x1", "--json", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    assert result["detector"] == f"{DETECTOR} tiled 2x1"
    # The whole image is detected too: every face found untiled is still found.
    assert result["recall"] >= 75.0


# -- bad input: one clear line, exit 2, no traceback --------------------------------------------


def error_of(argv: list[str], capsys) -> str:
    assert main(["eval-detect", *argv, "--detector", DETECTOR]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # The last line: the progress bar may have started when an image turns out unreadable.
    last = err.strip().splitlines()[-1]
    assert last.startswith("edge-agent: error: ")
    return last


def test_missing_boxes_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert str(missing) in error_of([str(missing)], capsys)


def test_boxes_file_that_is_not_json_or_not_a_mapping(tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text("{not json")
    assert "not valid JSON" in error_of([str(boxes)], capsys)
    boxes.write_text("[1, 2]")
    assert "expected a JSON object" in error_of([str(boxes)], capsys)


@pytest.mark.parametrize(
    "bad",
    [{"b.jpg": "oops"}, {"b.jpg": [[1, 2, 3, 4]]}, {"b.jpg": [[1, 2, "3", 4, "face"]]},
     {"b.jpg": [[10, 2, 5, 4, "face"]]}, {"b.jpg": [[1, 2, 3, 4, None]]}],
)  # fmt: skip
def test_malformed_boxes_name_the_key(tmp_path, capsys, bad):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"a.jpg": [[1, 2, 30, 40, "face"]], **bad}))
    assert "'b.jpg'" in error_of([str(boxes)], capsys)


def test_missing_and_unreadable_images_are_named(tmp_path, capsys):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"gone.jpg": []}))
    err = error_of([str(boxes)], capsys)
    assert "gone.jpg" in err and "missing" in err
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "broken.jpg").write_text("not an image")
    boxes.write_text(json.dumps({"broken.jpg": []}))
    err = error_of([str(boxes)], capsys)
    assert "broken.jpg" in err and "not a readable image" in err


@pytest.mark.parametrize("tiles", ["2", "0x2", "axb"])
def test_bad_tiles_are_refused(labelled_set, capsys, tiles):
    line = error_of([str(labelled_set / "boxes.json"), "--tiles", tiles], capsys)
    assert "--tiles" in line
