"""The `yunet` family: libfacedetection's YuNet, a detector made for small faces.

The frame is scaled, keeping its shape, to about `input_pixels` pixels (640 x 360 by default:
a 1280x720 frame is halved) and padded on the right and bottom to multiples of 32. The model
(fully convolutional, converted by scripts/convert_models.py with its input resizable) gives,
at strides 8, 16 and 32, a class and an objectness score, a
box and five keypoints per cell, anchor-free. A face's score is sqrt(class x objectness), as
in OpenCV's `FaceDetectorYN`; overlapping faces are reduced by non-maximum suppression.

YuNet's five keypoints are the eye centres, the nose tip and the mouth corners. The alignment
wants BlazeFace's mouth centre (the middle of the inner lips), so it is placed from the corners
where dlib's mean face has it; there are no ear keypoints (pose falls back to the eyes).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision import align
from edge_agent.vision.detectors.base import iou_one_to_many
from edge_agent.vision.detectors.regions import Region
from edge_agent.vision.models import detector_model, model_path
from edge_agent.vision.runtime import TensorSpec, TfliteModel, dequantize
from edge_agent.vision.values import Box, Delegate, Detection, Landmarks, Point, YuNetSettings

STRIDES = (8, 16, 32)
NMS_IOU = 0.3  # OpenCV's FaceDetectorYN default
# The project's face box is BlazeFace's, so that the tracker, the gates and every evaluation see
# one shape whatever the detector. YuNet's boxes are narrower and reach higher (more forehead,
# less chin). On faces both found in real crowd photos (scripts/detector_calibration.py on
# faces-real-dev, median ratios) YuNet's width was 0.920 of BlazeFace's (484 faces, the first
# conversion; 0.923 on 662 faces with the shipped float model), its height 1.174, and its
# centre 0.056 of BlazeFace's height higher.
_WIDTH_TO_BLAZEFACE = 1 / 0.920
_HEIGHT_TO_BLAZEFACE = 1 / 1.174
_SHIFT_DOWN = 0.056
# The input's sides must divide by the coarsest stride for the feature pyramid to line up.
_ALIGN = 32


def _mouth_centre_offset() -> tuple[float, float]:
    """Where the inner-lip centre lies from the mouth corners' midpoint on dlib's mean face,
    along the eye line and across it, in eye distances."""
    right_eye = np.array(align.mean_face_point(36, 37, 38, 39, 40, 41))
    left_eye = np.array(align.mean_face_point(42, 43, 44, 45, 46, 47))
    corners = np.array(align.mean_face_point(48, 54))
    lips = np.array(align.mean_face_point(60, 61, 62, 63, 64, 65, 66, 67))
    along = left_eye - right_eye
    distance = float(np.hypot(*along))
    along /= distance
    across = np.array([-along[1], along[0]])
    offset = lips - corners
    return float(offset @ along) / distance, float(offset @ across) / distance


MOUTH_OFFSET = _mouth_centre_offset()


def input_size(width: int, height: int, input_pixels: int) -> tuple[float, int, int, int, int]:
    """(scale, scaled width, scaled height, input width, input height) for a frame: scaled,
    keeping its shape, to about `input_pixels` pixels (the model's cost goes with the pixels,
    so every frame shape costs the same), then padded to multiples of 32."""
    scale = math.sqrt(input_pixels / (width * height))
    scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
    return (
        scale,
        scaled_w,
        scaled_h,
        math.ceil(scaled_w / _ALIGN) * _ALIGN,
        math.ceil(scaled_h / _ALIGN) * _ALIGN,
    )


def scale_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to (width, height): area averaging when shrinking keeps small faces intact."""
    if (image.shape[1], image.shape[0]) == (width, height):
        return image
    if width < image.shape[1]:
        if image.shape[1] <= 2 * width:
            return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        # INTER_AREA is fast only for whole ratios: go bilinearly to twice, then halve.
        double = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
        return cv2.resize(double, (width, height), interpolation=cv2.INTER_AREA)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)


class YuNetDetector:
    """Finds faces in RGB frames of any size; boxes and keypoints come back in frame pixels.

    `detect_regions` searches only parts of a frame, at most at the scale a whole-frame scan
    would use, so that a face looks no larger to the model either way: the daemon's tracker
    uses it between full scans (pipeline.py).
    """

    def __init__(
        self,
        models_dir: Path,
        settings: YuNetSettings | None = None,
        *,
        num_threads: int = 1,
        delegate: Delegate = "cpu",
    ) -> None:
        self.settings = settings or YuNetSettings()
        self.name = self.settings.name
        self._num_threads, self._delegate = num_threads, delegate
        self._path = model_path(models_dir, detector_model(self.settings))
        self.model = TfliteModel(self._path, num_threads=num_threads, delegate=delegate)
        self._layout: tuple[tuple[int, int, int, int], ...] = ()
        # Region inputs change shape as people move; one interpreter per recent shape spares a
        # reallocation per frame (0.5-2.5 ms each, measured).
        self._region_models: OrderedDict[tuple[int, int], tuple[TfliteModel, _Layout]] = (
            OrderedDict()
        )

    def detect(self, image: np.ndarray, min_score: float | None = None) -> list[Detection]:
        threshold = self.settings.min_score if min_score is None else min_score
        height, width = image.shape[:2]
        scale, scaled_w, scaled_h, input_w, input_h = input_size(
            width, height, self.settings.input_pixels
        )
        canvas = np.zeros((input_h, input_w, 3), dtype=np.uint8)
        canvas[:scaled_h, :scaled_w] = scale_image(image, scaled_w, scaled_h)
        self._prepare(input_h, input_w)
        outputs = self.model.run_raw(canvas[np.newaxis])
        boxes, keypoints, scores = _decode(outputs, self.model.outputs, self._layout, threshold)
        return _detections(boxes / scale, keypoints / scale, scores)

    def detect_regions(
        self,
        image: np.ndarray,
        regions: list[Region],
        min_score: float | None = None,
        *,
        coarse: bool = False,
    ) -> list[Detection]:
        """Faces in these parts of the frame only, in frame pixels; with `coarse`, also in the
        whole frame seen at a ninth of the pixels (`COARSE_SHARE`).

        A region is seen at the whole-frame scan's scale, or smaller where its narrowest face
        would still be `REGION_FACE_PX` wide (`Region.face_width`)."""
        threshold = self.settings.min_score if min_score is None else min_score
        height, width = image.shape[:2]
        scale = input_size(width, height, self.settings.input_pixels)[0]
        scans = [
            ((r.x0, r.y0, r.x1, r.y1), _region_scale(scale, r.face_width), 0.0) for r in regions
        ]
        if coarse:
            whole = (0, 0, width, height)
            scans.append((whole, scale * math.sqrt(COARSE_SHARE), COARSE_MIN_FACE_PX))
        all_boxes, all_points, all_scores = [np.zeros((0, 4))], [np.zeros((0, 5, 2))], [np.zeros(0)]
        for (x0, y0, x1, y1), region_scale, min_width in scans:
            scaled_w = max(1, round((x1 - x0) * region_scale))
            scaled_h = max(1, round((y1 - y0) * region_scale))
            input_w, input_h = _region_side(scaled_w), _region_side(scaled_h)
            canvas = np.zeros((input_h, input_w, 3), dtype=np.uint8)
            canvas[:scaled_h, :scaled_w] = scale_image(image[y0:y1, x0:x1], scaled_w, scaled_h)
            model, layout = self._region_model(input_h, input_w)
            outputs = model.run_raw(canvas[np.newaxis])
            boxes, points, scores = _decode(outputs, model.outputs, layout, threshold)
            if min_width:
                large = boxes[:, 2] - boxes[:, 0] >= min_width
                boxes, points, scores = boxes[large], points[large], scores[large]
            # Back to frame pixels, by the crop's own scale (rounding makes it differ a little
            # from `region_scale`).
            to_frame = np.array([(x1 - x0) / scaled_w, (y1 - y0) / scaled_h])
            origin = np.array([x0, y0])
            all_boxes.append((boxes.reshape(-1, 2, 2) * to_frame + origin).reshape(-1, 4))
            all_points.append(points * to_frame + origin)
            all_scores.append(scores)
        # One suppression over every region, as over a whole frame.
        return _detections(
            np.concatenate(all_boxes), np.concatenate(all_points), np.concatenate(all_scores)
        )

    def _region_model(self, input_h: int, input_w: int) -> tuple[TfliteModel, _Layout]:
        key = (input_h, input_w)
        if key in self._region_models:
            self._region_models.move_to_end(key)
            return self._region_models[key]
        model = TfliteModel(self._path, num_threads=self._num_threads, delegate=self._delegate)
        model.resize_input((1, input_h, input_w, 3))
        entry = (model, _layout(model, input_h))
        self._region_models[key] = entry
        if len(self._region_models) > _REGION_MODELS:
            self._region_models.popitem(last=False)
        return entry

    def _prepare(self, input_h: int, input_w: int) -> None:
        """Resize the model's input to this frame's size (once per size)."""
        shape = (1, input_h, input_w, 3)
        if self._layout and self.model.input.shape == shape:
            return
        self.model.resize_input(shape)
        self._layout = _layout(self.model, input_h)


# Per stride: the output positions of its two scores, its box and its keypoints.
_Layout = tuple[tuple[int, int, int, int], ...]
_REGION_STEP = 32
_FINE_STEPS_UP_TO = 192
_REGION_MODELS = 16
# A face already followed is found again when the model sees it this wide about as surely as
# when it sees it larger (YuNet finds 86 % of real faces of 20-40 px and 94 % from 40 px,
# MODELS.md, and the tracker bridges a missed frame): a region of larger faces is seen
# smaller, and its cost falls with the square of the scale. 38 px with the pipeline's region
# margin of 0.75 makes a lone face's region 95 px, one 96x96 input (0.4 ms here; 48 px makes
# it 128x128, 0.8 ms). Counts and tracks on the real and generated clips were the same at 38
# and 48 px (2026-12-04), once the tracker's size gate allowed for a turning head.
REGION_FACE_PX = 38.0


def _region_side(scaled: int) -> int:
    """A region's input side: whole steps keep the number of input shapes, hence of
    interpreters, small (a new one costs 3-4 ms); coarser steps for the larger regions,
    where the padding costs least in proportion."""
    step = _REGION_STEP if scaled <= _FINE_STEPS_UP_TO else 2 * _REGION_STEP
    return max(_REGION_STEP, math.ceil(scaled / step) * step)


def _region_scale(full_scan_scale: float, face_width: float) -> float:
    if face_width <= 0:
        return full_scan_scale
    return min(full_scan_scale, REGION_FACE_PX / face_width)


# The coarse scan between full scans sees a ninth of the full scan's pixels (a third of its
# width): it costs about a seventh of a full scan and finds the faces of anyone close enough
# to be three times the smallest face the full scan finds, so a passer-by near the screen is
# followed within a few frames, not from the next full scan.
COARSE_SHARE = 1 / 9
# ... and keeps only the faces it sees large: smaller ones are the full scan's (at this size a
# low-resolution scan of a shop finds shelves and posters as readily as faces, measured on
# generated footage).
COARSE_MIN_FACE_PX = 24.0


def _layout(model: TfliteModel, input_h: int) -> _Layout:
    """For each stride, which outputs are its scores, box and keypoints (by shape: names
    differ between conversions)."""
    layout = []
    for stride in STRIDES:
        rows = input_h // stride
        ones, box, points = [], None, None
        for index, spec in enumerate(model.outputs):
            if spec.shape[1] != rows:
                continue
            if spec.shape[-1] == 1:
                ones.append(index)
            elif spec.shape[-1] == 4:
                box = index
            elif spec.shape[-1] == 10:
                points = index
        if len(ones) != 2 or box is None or points is None:
            shapes = [spec.shape for spec in model.outputs]
            raise ValueError(f"{model.path.name}: unexpected outputs {shapes}")
        # Class and objectness enter the score as a product: their order does not matter.
        layout.append((ones[0], ones[1], box, points))
    return tuple(layout)


def _detections(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray) -> list[Detection]:
    if scores.size == 0:
        return []
    return [
        _detection(boxes[i], keypoints[i], float(scores[i])) for i in _nms(boxes, scores, NMS_IOU)
    ]


def _decode(
    outputs: tuple[np.ndarray, ...],
    specs: tuple[TensorSpec, ...],
    layout: _Layout,
    min_score: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, keypoints and scores of the cells scoring at least `min_score`, in input pixels,
    from the model's raw outputs: only the score maps are turned to float whole, the boxes
    and keypoints only where a face is."""
    all_boxes, all_points, all_scores = [], [], []
    threshold = min_score**2

    def score(index: int) -> np.ndarray:
        return np.clip(dequantize(outputs[index][0, ..., 0], specs[index]), 0, 1)

    for stride, (cls, obj, box, points) in zip(STRIDES, layout, strict=True):
        product = score(cls) * score(obj)
        rows, cols = np.nonzero(product >= threshold)
        if rows.size == 0:
            continue
        cells = np.stack([cols, rows], axis=1).astype(np.float32)
        raw = dequantize(outputs[box][0, rows, cols], specs[box])
        centres = (cells + raw[:, :2]) * stride
        sizes = np.exp(raw[:, 2:4]) * stride
        all_boxes.append(np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1))
        marks = dequantize(outputs[points][0, rows, cols], specs[points]).reshape(-1, 5, 2)
        all_points.append((marks + cells[:, None, :]) * stride)
        all_scores.append(np.sqrt(product[rows, cols]))
    if not all_scores:
        return np.zeros((0, 4)), np.zeros((0, 5, 2)), np.zeros(0)
    return np.concatenate(all_boxes), np.concatenate(all_points), np.concatenate(all_scores)


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices of the faces kept, best first: each suppresses the ones overlapping it."""
    order = list(np.argsort(-scores))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if order:
            overlaps = iou_one_to_many(boxes[best], boxes[order])
            order = [
                i for i, overlap in zip(order, overlaps, strict=True) if overlap < iou_threshold
            ]
    return keep


def blazeface_box(box: np.ndarray) -> Box:
    """A YuNet box (x0, y0, x1, y1) in BlazeFace's shape."""
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    width = (box[2] - box[0]) * _WIDTH_TO_BLAZEFACE
    height = (box[3] - box[1]) * _HEIGHT_TO_BLAZEFACE
    centre_y += _SHIFT_DOWN * height
    return Box(
        float(centre_x - width / 2),
        float(centre_y - height / 2),
        float(centre_x + width / 2),
        float(centre_y + height / 2),
    )


def yunet_box(box: Box) -> tuple[float, float, float, float]:
    """The box YuNet gave (x0, y0, x1, y1), from its BlazeFace-shaped one: `blazeface_box`
    undone (scripts/detector_calibration.py measures YuNet's own boxes with it)."""
    width = (box.x1 - box.x0) / _WIDTH_TO_BLAZEFACE
    height = (box.y1 - box.y0) / _HEIGHT_TO_BLAZEFACE
    centre_x = (box.x0 + box.x1) / 2
    centre_y = (box.y0 + box.y1) / 2 - _SHIFT_DOWN * (box.y1 - box.y0)
    return (
        centre_x - width / 2,
        centre_y - height / 2,
        centre_x + width / 2,
        centre_y + height / 2,
    )


def _detection(box: np.ndarray, points: np.ndarray, score: float) -> Detection:
    right_eye, left_eye, nose, mouth_right, mouth_left = points
    along = left_eye - right_eye
    across = np.array([-along[1], along[0]])
    mouth = (mouth_right + mouth_left) / 2 + MOUTH_OFFSET[0] * along + MOUTH_OFFSET[1] * across
    return Detection(
        box=blazeface_box(box),
        score=score,
        landmarks=Landmarks(
            Point(float(right_eye[0]), float(right_eye[1])),
            Point(float(left_eye[0]), float(left_eye[1])),
            Point(float(nose[0]), float(nose[1])),
            Point(float(mouth[0]), float(mouth[1])),
        ),
    )
