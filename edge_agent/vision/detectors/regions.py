"""Where to look between full scans: regions around the faces already followed.

A person moves a little from one frame to the next, so the daemon need not search the whole
frame every time: it scans it whole every few frames (to find new people) and in between only
around its tracks (pipeline.py). A region is the face's box grown by `margin` of its size on
every side, enough for a face walking towards the camera at a few frames' distance; regions
that touch are merged, so a group is one search.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge_agent.vision.values import Box

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels


def regions_around(boxes: Iterable[Box], width: int, height: int, margin: float) -> list[Region]:
    """The parts of a width x height frame to search for these faces again."""
    grown: list[list[float]] = []
    for box in boxes:
        pad_x = margin * (box.x1 - box.x0)
        pad_y = margin * (box.y1 - box.y0)
        grown.append(
            [
                max(0.0, box.x0 - pad_x),
                max(0.0, box.y0 - pad_y),
                min(float(width), box.x1 + pad_x),
                min(float(height), box.y1 + pad_y),
            ]
        )
    regions: list[list[float]] = []
    for region in grown:
        # Absorb every region this one touches; the union may touch earlier ones, so repeat.
        touching = [other for other in regions if _touch(region, other)]
        while touching:
            for other in touching:
                regions.remove(other)
                region = [
                    min(region[0], other[0]),
                    min(region[1], other[1]),
                    max(region[2], other[2]),
                    max(region[3], other[3]),
                ]
            touching = [other for other in regions if _touch(region, other)]
        regions.append(region)
    return [
        (int(x0), int(y0), round(x1), round(y1))
        for x0, y0, x1, y1 in regions
        if x1 - x0 >= 1 and y1 - y0 >= 1
    ]


def _touch(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
