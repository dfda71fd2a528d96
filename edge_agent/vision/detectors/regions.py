"""Where to look when not scanning the whole frame: around the faces already followed, and
where the picture changed.

A person moves a little from one frame to the next, so the daemon need not search the whole
frame every time (pipeline.py): between full scans it searches only around its tracks. A
region is the face's box grown by `margin` of its size on every side, enough for the error of
the tracker's prediction; regions that touch are merged, so a group is one search.

A face that is already known need not be seen in full detail to be found again, so a region
also says how wide its narrowest face is: the detector may then look at it smaller (and at a
fraction of the cost). A face still being classified needs its landmarks exact: its region
asks for full detail, and so does a region where the picture changed (vision/motion.py), where
an unknown face may be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from edge_agent.vision.values import Box


@dataclass(frozen=True, slots=True)
class Region:
    """A part of the frame to search, in frame pixels."""

    x0: int
    y0: int
    x1: int
    y1: int
    # The narrowest face followed in it, in frame pixels; 0 when a face in it must be seen in
    # full detail.
    face_width: float = 0.0

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


def regions_around(
    boxes: Iterable[Box],
    width: int,
    height: int,
    margin: float,
    *,
    full_detail: Iterable[Box] = (),
) -> list[Region]:
    """The parts of a width x height frame to search for these faces again; the faces in
    `full_detail` must be seen as a whole-frame scan would see them."""
    grown: list[tuple[list[float], float]] = []
    for box, face_width in [(box, box.width) for box in boxes] + [
        (box, 0.0) for box in full_detail
    ]:
        pad_x = margin * (box.x1 - box.x0)
        pad_y = margin * (box.y1 - box.y0)
        bounds = [
            max(0.0, box.x0 - pad_x),
            max(0.0, box.y0 - pad_y),
            min(float(width), box.x1 + pad_x),
            min(float(height), box.y1 + pad_y),
        ]
        grown.append((bounds, max(face_width, 0.0)))
    return merged(
        Region(int(x0), int(y0), round(x1), round(y1), face_width)
        for (x0, y0, x1, y1), face_width in grown
        if x1 - x0 >= 1 and y1 - y0 >= 1
    )


def merged(regions: Iterable[Region]) -> list[Region]:
    """The same parts of the frame, with regions that touch or overlap joined into one."""
    result: list[Region] = []
    for region in regions:
        # Absorb every region this one touches; the union may touch earlier ones, so repeat.
        touching = [other for other in result if _touch(region, other)]
        while touching:
            for other in touching:
                result.remove(other)
                region = Region(
                    min(region.x0, other.x0),
                    min(region.y0, other.y0),
                    max(region.x1, other.x1),
                    max(region.y1, other.y1),
                    _narrowest(region.face_width, other.face_width),
                )
            touching = [other for other in result if _touch(region, other)]
        result.append(region)
    return result


def _narrowest(a: float, b: float) -> float:
    """The face width a merged region must be seen at: 0 (full detail) wins."""
    return 0.0 if a <= 0 or b <= 0 else min(a, b)


def _touch(a: Region, b: Region) -> bool:
    return a.x0 <= b.x1 and b.x0 <= a.x1 and a.y0 <= b.y1 and b.y0 <= a.y1
