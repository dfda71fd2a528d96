"""The runtime check: the TFLite interpreter imports and the vision pipeline runs one blank frame
with the configured delegate. Skipped when the models check failed: it would only repeat it.
"""

from __future__ import annotations

import time

from edge_agent.commands.doctor.base import CheckResult, DoctorRun, Status

_BACKEND_DISTRIBUTIONS = {"ai_edge_litert": "ai-edge-litert", "tflite_runtime": "tflite-runtime"}


def check_runtime(doctor: DoctorRun) -> CheckResult:
    from importlib import metadata

    from edge_agent.vision.models import ModelFileError
    from edge_agent.vision.runtime import (
        DelegateUnavailableError,
        RuntimeUnavailableError,
        load_backend,
    )

    assert doctor.config is not None
    if doctor.status_of("models") is Status.FAIL:
        return CheckResult("runtime", Status.SKIP, "the model files are not right (see models)")
    try:
        backend, _ = load_backend()
    except RuntimeUnavailableError as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            str(error),
            "install the interpreter into edge-agent's virtualenv: pip install ai-edge-litert",
        )
    distribution = _BACKEND_DISTRIBUTIONS.get(backend, backend)
    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        version = "version unknown"
    vision = doctor.config.vision
    try:
        import numpy as np

        from edge_agent.vision.analyzer import VisionPipeline

        pipeline = VisionPipeline(doctor.config.vision_settings())
        started = time.perf_counter()
        pipeline.faces(np.zeros((480, 640, 3), dtype=np.uint8))
        elapsed_ms = (time.perf_counter() - started) * 1000
    except DelegateUnavailableError as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "install libedgetpu1-std, plug the Coral in (USB 3 port), or set vision.delegate: cpu",
        )
    except ModelFileError as error:  # the models check was skipped
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "restore the model files (see the models check)",
        )
    except FileNotFoundError as error:  # an Edge TPU twin that is not there
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: {error}",
            "put the _edgetpu.tflite models into vision.models_dir or set vision.delegate: cpu",
        )
    except Exception as error:
        return CheckResult(
            "runtime",
            Status.FAIL,
            f"{distribution} {version}: the vision pipeline did not run:"
            f" {type(error).__name__}: {error}",
            f"reinstall edge-agent and {distribution}; see `edge-agent -v doctor --only runtime`",
        )
    return CheckResult(
        "runtime",
        Status.PASS,
        f"{distribution} {version}; {vision.detector_settings().name} +"
        f" {vision.precision} age/gender on"
        f" {vision.delegate}, {vision.threads} thread{'' if vision.threads == 1 else 's'}:"
        f" a blank 640x480 frame in {elapsed_ms:.0f} ms",
    )
