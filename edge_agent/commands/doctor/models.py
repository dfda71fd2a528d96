"""The models check: every model file the config needs is there and has the sha256 of the
manifest, as `edge-agent run` will demand; Edge TPU twins when the delegate wants them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status

if TYPE_CHECKING:
    from edge_agent.config import Config


def needed_model_names(config: Config) -> list[str]:
    from edge_agent.vision.models import age_model, detector_model, gender_model

    vision = config.vision
    return [
        detector_model(vision.detector_settings()),
        gender_model(vision.precision),
        age_model(vision.precision),
    ]


def check_models(doctor: DoctorRun) -> CheckResult:
    from edge_agent.vision.models import ModelFileError, expected_sha256, model_path
    from edge_agent.vision.runtime import edgetpu_model_path

    assert doctor.config is not None
    vision = doctor.config.vision
    folder = doctor.config.vision_settings().models_dir
    names = needed_model_names(doctor.config)
    problems: list[str] = []
    unverified: list[str] = []
    missing_twins: list[str] = []

    def verify(name: str) -> None:
        try:
            model_path(folder, name)
        except ModelFileError as error:
            if str(error) not in problems:  # a missing manifest says so once, not per file
                problems.append(str(error))

    for name in names:
        verify(name)
    if vision.delegate == "edgetpu":
        for name in names:
            twin = edgetpu_model_path(Path(name)).name
            try:
                expected_sha256(folder, twin)
            except ModelFileError:
                # Compiled on the integrator's side: no checksum to hold it to, only presence.
                if (folder / twin).is_file():
                    unverified.append(twin)
                else:
                    missing_twins.append(name)
                    problems.append(f"{twin}: missing (the Edge TPU twin of {name})")
            else:
                verify(twin)
    if problems:
        fixes = []
        if len(missing_twins) < len(problems):
            fixes.append(
                "restore the files from the edge-agent release (its models/ folder) or rerun"
                " scripts/convert_models.py"
            )
        if missing_twins:
            fixes.append(
                f"compile {', '.join(missing_twins)} with edgetpu_compiler, or set"
                " vision.delegate: cpu"
            )
        fixes.append(f"vision.models_dir is {folder}")
        return CheckResult("models", Status.FAIL, "\n".join(problems), "; ".join(fixes))
    detail = f"{len(names)} files verified in {folder}: {', '.join(names)}"
    if unverified:
        detail += f"; Edge TPU twins present but not in the manifest: {', '.join(unverified)}"
    return CheckResult("models", Status.PASS, detail)
