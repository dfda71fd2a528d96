"""The vision options that analyze, eval and bench share, and the settings they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

from edge_agent.installed import default_models_dir
from edge_agent.vision.values import Delegate, DetectorVariant, Precision, VisionSettings


def add_vision_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("vision")
    group.add_argument("--models", type=Path, default=None, help="models folder (default: bundled)")
    group.add_argument(
        "--detector",
        choices=get_args(DetectorVariant),
        default="full_range_int8",
        help="BlazeFace variant: full_range finds faces from ~7.5%% of the frame width,"
        " short_range from ~12.5%% (docs/deployment.md); full_range_int8 (default) is"
        " full_range quantized, ~1.4x faster, same recall",
    )
    group.add_argument("--precision", choices=get_args(Precision), default="int8")
    group.add_argument("--threads", type=int, default=1)
    group.add_argument("--delegate", choices=get_args(Delegate), default="cpu")


def vision_settings(args: argparse.Namespace) -> VisionSettings:
    return VisionSettings(
        models_dir=args.models or default_models_dir(),
        detector=args.detector,
        precision=args.precision,
        num_threads=args.threads,
        delegate=args.delegate,
    )
