from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from edge_agent.vision import runtime
from edge_agent.vision.models import ModelFileError, model_path
from edge_agent.vision.runtime import (
    DelegateUnavailableError,
    RuntimeUnavailableError,
    TfliteModel,
    edgetpu_model_path,
    load_backend,
)


def test_prefers_litert(models_dir):
    model = TfliteModel(models_dir / "gender_int8.tflite")
    assert model.backend_name == "ai_edge_litert"


def test_int8_model_takes_the_uint8_chip_and_returns_probabilities(models_dir):
    model = TfliteModel(models_dir / "gender_int8.tflite")
    assert model.input.dtype == np.uint8
    chip = np.full((1, 32, 32, 3), 128, dtype=np.uint8)
    (probabilities,) = model.run(chip)
    assert probabilities.dtype == np.float32
    assert probabilities.shape == (1, 2)
    assert probabilities.sum() == pytest.approx(1.0, abs=0.02)


def test_float_input_is_quantized_for_the_caller(models_dir):
    model = TfliteModel(models_dir / "gender_int8.tflite")
    rng = np.random.default_rng(3)
    chip = rng.integers(0, 256, size=(1, 32, 32, 3)).astype(np.uint8)
    (from_uint8,) = model.run(chip)
    (from_float,) = model.run(chip.astype(np.float32))
    np.testing.assert_allclose(from_uint8, from_float)


def test_wrong_input_shape_is_a_clear_error(models_dir):
    model = TfliteModel(models_dir / "gender_int8.tflite")
    with pytest.raises(
        ValueError, match=r"input shape \(1, 64, 64, 3\), expected \(1, 32, 32, 3\)"
    ):
        model.run(np.zeros((1, 64, 64, 3), np.uint8))


def test_falls_back_to_tflite_runtime_when_litert_is_absent(monkeypatch, models_dir):
    from ai_edge_litert import interpreter as litert

    # tflite_runtime cannot be installed beside numpy 2, so a module under its name exposes
    # the real LiteRT interpreter: the selection logic is what is under test.
    stand_in = types.ModuleType("tflite_runtime.interpreter")
    stand_in.Interpreter = litert.Interpreter
    stand_in.load_delegate = litert.load_delegate
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", stand_in)
    name, module = load_backend()
    assert name == "tflite_runtime" and module is stand_in
    model = TfliteModel(models_dir / "gender_int8.tflite")
    assert model.backend_name == "tflite_runtime"
    assert model.run(np.zeros((1, 32, 32, 3), np.uint8))[0].shape == (1, 2)


def test_no_runtime_at_all_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(RuntimeUnavailableError, match="Install `ai-edge-litert`"):
        load_backend()


def test_forced_backend_by_environment(monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_TFLITE_BACKEND", "nonsense")
    with pytest.raises(RuntimeUnavailableError, match="unknown TFLite backend 'nonsense'"):
        load_backend()
    monkeypatch.setenv("EDGE_AGENT_TFLITE_BACKEND", "ai_edge_litert")
    assert load_backend()[0] == "ai_edge_litert"


def test_edgetpu_model_naming(tmp_path):
    assert edgetpu_model_path(tmp_path / "age_int8.tflite").name == "age_int8_edgetpu.tflite"
    assert edgetpu_model_path(tmp_path / "x_edgetpu.tflite").name == "x_edgetpu.tflite"


def test_missing_edgetpu_delegate_is_a_clear_error(models_dir):
    # No Coral runtime on this machine: the real load_delegate fails and we explain.
    with pytest.raises(DelegateUnavailableError, match=r"libedgetpu\.so\.1.*libedgetpu1-std"):
        TfliteModel(models_dir / "gender_int8.tflite", delegate="edgetpu")


def test_missing_edgetpu_model_is_named(monkeypatch, models_dir, tmp_path):
    # With a delegate that loads, the compiled model file is the next thing that can lack.
    monkeypatch.setattr(runtime, "_load_edgetpu_delegate", lambda load: object())
    with pytest.raises(FileNotFoundError, match=r"gender_int8_edgetpu\.tflite.*edgetpu_compiler"):
        TfliteModel(tmp_path / "gender_int8.tflite", delegate="edgetpu")


def test_models_match_the_manifest(models_dir):
    import json

    manifest = json.loads((models_dir / "manifest.json").read_text())["files"]
    assert {"face_detection_full_range.tflite", "gender_int8.tflite", "age_int8.tflite"} <= set(
        manifest
    )
    for name in manifest:
        assert model_path(models_dir, name).is_file()


def test_corrupted_model_names_file_and_expected_hash(models_dir, tmp_path):
    import shutil

    for name in ("manifest.json", "gender_int8.tflite"):
        shutil.copy(models_dir / name, tmp_path / name)
    with (tmp_path / "gender_int8.tflite").open("r+b") as stream:
        stream.seek(100)
        stream.write(b"\x00\x01\x02")
    with pytest.raises(
        ModelFileError, match=r"gender_int8\.tflite: sha256 is [0-9a-f]{64}, expected"
    ):
        model_path(tmp_path, "gender_int8.tflite")
    (tmp_path / "gender_int8.tflite").unlink()
    with pytest.raises(
        ModelFileError, match=r"model file missing \(expected sha256 [0-9a-f]{64}\)"
    ):
        model_path(tmp_path, "gender_int8.tflite")
