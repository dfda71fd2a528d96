"""One estimate per person, not per frame: fuse a few good samples, then stop classifying.

Each sample is weighted by how much it can be trusted: frontal faces, faces big enough for
the 64 px age chip and confident detections count more. Once a person has `samples_needed`
good samples the estimate is final and the daemon stops running the age/gender models on
that track, which is where most of the pipeline's speed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_agent.audience.values import NO_ESTIMATE, FusionSettings, PersonEstimate
from edge_agent.segments import gender_of
from edge_agent.vision.values import Face

# A face this wide (jaw to jaw, frame pixels) fills the 64 px age chip without upsampling.
_FULL_WEIGHT_WIDTH_PX = 46.0


def sample_weight(face: Face) -> float:
    quality = face.quality
    size = min(1.0, quality.width_px / _FULL_WEIGHT_WIDTH_PX)
    return max(quality.frontal, 0.05) * size * quality.detection_score


@dataclass(slots=True)
class _Accumulator:
    weight: float = 0.0
    female: float = 0.0  # weighted sum of p_female
    age_weight: float = 0.0
    age: float = 0.0  # weighted sum of ages
    samples: int = 0


class DemographicsFusion:
    """Per-track running estimate; `needs_sample` tells the daemon when to classify."""

    def __init__(self, settings: FusionSettings | None = None) -> None:
        self.settings = settings or FusionSettings()
        if self.settings.samples_needed < 1:
            raise ValueError("samples_needed must be at least 1")
        self.samples_needed = self.settings.samples_needed
        self._people: dict[int, _Accumulator] = {}

    def needs_sample(self, track_id: int) -> bool:
        accumulator = self._people.get(track_id)
        return accumulator is None or accumulator.samples < self.samples_needed

    def add(self, track_id: int, face: Face) -> PersonEstimate:
        """Fold in one analysed face; faces the analyzer called unknown add nothing."""
        accumulator = self._people.setdefault(track_id, _Accumulator())
        if face.p_female is not None and accumulator.samples < self.samples_needed:
            weight = sample_weight(face)
            accumulator.weight += weight
            accumulator.female += weight * face.p_female
            if face.age_years is not None:
                accumulator.age_weight += weight
                accumulator.age += weight * face.age_years
            accumulator.samples += 1
        return self.estimate(track_id)

    def estimate(self, track_id: int) -> PersonEstimate:
        accumulator = self._people.get(track_id)
        if accumulator is None or accumulator.weight <= 0:
            return NO_ESTIMATE
        p_female = accumulator.female / accumulator.weight
        gender = gender_of(p_female, self.settings.gender_margin)
        age = accumulator.age / accumulator.age_weight if accumulator.age_weight > 0 else None
        return PersonEstimate(
            gender=gender,
            p_female=p_female,
            age_years=age,
            age_bracket=None if age is None else self.settings.brackets.of(age),
            samples=accumulator.samples,
            final=accumulator.samples >= self.samples_needed,
        )

    def forget(self, track_id: int) -> None:
        """Drop a person's samples once their track has ended and been counted."""
        self._people.pop(track_id, None)
