"""`edge-agent eval-footage VIDEO TRUTH.json`: the pipeline's counts against ground truth.

Two kinds of truth are read:

- generated: what `scripts/make_demo_footage.py` writes (`visible_face_s`, `viewer`,
  `dwell_s`, per-frame `boxes`);
- watched: what a person writes by watching a clip, `{"fps": F, "people": [{"id", "gender":
  "female|male|unsure", "age_bracket": "0-12|...|55+|unsure", "first_frame", "last_frame",
  "looks_at_camera_s"}]}`. A file may hold one such object per clip, keyed by the clip's file
  name (`../shared/data/footage-real/truth.json`). Optional `boxes` ([[frame, x0, y0, x1, y1],
  ...]) place a person in the frame; other keys are ignored.

Every frame is stamped with its own video time (index / fps), so the result does not depend
on this machine's speed, unless `--realtime` asks for the daemon's pacing: frames then arrive
at the clip's rate and, while the pipeline is busy, only the newest waits (latest frame wins),
with the measured cost per frame times `--slowdown` (4 is about a Raspberry Pi 4).

Each counted track is given to the truth person it overlaps most: by the mean overlap of its
boxes with the person's boxes in the frames both have, or else by the overlap of their time
spans (at least 0.3). A person with two tracks is fragmented; a track given to nobody is an
extra count. A person's demographics and viewing are read from their longest track.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edge_agent.audience.fusion import DemographicsFusion
from edge_agent.audience.metrics import Audience
from edge_agent.audience.tracker import Tracker
from edge_agent.audience.values import PersonVisit
from edge_agent.config import Config
from edge_agent.pipeline import FramePipeline, FrameResult
from edge_agent.segments import Gender
from edge_agent.sources.opencv import OpenCVSource
from edge_agent.sources.values import Frame
from edge_agent.vision.analyzer import VisionPipeline
from edge_agent.vision.values import Box

MIN_MATCH = 0.3
UNSURE = "unsure"


class TruthError(ValueError):
    """The truth file cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class TruthPerson:
    person_id: int
    start_s: float
    end_s: float
    dwell_s: float | None  # None: the truth does not say
    viewer: bool | None
    gender: str | None = None  # "female" | "male"; None: unsure or not given
    age_bracket: str | None = None
    boxes: dict[int, Box] = field(default_factory=dict)  # frame index -> face box


@dataclass(frozen=True, slots=True)
class Truth:
    kind: str  # "generated" | "watched"
    fps: float
    people: list[TruthPerson]


def _boxes(person: dict) -> dict[int, Box]:
    return {int(row[0]): Box(*map(float, row[1:5])) for row in person.get("boxes") or []}


def read_truth(path: Path, video: Path, min_look_s: float) -> Truth:
    """The truth for `video` from `path`; TruthError names what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise TruthError(f"{path}: cannot read the truth file: {error}") from error
    if not isinstance(data, dict):
        raise TruthError(f"{path}: expected a JSON object")
    if "people" not in data:
        if video.name not in data:
            clips = ", ".join(sorted(data)) or "none"
            raise TruthError(f"{path}: no truth for {video.name} (clips in it: {clips})")
        data = data[video.name]
    try:
        fps = float(data["fps"])
        people = data["people"]
        if any("visible_face_s" in person for person in people):
            return Truth("generated", fps, _generated_people(people))
        return Truth("watched", fps, _watched_people(people, fps, min_look_s))
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise TruthError(f"{path}: not a truth file this command knows: {error!r}") from error


def _generated_people(people: list[dict]) -> list[TruthPerson]:
    result = []
    for person in people:
        spans = person["visible_face_s"]
        if not spans:  # a face-based counter cannot see anyone whose face never shows
            continue
        result.append(
            TruthPerson(
                person_id=int(person["id"]),
                start_s=float(spans[0][0]),
                end_s=float(spans[-1][1]),
                dwell_s=float(person["dwell_s"]),
                viewer=bool(person["viewer"]),
                gender=person.get("gender"),
                age_bracket=person.get("age_bracket"),
                boxes=_boxes(person),
            )
        )
    return result


def _watched_people(people: list[dict], fps: float, min_look_s: float) -> list[TruthPerson]:
    result = []
    for person in people:
        first, last = int(person["first_frame"]), int(person["last_frame"])
        looks = person.get("looks_at_camera_s")
        gender, bracket = person.get("gender", UNSURE), person.get("age_bracket", UNSURE)
        result.append(
            TruthPerson(
                person_id=int(person["id"]),
                start_s=first / fps,
                end_s=(last + 1) / fps,
                dwell_s=(last - first) / fps,
                viewer=None if looks is None else float(looks) >= min_look_s,
                gender=None if gender == UNSURE else str(gender),
                age_bracket=None if bracket == UNSURE else str(bracket),
                boxes=_boxes(person),
            )
        )
    return result


@dataclass(slots=True)
class _Run:
    visits: list[PersonVisit] = field(default_factory=list)
    track_boxes: dict[int, dict[int, Box]] = field(default_factory=lambda: defaultdict(dict))
    frame_ms: list[float] = field(default_factory=list)
    stage_ms: Counter[str] = field(default_factory=Counter)
    faces: int = 0
    classified: int = 0
    frames: int = 0  # in the clip
    processed: int = 0

    def record(self, result: FrameResult, frame_index: int) -> None:
        times = result.times
        self.frame_ms.append(times.total_ms)
        for stage in ("detect", "track", "classify", "audience"):
            self.stage_ms[stage] += getattr(times, f"{stage}_ms")
        self.faces += times.faces
        self.classified += times.classified
        self.processed += 1
        for track in result.tracks.tracks:
            if track.matched_now:
                self.track_boxes[track.track_id][frame_index] = track.detection.box


def _paced(
    frames: Iterator[tuple[int, np.ndarray]], fps: float, cost_s: list[float], slowdown: float
) -> Iterator[tuple[int, np.ndarray]]:
    """The frames a real-time reader would hand over: while the pipeline is busy with one,
    newer ones replace each other and only the newest is taken next. `cost_s` holds the
    cost of the frame last handed out (the caller appends it)."""
    busy_until = 0.0
    waiting: tuple[int, np.ndarray] | None = None
    for index, image in frames:
        arrival = index / fps
        if arrival < busy_until:
            waiting = (index, image)
            continue
        if waiting is not None:
            start = busy_until
            yield waiting
            busy_until = start + cost_s[-1] * slowdown
            waiting = None
            if arrival < busy_until:
                waiting = (index, image)
                continue
        yield index, image
        busy_until = arrival + cost_s[-1] * slowdown
    if waiting is not None:
        yield waiting


def evaluate_footage(
    video: Path,
    truth_path: Path,
    config: Config,
    *,
    progress: bool = True,
    every: int = 1,
    realtime: bool = False,
    slowdown: float = 1.0,
) -> dict[str, object]:
    settings = config.audience_settings()
    truth = read_truth(truth_path, video, settings.viewer_min_attention_s)
    fps = truth.fps
    run = _Run()
    # One window for the whole clip: the windowing is not what is measured here.
    audience = Audience(replace(settings, window_s=1e9), run.visits.append)
    pipeline = FramePipeline(
        VisionPipeline(config.vision_settings()),
        Tracker(config.tracker_settings()),
        DemographicsFusion(config.fusion_settings()),
        audience,
    )
    cost_s: list[float] = [0.0]

    def numbered() -> Iterator[tuple[int, np.ndarray]]:
        with OpenCVSource(video) as source:
            for index, frame in enumerate(source.frames()):
                run.frames = index + 1
                if index % every == 0:
                    yield index, frame.image

    frames = _paced(numbered(), fps, cost_s, slowdown) if realtime else numbered()
    for index, image in tqdm(frames, desc="eval-footage", unit="frame", disable=not progress):
        started = time.perf_counter()
        result = pipeline.process(Frame(index, index / fps, index / fps, image))
        cost_s.append(time.perf_counter() - started)
        run.record(result, index)
    pipeline.flush(run.frames / fps, run.frames / fps)
    return _score(truth, run, config) | {
        "video": str(video),
        "truth": truth.kind,
        "pacing": f"real time x{slowdown:g}" if realtime else f"every {every} frame(s)",
    }


def _overlap(visit: PersonVisit, boxes: dict[int, Box], person: TruthPerson) -> float:
    shared = [frame for frame in boxes if frame in person.boxes]
    if shared:
        return statistics.fmean(boxes[f].iou(person.boxes[f]) for f in shared)
    inter = min(visit.last_seen, person.end_s) - max(visit.first_seen, person.start_s)
    union = max(visit.last_seen, person.end_s) - min(visit.first_seen, person.start_s)
    return max(0.0, inter) / union if union > 0 else 0.0


def _time_overlap(a: PersonVisit, b: PersonVisit) -> float:
    """How much of the shorter of two visits the other one covers."""
    inter = min(a.last_seen, b.last_seen) - max(a.first_seen, b.first_seen)
    shorter = min(a.last_seen - a.first_seen, b.last_seen - b.first_seen)
    return max(0.0, inter) / shorter if shorter > 0 else float(inter >= 0)


def _assign(truth: Truth, run: _Run, *, favour: bool) -> dict[int, list[PersonVisit]]:
    """Truth person id -> the counted visits given to them (each visit to one person).

    First each person gets the one visit that overlaps them most. Where overlaps tie (time
    spans without boxes: people who enter and leave together), nothing tells them apart, and
    the tie goes to the person of the same gender (`favour`) or of the other one, which makes
    the gender figure a best or a worst case. Then a leftover visit is a fragment of the
    person it overlaps most, if it does not run at the same time as their other visits;
    otherwise it is an extra count."""
    people = {p.person_id: p for p in truth.people}
    tracks: dict[int, list[PersonVisit]] = {person_id: [] for person_id in people}
    overlaps = {
        (i, person_id): _overlap(visit, run.track_boxes.get(visit.track_id, {}), person)
        for i, visit in enumerate(run.visits)
        for person_id, person in people.items()
    }

    def agrees(i: int, person_id: int) -> bool:
        return str(run.visits[i].estimate.gender) == people[person_id].gender

    ranked = sorted(
        overlaps, key=lambda pair: (-round(overlaps[pair], 2), agrees(*pair) != favour, pair)
    )
    given: set[int] = set()
    for i, person_id in ranked:
        if overlaps[i, person_id] < MIN_MATCH:
            break
        if i in given or tracks[person_id]:
            continue
        given.add(i)
        tracks[person_id].append(run.visits[i])
    for i, visit in enumerate(run.visits):
        if i in given:
            continue
        best = max(people, key=lambda person_id: overlaps[i, person_id], default=None)
        if best is None or overlaps[i, best] < MIN_MATCH:
            continue
        if all(_time_overlap(visit, other) <= 0.5 for other in tracks[best]):
            tracks[best].append(visit)
    return tracks


def _identity_switches(truth: Truth, run: _Run) -> int | None:
    """Times a track moved from one boxed person to another; None without boxes."""
    if not any(p.boxes for p in truth.people):
        return None
    switches = 0
    for boxes in run.track_boxes.values():
        previous = None
        for frame in sorted(boxes):
            overlaps = [
                (boxes[frame].iou(p.boxes[frame]), p.person_id)
                for p in truth.people
                if frame in p.boxes
            ]
            best, person_id = max(overlaps, default=(0.0, None))
            if best < MIN_MATCH:
                continue
            if previous is not None and person_id != previous:
                switches += 1
            previous = person_id
    return switches


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _score(truth: Truth, run: _Run, config: Config) -> dict[str, object]:
    people = truth.people
    tracks = _assign(truth, run, favour=True)
    found = [p for p in people if tracks[p.person_id]]
    # A person's demographics and viewing come from their longest track.
    main = {p.person_id: max(tracks[p.person_id], key=lambda v: v.dwell_s) for p in found}
    assigned = sum(len(v) for v in tracks.values())

    def demographic(
        attribute: str, predicted: str, given: dict[int, list[PersonVisit]] = tracks
    ) -> tuple[int, int, list[int], list[int]]:
        known = right = 0
        wrong: list[int] = []
        unknown: list[int] = []
        for person in people:
            truth_value = getattr(person, attribute)
            if truth_value is None or not given[person.person_id]:
                continue
            longest = max(given[person.person_id], key=lambda v: v.dwell_s)
            value = getattr(longest.estimate, predicted)
            if value is None or value == Gender.UNKNOWN:
                unknown.append(person.person_id)
                continue
            known += 1
            if str(value) == truth_value:
                right += 1
            else:
                wrong.append(person.person_id)
        return known, right, unknown, wrong

    gender_known, gender_right, gender_unknown, gender_wrong = demographic("gender", "gender")
    bracket_known, bracket_right, _, _ = demographic("age_bracket", "age_bracket")
    gendered = gender_known + len(gender_unknown)
    worst_known, worst_right, _, _ = demographic(
        "gender", "gender", _assign(truth, run, favour=False)
    )

    with_viewing = [p for p in found if p.viewer is not None]
    true_viewers = sum(bool(p.viewer) for p in with_viewing)
    predicted_viewers = sum(main[p.person_id].viewer for p in with_viewing)
    both = sum(bool(p.viewer) and main[p.person_id].viewer for p in with_viewing)
    dwell_errors = [
        abs(main[p.person_id].dwell_s - p.dwell_s) for p in found if p.dwell_s is not None
    ]
    counted = len(run.visits)
    frame_ms = run.frame_ms
    return {
        "frames": run.frames,
        "processed_frames": run.processed,
        "true_people": len(people),
        "counted_people": counted,
        "count_error": _share(counted - len(people), len(people)),
        "count_error_pct": round(100 * abs(counted - len(people)) / max(len(people), 1), 2),
        "matched_people": len(found),
        "missed_people": [p.person_id for p in people if not tracks[p.person_id]],
        "extra_tracks": counted - assigned,
        "tracks_per_person": round(assigned / len(found), 3) if found else None,
        "identity_switches": _identity_switches(truth, run),
        "gender_accuracy": _share(gender_right, gender_known),
        # Differs from gender_accuracy only where people without boxes tie (see _assign).
        "gender_accuracy_worst_case": _share(worst_right, worst_known),
        "gender_known": gender_known,
        "gender_wrong_people": gender_wrong,
        "gender_unknown_people": gender_unknown,
        "unknown_share": _share(len(gender_unknown), gendered),
        "bracket_accuracy": _share(bracket_right, bracket_known),
        "bracket_known": bracket_known,
        "median_dwell_error_s": round(statistics.median(dwell_errors), 3) if dwell_errors else None,
        "truth_viewers": true_viewers,
        "predicted_viewers": predicted_viewers,
        "viewer_precision_pct": round(100 * both / predicted_viewers, 2)
        if predicted_viewers
        else None,
        "viewer_recall_pct": round(100 * both / true_viewers, 2) if true_viewers else None,
        "median_frame_ms": round(statistics.median(frame_ms), 3) if frame_ms else None,
        "frames_per_s": round(1000 * len(frame_ms) / sum(frame_ms), 1) if frame_ms else None,
        "mean_stage_ms": {
            k: round(v / max(run.processed, 1), 3) for k, v in sorted(run.stage_ms.items())
        },
        "faces_per_frame": round(run.faces / max(run.processed, 1), 2),
        "classified_per_frame": round(run.classified / max(run.processed, 1), 3),
        "threads": config.vision.threads,
    }
