"""`edge-agent eval-footage VIDEO TRUTH.json`: the pipeline's counts against ground truth.

The video is read as fast as possible and every frame is stamped with its own video time
(index / fps), so the result does not depend on how fast this machine is. A person counts
as countable when their face is visible at some point (`visible_face_s` not empty): a
face-based counter cannot see anyone else. Each predicted visit is matched to the truth
person whose visible span it overlaps most (intersection over union of the two time spans,
at least 0.3).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import PersonVisit
from edge_agent.config import Config
from edge_agent.pipeline import FramePipeline
from edge_agent.sources.opencv import OpenCVSource
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline

MIN_SPAN_IOU = 0.3


@dataclass(frozen=True, slots=True)
class TruthPerson:
    person_id: int
    start_s: float
    end_s: float
    dwell_s: float
    viewer: bool


def read_truth(path: Path) -> tuple[float, list[TruthPerson]]:
    data = json.loads(path.read_text())
    people = []
    for person in data["people"]:
        spans = person["visible_face_s"]
        if not spans:
            continue
        people.append(
            TruthPerson(
                person_id=int(person["id"]),
                start_s=float(spans[0][0]),
                end_s=float(spans[-1][1]),
                dwell_s=float(person["dwell_s"]),
                viewer=bool(person["viewer"]),
            )
        )
    return float(data["fps"]), people


def _span_iou(visit: PersonVisit, person: TruthPerson) -> float:
    inter = min(visit.last_seen, person.end_s) - max(visit.first_seen, person.start_s)
    union = max(visit.last_seen, person.end_s) - min(visit.first_seen, person.start_s)
    return max(0.0, inter) / union if union > 0 else 0.0


def match(
    visits: list[PersonVisit], people: list[TruthPerson]
) -> list[tuple[PersonVisit, TruthPerson]]:
    candidates = sorted(
        ((_span_iou(v, p), i, j) for i, v in enumerate(visits) for j, p in enumerate(people)),
        reverse=True,
    )
    used_visits: set[int] = set()
    used_people: set[int] = set()
    pairs = []
    for iou, i, j in candidates:
        if iou < MIN_SPAN_IOU:
            break
        if i in used_visits or j in used_people:
            continue
        used_visits.add(i)
        used_people.add(j)
        pairs.append((visits[i], people[j]))
    return pairs


def evaluate_footage(
    video: Path, truth: Path, config: Config, progress: bool = True
) -> dict[str, object]:
    fps, people = read_truth(truth)
    visits: list[PersonVisit] = []
    settings = config.audience_settings()
    # One window for the whole clip: the windowing is not what is measured here.
    audience = Audience(replace(settings, window_s=1e9), visits.append)
    pipeline = FramePipeline(
        VisionPipeline(config.vision_settings()),
        Tracker(config.tracker_settings()),
        DemographicsFusion(config.fusion_settings()),
        audience,
    )
    stage_ms: list[float] = []
    stages = {"detect": 0.0, "track": 0.0, "classify": 0.0, "audience": 0.0}
    faces = classified = 0
    index = 0
    with OpenCVSource(video) as source:
        for frame in tqdm(source.frames(), desc="eval-footage", unit="frame", disable=not progress):
            stamped = Frame(index, index / fps, index / fps, frame.image)
            times = pipeline.process(stamped).times
            stage_ms.append(times.total_ms)
            for stage in stages:
                stages[stage] += getattr(times, f"{stage}_ms")
            faces += times.faces
            classified += times.classified
            index += 1
    pipeline.flush(index / fps, index / fps)

    pairs = match(visits, people)
    true_viewers = sum(p.viewer for p in people)
    predicted_viewers = sum(v.viewer for v in visits)
    both = sum(v.viewer and p.viewer for v, p in pairs)
    dwell_errors = [abs(v.dwell_s - p.dwell_s) for v, p in pairs]
    return {
        "video": str(video),
        "frames": index,
        "truth_people": len(people),
        "predicted_people": len(visits),
        "matched_people": len(pairs),
        "count_error_pct": round(100 * abs(len(visits) - len(people)) / max(len(people), 1), 2),
        "median_dwell_error_s": round(statistics.median(dwell_errors), 3) if pairs else None,
        "truth_viewers": true_viewers,
        "predicted_viewers": predicted_viewers,
        "viewer_precision_pct": round(100 * both / predicted_viewers, 2)
        if predicted_viewers
        else None,
        "viewer_recall_pct": round(100 * both / true_viewers, 2) if true_viewers else None,
        "median_frame_ms": round(statistics.median(stage_ms), 3) if stage_ms else None,
        "frames_per_s": round(1000 * len(stage_ms) / sum(stage_ms), 1) if stage_ms else None,
        "mean_stage_ms": {k: round(v / max(index, 1), 3) for k, v in stages.items()},
        "faces_per_frame": round(faces / max(index, 1), 2),
        "classified_per_frame": round(classified / max(index, 1), 3),
        "threads": config.vision.threads,
    }
