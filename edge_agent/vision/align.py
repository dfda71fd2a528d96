"""Face chips in the geometry the Cydral age/gender models were trained on.

The models expect dlib "face chips": `get_face_chip_details(shape, size, padding=0.2)` then
`extract_image_chip`. dlib fits a similarity transform from five landmarks (eye corners and
the bottom of the nose) to its mean face shape, and samples the chip with bilinear
interpolation from an image pyramid when the chip is much smaller than the face.

BlazeFace does not give eye corners. Instead of fitting a template to some set of faces, we
read the positions of BlazeFace's points (eye centres, nose tip, mouth centre) off dlib's own
mean face shape — the same 68-point mean shape dlib's template comes from — so both point
sets live in one coordinate frame by construction. The parity this reaches against dlib's
chips is measured by `scripts/alignment_parity.py` and recorded in models/MODELS.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.vision.values import Landmarks

# dlib's mean face shape for 68-point landmarks 17..67 (x, y in [0, 1]),
# from dlib/image_transforms/interpolation.h (Boost Software License).
_MEAN_FACE_X = (
    0.000213256, 0.0752622, 0.18113, 0.29077, 0.393397, 0.586856, 0.689483, 0.799124,
    0.904991, 0.98004, 0.490127, 0.490127, 0.490127, 0.490127, 0.36688, 0.426036,
    0.490127, 0.554217, 0.613373, 0.121737, 0.187122, 0.265825, 0.334606, 0.260918,
    0.182743, 0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335, 0.254149,
    0.340985, 0.428858, 0.490127, 0.551395, 0.639268, 0.726104, 0.642159, 0.556721,
    0.490127, 0.423532, 0.338094, 0.290379, 0.428096, 0.490127, 0.552157, 0.689874,
    0.553364, 0.490127, 0.42689,
)  # fmt: skip
_MEAN_FACE_Y = (
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891,
    0.0187482, 0.038915, 0.106454, 0.203352, 0.307009, 0.409805, 0.515625, 0.587326,
    0.609345, 0.628106, 0.609345, 0.587326, 0.216423, 0.178758, 0.179852, 0.231733,
    0.245099, 0.244077, 0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099,
    0.780233, 0.745405, 0.727388, 0.742578, 0.727388, 0.745405, 0.780233, 0.864805,
    0.902192, 0.909281, 0.902192, 0.864805, 0.784792, 0.778746, 0.785343, 0.778746,
    0.784792, 0.824182, 0.831803, 0.824182,
)  # fmt: skip

CHIP_PADDING = 0.2


def mean_face_point(*ibug_indices: int) -> tuple[float, float]:
    """The centroid of these iBUG 68-point landmarks on dlib's mean face (x, y in [0, 1])."""
    xs = [_MEAN_FACE_X[i - 17] for i in ibug_indices]
    ys = [_MEAN_FACE_Y[i - 17] for i in ibug_indices]
    return sum(xs) / len(xs), sum(ys) / len(ys)


# dlib's five-point template in its part order: the subject's left eye outer and inner
# corners, right eye outer and inner corners, bottom of the nose. dlib keeps these apart
# from the 68-point mean shape; the values were recovered exactly (residual 1e-19) by fitting
# to `dlib.get_face_chip_details` on random points (scripts/alignment_parity.py --probe).
DLIB_FIVE_POINTS = np.array(
    [
        [0.85956746, 0.21349815],
        [0.64606048, 0.22896744],
        [0.12057506, 0.21372745],
        [0.33408506, 0.22906424],
        [0.49011231, 0.62779753],
    ]
)
# The same five points on the 68-point mean shape (iBUG 45, 42, 36, 39, 33).
_MEAN_SHAPE_FIVE_POINTS = np.array([mean_face_point(i) for i in (45, 42, 36, 39, 33)])

# BlazeFace's keypoints on the same mean face: eye centres are the centroids of the six
# iBUG eye-contour points, the nose tip is iBUG 30, the mouth centre the centroid of the
# inner lip contour (60..67). The ear keypoints are too unreliable to align with.
_BLAZEFACE_ON_MEAN_SHAPE = np.array(
    [
        mean_face_point(36, 37, 38, 39, 40, 41),  # right eye (image left)
        mean_face_point(42, 43, 44, 45, 46, 47),  # left eye
        mean_face_point(30),  # nose tip
        mean_face_point(60, 61, 62, 63, 64, 65, 66, 67),  # mouth centre
    ]
)


def chip_template(points: np.ndarray, size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """Mean-face points in the pixel coordinates of a size x size chip, as dlib places them."""
    return (padding + points) / (2 * padding + 1) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (2x3) mapping src points onto dst points (Umeyama)."""
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    a = (src_c * dst_c).sum()
    b = (src_c[:, 0] * dst_c[:, 1] - src_c[:, 1] * dst_c[:, 0]).sum()
    norm = (src_c**2).sum()
    m = np.array([[a, -b], [b, a]]) / norm
    return np.hstack([m, (dst_mean - m @ src_mean)[:, None]])


def _on_five_point_chip(points: np.ndarray) -> np.ndarray:
    """Carry mean-shape points into the frame of dlib's five-point template."""
    transform = similarity_transform(_MEAN_SHAPE_FIVE_POINTS, DLIB_FIVE_POINTS)
    return points @ transform[:, :2].T + transform[:, 2]


# Where BlazeFace's eye centres, nose tip and mouth centre fall on a dlib five-point chip.
BLAZEFACE_POINTS = _on_five_point_chip(_BLAZEFACE_ON_MEAN_SHAPE)


@dataclass(frozen=True, slots=True)
class ChipGeometry:
    """Where a chip lies in the frame: dlib's chip_details (centre, scale, angle)."""

    center_x: float
    center_y: float
    scale: float  # frame pixels per chip pixel
    angle: float  # radians
    size: int

    def chip_to_frame(self) -> np.ndarray:
        """2x3 affine taking chip pixel coordinates to frame coordinates, as dlib samples:
        pixel 0 sits on the rectangle's first edge and pixel size-1 on its last."""
        spacing = (self.size * self.scale - 1) / (self.size - 1) if self.size > 1 else 1.0
        cos, sin = np.cos(self.angle) * spacing, np.sin(self.angle) * spacing
        half = (self.size - 1) / 2
        return np.array(
            [
                [cos, -sin, self.center_x - cos * half + sin * half],
                [sin, cos, self.center_y - sin * half - cos * half],
            ]
        )


def chip_geometry(landmarks: np.ndarray, template: np.ndarray, size: int) -> ChipGeometry:
    """Fit chip -> frame as dlib does (chip points to image points), given matching points."""
    transform = similarity_transform(chip_template(template, size), landmarks)
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    angle = float(np.arctan2(transform[1, 0], transform[0, 0]))
    center = transform[:, :2] @ np.array([size / 2, size / 2]) + transform[:, 2]
    return ChipGeometry(float(center[0]), float(center[1]), scale, angle, size)


def blazeface_points(landmarks: Landmarks) -> np.ndarray:
    return np.array(
        [landmarks.right_eye, landmarks.left_eye, landmarks.nose_tip, landmarks.mouth],
        dtype=np.float64,
    )


def pyramid_levels(geometry: ChipGeometry) -> int:
    """How many 2x downsamplings dlib applies before sampling this chip bilinearly: it
    halves while the halved face rectangle still has more pixels than the chip."""
    width = geometry.size * geometry.scale
    levels = 0
    while (width / 2) ** 2 > geometry.size**2:
        width /= 2
        levels += 1
    return levels


def extract_chips(image: np.ndarray, geometries: list[ChipGeometry]) -> list[np.ndarray]:
    """Sample each chip (RGB uint8) from the image, sharing one pyramid over the face."""
    if not geometries:
        return []
    levels = [pyramid_levels(g) for g in geometries]
    # Only the face's neighbourhood is blurred and downsampled, not the whole frame.
    corners = np.vstack([_frame_corners(g) for g in geometries])
    margin = 2 ** (max(levels) + 2)
    height, width = image.shape[:2]
    x0 = int(max(0, np.floor(corners[:, 0].min()) - margin))
    y0 = int(max(0, np.floor(corners[:, 1].min()) - margin))
    x1 = int(min(width, np.ceil(corners[:, 0].max()) + margin + 1))
    y1 = int(min(height, np.ceil(corners[:, 1].max()) + margin + 1))
    if x1 <= x0 or y1 <= y0:
        return [np.zeros((g.size, g.size, 3), np.uint8) for g in geometries]
    pyramid = [image[y0:y1, x0:x1]]
    for _ in range(max(levels)):
        pyramid.append(cv2.pyrDown(pyramid[-1]))
    chips = []
    for geometry, level in zip(geometries, levels, strict=True):
        affine = geometry.chip_to_frame()
        affine[:, 2] -= (x0, y0)
        # cv2.pyrDown keeps pixel centres at 2i, so coordinates simply halve per level.
        # dlib maps points down a level as p/2 - (1.25, 0.75) while its filter centres
        # pixels at p/2 - 1: its chips sit half a source pixel left and down per level,
        # and the models learned on those chips.
        drift = 0.5 * (2**level - 1)
        affine[:, 2] += (-drift, drift)
        affine /= 2**level
        chips.append(
            cv2.warpAffine(
                pyramid[level],
                affine,
                (geometry.size, geometry.size),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_CONSTANT,
                borderValue=(0, 0, 0),
            )
        )
    return chips


def _frame_corners(geometry: ChipGeometry) -> np.ndarray:
    last = geometry.size - 1
    corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], float)
    return corners @ geometry.chip_to_frame().T
