"""The privacy check: no debug option writes frames with people's faces to disk."""

from __future__ import annotations

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status


def check_privacy(doctor: DoctorRun) -> CheckResult:
    assert doctor.config is not None
    folder = doctor.config.debug.save_annotated_frames_dir
    if folder is None:
        return CheckResult("privacy", Status.PASS, "no face images are written to disk")
    variable = "EDGE_AGENT__DEBUG__SAVE_ANNOTATED_FRAMES_DIR"
    where = (
        f"unset {variable} (set in the environment)"
        if any(name.upper() == variable for name in doctor.environ)
        else "remove debug.save_annotated_frames_dir from the config (or set it to null)"
    )
    return CheckResult(
        "privacy",
        Status.FAIL,
        f"debug.save_annotated_frames_dir is {folder}: frames with people's faces are written"
        " to disk",
        f"{where}, delete what is in {folder}, restart the service; a bench-only debug aid,"
        " never for a store",
    )
