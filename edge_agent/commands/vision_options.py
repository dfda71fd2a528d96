"""The vision options that analyze, eval and bench share, and the settings they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from edge_agent.installed import default_models_dir
from edge_agent.vision.values import (
    Delegate,
    DetectorName,
    Precision,
    VisionSettings,
    detector_settings,
)


def add_vision_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vision")
    group.add_argument("--models", type=Path, default=None, help="models folder (default: bundled)")
    group.add_argument(
        "--detector",
        choices=get_args(DetectorName),
        default="yunet_s",
        help="face detector: yunet_s (default) and yunet_n (int8; _float32 twins) see the frame"
        " at --detector-pixels and find faces from about 20 px; the BlazeFace variants"
        " (full_range_int8 ...) see it at 192 or 128 px, faces from ~7.5%% of its width"
        " (docs/deployment.md)",
    )
    group.add_argument(
        "--detector-pixels",
        type=int,
        metavar="N",
        help="YuNet only: the frame is scaled, keeping its shape, to about N pixels"
        " (default 230400, 640x360)",
    )
    group.add_argument("--precision", choices=get_args(Precision), default="int8")
    group.add_argument("--threads", type=int, default=1)
    group.add_argument("--delegate", choices=get_args(Delegate), default="cpu")


def vision_settings(args: argparse.Namespace) -> VisionSettings:
    return VisionSettings(
        models_dir=args.models or default_models_dir(),
        detector=detector_settings(args.detector, input_pixels=args.detector_pixels),
        precision=args.precision,
        num_threads=args.threads,
        delegate=args.delegate,
    )
