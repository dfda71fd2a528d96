"""`edge-agent eval-detect`: how many labelled faces a detector finds, by face size.

Owns the labelled-box format (a JSON object: image file name -> `[x1, y1, x2, y2, label]`
boxes in image pixels, the format of the team's real-photo set), the greedy matching of
detections to labelled boxes, the measurement loop, and its table, JSON and plot.

Recall is split by labelled face width because that is what decides whether a detector suits
a display: a shop entrance camera sees faces of 20 to 40 px, a kiosk camera faces of 100 px
and more, and one overall number hides which of the two a detector is good at. Detections that
match no labelled box are counted, but labelled sets are rarely complete (a face in the
background goes unlabelled), so that count is an upper bound on false detections.

The matching and the summary are pure functions on boxes, testable without a model; only
`evaluate` runs one.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge_agent.vision.values import Box, VisionSettings

# A detection finds a labelled face when their boxes overlap this much (the PASCAL VOC rule).
MIN_IOU = 0.5
# Labelled face width buckets in px: lower bounds, each up to the next one's (exclusive).
BUCKETS: tuple[tuple[str, float], ...] = (("<20", 0), ("20-40", 20), ("40-80", 40), (">=80", 80))
BUCKET_NAMES = tuple(name for name, _ in BUCKETS)
# The plot's finer width bins: every 5 px up to 100, then one for everything wider.
PLOT_BIN_PX = 5
PLOT_MAX_PX = 100
PLOTS_MISSING = "--plots needs matplotlib: pip install -e '.[plots]'"


@dataclass(frozen=True, slots=True)
class LabelledImage:
    path: Path
    name: str  # the key in the boxes file
    faces: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class ImageMatch:
    """What the matching made of one image."""

    found: tuple[bool, ...]  # per labelled face, in the file's order
    unmatched: int  # detections that matched no labelled face


def read_boxes(source: Path) -> list[LabelledImage]:
    """The labelled images of a boxes file, in its order; every image file must exist.

    An image is looked up next to the file first, then in its `images/` subfolder. Problems
    are `ValueError`s that name the file and the key, and are found before any model runs."""
    try:
        text = source.read_text()
    except OSError as error:
        raise ValueError(f"{source}: cannot read: {error.strerror or error}") from None
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{source}: not valid JSON: {error}") from None
    if not isinstance(content, dict):
        raise ValueError(
            f"{source}: expected a JSON object mapping image names to [x1, y1, x2, y2, label]"
            f" boxes, got {type(content).__name__}"
        )
    # Every box first: a file in the wrong format says so, not that its first image is missing.
    faces = {name: _parse_boxes(source, name, boxes) for name, boxes in content.items()}
    return [LabelledImage(_image_path(source, name), name, faces[name]) for name in faces]


def _parse_boxes(source: Path, name: str, boxes: object) -> tuple[Box, ...]:
    where = f"{source}: {name!r}"
    if not isinstance(boxes, list):
        raise ValueError(f"{where}: expected a list of [x1, y1, x2, y2, label] boxes")
    faces = []
    for index, box in enumerate(boxes):
        at = f"{where}: box {index}"
        if not isinstance(box, list) or len(box) != 5:
            raise ValueError(f"{at}: expected [x1, y1, x2, y2, label], got {box!r}")
        corners = box[:4]
        # bool is an int to Python, never a coordinate.
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in corners):
            raise ValueError(f"{at}: x1, y1, x2, y2 must be numbers, got {box!r}")
        if not all(math.isfinite(v) for v in corners):
            raise ValueError(f"{at}: x1, y1, x2, y2 must be finite, got {box!r}")
        if not isinstance(box[4], str):
            raise ValueError(f"{at}: the label must be a string, got {box[4]!r}")
        x1, y1, x2, y2 = (float(v) for v in corners)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"{at}: needs x2 > x1 and y2 > y1, got {box!r}")
        faces.append(Box(x1, y1, x2, y2))
    return tuple(faces)


def _image_path(source: Path, name: str) -> Path:
    folder = source.parent
    for candidate in (folder / name, folder / "images" / name):
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"{source}: image {name!r} is missing: neither {folder / name} nor"
        f" {folder / 'images' / name} exists"
    )


def match(
    faces: Sequence[Box], detections: Sequence[tuple[Box, float]], min_iou: float = MIN_IOU
) -> ImageMatch:
    """Greedy by score: the best detection first takes the not-yet-found face it overlaps most,
    if their IoU is at least `min_iou`. So a face goes to the surest detection of it, and a
    second detection of the same face counts as unmatched, as a duplicate box would on a
    screen."""
    found = [False] * len(faces)
    unmatched = 0
    for box, _ in sorted(detections, key=lambda d: d[1], reverse=True):
        best, best_iou = None, min_iou
        for index, face in enumerate(faces):
            if found[index]:
                continue
            iou = box.iou(face)
            # >= so an overlap of exactly min_iou counts; the first of equal faces wins.
            if iou >= best_iou and (best is None or iou > best_iou):
                best, best_iou = index, iou
        if best is None:
            unmatched += 1
        else:
            found[best] = True
    return ImageMatch(tuple(found), unmatched)


def width_bucket(width: float) -> str:
    """The bucket of a labelled face `width` px wide; each bound belongs to the bucket above."""
    name = BUCKETS[0][0]
    for bucket, lower in BUCKETS:
        if width >= lower:
            name = bucket
    return name


@dataclass
class Tally:
    """Per labelled face and per image, as the loop saw them."""

    face_widths: list[float] = field(default_factory=list)
    face_found: list[bool] = field(default_factory=list)
    detections: list[int] = field(default_factory=list)  # per image
    unmatched: list[int] = field(default_factory=list)  # per image
    detect_ms: list[float] = field(default_factory=list)  # per image

    def add(self, faces: Sequence[Box], detections: int, result: ImageMatch, ms: float) -> None:
        self.face_widths.extend(face.width for face in faces)
        self.face_found.extend(result.found)
        self.detections.append(detections)
        self.unmatched.append(result.unmatched)
        self.detect_ms.append(ms)


def _percent(part: int, whole: int) -> float | None:
    return round(part / whole * 100, 2) if whole else None


def recall_by_width(widths: Sequence[float], found: Sequence[bool]) -> dict[str, dict]:
    """`{bucket: {"faces", "found", "recall"}}` for every bucket; recall None when empty."""
    counts = {name: [0, 0] for name in BUCKET_NAMES}
    for width, hit in zip(widths, found, strict=True):
        bucket = counts[width_bucket(width)]
        bucket[0] += 1
        bucket[1] += hit
    return {
        name: {"faces": faces, "found": hits, "recall": _percent(hits, faces)}
        for name, (faces, hits) in counts.items()
    }


def summarize(
    tally: Tally, *, detector: str | None = None, input_pixels: int | None = None
) -> dict[str, object]:
    """The numbers `--json` writes (its keys are the command's documented interface)."""
    images = len(tally.detections)
    faces = len(tally.face_found)
    unmatched = sum(tally.unmatched)
    return {
        "images": images,
        "faces": faces,
        "recall": _percent(sum(tally.face_found), faces),
        "recall_by_width_px": recall_by_width(tally.face_widths, tally.face_found),
        "detections": sum(tally.detections),
        "unmatched_detections": unmatched,
        "unmatched_per_image": round(unmatched / images, 3) if images else None,
        "ms_per_image": round(statistics.median(tally.detect_ms), 3) if tally.detect_ms else None,
        "detector": detector,
        "input_pixels": input_pixels,
    }


def evaluate(
    images: Sequence[LabelledImage],
    settings: VisionSettings,
    *,
    tiles: tuple[int, int] | None = None,
    progress: bool = True,
) -> tuple[dict[str, object], Tally]:
    """Run the configured detector on every image (and on `tiles` columns x rows of it, when
    given) and match its detections."""
    from tqdm import tqdm

    from edge_agent.commands.evaluation.faces import load_rgb
    from edge_agent.vision.detectors import make_detector

    detector = make_detector(settings)
    if tiles is not None:
        from edge_agent.vision.detectors.tiling import TiledDetector

        detector = TiledDetector(detector, *tiles)
    tally = Tally()
    for item in tqdm(images, desc="eval-detect", unit="img", disable=not progress):
        image = load_rgb(item.path)
        started = time.perf_counter()
        detections = detector.detect(image)
        ms = (time.perf_counter() - started) * 1000
        result = match(item.faces, [(d.box, d.score) for d in detections])
        tally.add(item.faces, len(detections), result, ms)
    # YuNet scales each frame to about `input_pixels`; BlazeFace's input is fixed by its model.
    input_pixels = getattr(settings.detector, "input_pixels", None)
    return summarize(tally, detector=detector.name, input_pixels=input_pixels), tally


def format_table(result: dict[str, object]) -> str:
    def show(value: object, unit: str = "") -> str:
        return "-" if value is None else f"{value}{unit}"

    def line(label: str, value: object, note: str = "") -> str:
        return f"{label:<22}{value}{f'  ({note})' if note else ''}"

    by_width: dict[str, dict] = result["recall_by_width_px"]  # type: ignore[assignment]
    input_pixels = result.get("input_pixels")
    lines = [
        line(
            "detector",
            result.get("detector"),
            "input fixed by the model"
            if input_pixels is None
            else f"frame scaled to ~{input_pixels} pixels",
        ),
        line("images", result["images"]),
        line("faces", result["faces"]),
        line(f"recall (IoU >= {MIN_IOU})", show(result["recall"], " %")),
        "",
        f"{'face width px':<14}{'faces':>8}{'found':>8}{'recall':>10}",
    ]
    for name, row in by_width.items():
        lines.append(f"{name:<14}{row['faces']:>8}{row['found']:>8}{show(row['recall'], ' %'):>10}")
    lines += [
        "",
        line("detections", result["detections"]),
        line(
            "unmatched",
            result["unmatched_detections"],
            "an upper bound on false detections: labelled sets miss faces",
        ),
        line("unmatched per image", show(result["unmatched_per_image"])),
        line("ms per image", show(result["ms_per_image"]), "detect() only, median"),
    ]
    return "\n".join(lines)


def require_matplotlib() -> None:
    """Fail before the measurement, not after it, when `--plots` cannot be written."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ValueError(PLOTS_MISSING) from None


def write_plots(tally: Tally, directory: Path, title: str = "") -> list[Path]:
    """`recall_by_width.png`: recall against labelled face width over 5 px bins, with the
    number of faces in each bin (a recall from three faces means little)."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(PLOTS_MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = list(range(0, PLOT_MAX_PX + 1, PLOT_BIN_PX))
    bins = len(edges)  # the last one holds everything from PLOT_MAX_PX up
    faces, found = [0] * bins, [0] * bins
    for width, hit in zip(tally.face_widths, tally.face_found, strict=True):
        index = min(int(max(width, 0) // PLOT_BIN_PX), bins - 1)
        faces[index] += 1
        found[index] += hit
    centres = [edge + PLOT_BIN_PX / 2 for edge in edges]
    # An empty bin has no recall: NaN leaves a gap in the line instead of a fake zero.
    recall = [hits / n * 100 if n else math.nan for hits, n in zip(found, faces, strict=True)]

    directory.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 5))
    counts = axes.twinx()
    counts.bar(centres, faces, width=PLOT_BIN_PX * 0.9, color="lightgrey", zorder=0)
    counts.set_ylabel("labelled faces per bin")
    # The recall line on top of the count bars.
    axes.set_zorder(counts.get_zorder() + 1)
    axes.patch.set_visible(False)
    axes.plot(centres, recall, marker="o", color="tab:blue")
    for x, y, n in zip(centres, recall, faces, strict=True):
        if n:
            axes.annotate(f"{n}", (x, y), textcoords="offset points", xytext=(0, 6),
                          ha="center", fontsize=7)  # fmt: skip
    axes.set_ylim(0, 105)
    axes.set_xlim(0, edges[-1] + PLOT_BIN_PX)
    labels = [str(edge) for edge in edges[:-1]] + [f">={PLOT_MAX_PX}"]
    axes.set_xticks(edges, labels, fontsize=7)
    axes.set_xlabel("labelled face width (px, 5 px bins; numbers: faces per bin)")
    axes.set_ylabel(f"recall at IoU >= {MIN_IOU} (%)")
    axes.set_title(f"Detection recall by face width{f' - {title}' if title else ''}")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path = directory / "recall_by_width.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return [path]
