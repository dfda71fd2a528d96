"""Where model files live and proof that they are the files we measured (sha256)."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

from edge_agent.vision.values import BlazeFaceSettings, DetectorSettings

MANIFEST = "manifest.json"


class ModelFileError(RuntimeError):
    """A model file is missing or is not the file `models/manifest.json` describes."""


@cache
def _manifest(models_dir: Path) -> dict[str, dict[str, object]]:
    manifest = models_dir / MANIFEST
    if not manifest.is_file():
        raise ModelFileError(
            f"{manifest}: missing; regenerate models/ with scripts/convert_models.py"
        )
    return dict(json.loads(manifest.read_text())["files"])


def detector_model(detector: DetectorSettings) -> str:
    """The model file of a detector: face_detection_full_range_int8.tflite,
    face_detection_yunet_n_int8.tflite, ..."""
    if isinstance(detector, BlazeFaceSettings):
        return f"face_detection_{detector.variant}.tflite"
    return f"face_detection_{detector.model}_{detector.precision}.tflite"


def gender_model(precision: str) -> str:
    return f"gender_{precision}.tflite"


def age_model(precision: str) -> str:
    return f"age_{precision}.tflite"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expected_sha256(models_dir: Path, name: str) -> str:
    entry = _manifest(models_dir.resolve()).get(name)
    if entry is None:
        raise ModelFileError(f"{models_dir / MANIFEST}: has no entry for {name}")
    return str(entry["sha256"])


def model_path(models_dir: Path, name: str) -> Path:
    """The verified path of a model file; raises ModelFileError naming the expected sha256."""
    models_dir = Path(models_dir)
    path = models_dir / name
    expected = expected_sha256(models_dir, name)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file missing (expected sha256 {expected})")
    actual = sha256_of(path)
    if actual != expected:
        raise ModelFileError(
            f"{path}: sha256 is {actual}, expected {expected}; the file is corrupted or "
            "replaced: restore it from the repository or rerun scripts/convert_models.py"
        )
    return path
