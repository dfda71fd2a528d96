"""One estimate per person, not per frame: fuse a few good samples, then stop classifying.

Each sample is weighted by how much it can be trusted: frontal faces, faces big enough for
the 64 px age chip and confident detections count more. The fusion is robust rather than an
average, because one confident error (a face caught mid-turn, a blurred frame) must not flip
a person:

- gender: the weighted median of the samples' p_female, given only when at least
  `MIN_AGREEMENT` of the weight of the samples that take a side (beyond the margin of a coin
  toss) takes that side, else unknown;
- age: the weighted median of the samples' ages.

Once a person has `samples_needed` good samples the estimate is final and the pipeline stops
running the age/gender models on that track, which is where most of its speed comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge_agent.audience.values import NO_ESTIMATE, FusionSettings, PersonEstimate
from edge_agent.segments import Gender, gender_of
from edge_agent.vision.values import Face

# A face this wide (jaw to jaw, frame pixels) fills the 64 px age chip without upsampling.
_FULL_WEIGHT_WIDTH_PX = 46.0
# Share of a person's gender votes (by weight) that must agree: 4 of 5 like samples outvote
# one outlier; 3 against 2 is not a person the models are sure about.
MIN_AGREEMENT = 0.75


def sample_weight(face: Face) -> float:
    quality = face.quality
    size = min(1.0, quality.width_px / _FULL_WEIGHT_WIDTH_PX)
    return max(quality.frontal, 0.05) * size * quality.detection_score


def weighted_median(values: list[float], weights: list[float]) -> float:
    """The value at which half of the weight lies on either side."""
    order = np.argsort(values)
    cumulative = np.cumsum(np.asarray(weights, dtype=np.float64)[order])
    index = int(np.searchsorted(cumulative, cumulative[-1] / 2))
    return float(np.asarray(values, dtype=np.float64)[order][index])


@dataclass(slots=True)
class _Samples:
    weights: list[float] = field(default_factory=list)
    p_female: list[float] = field(default_factory=list)
    age_weights: list[float] = field(default_factory=list)
    ages: list[float] = field(default_factory=list)


class DemographicsFusion:
    """Per-track running estimate; `needs_sample` tells the pipeline when to classify."""

    def __init__(self, settings: FusionSettings | None = None) -> None:
        self.settings = settings or FusionSettings()
        if self.settings.samples_needed < 1:
            raise ValueError("samples_needed must be at least 1")
        self.samples_needed = self.settings.samples_needed
        self._people: dict[int, _Samples] = {}

    def needs_sample(self, track_id: int) -> bool:
        samples = self._people.get(track_id)
        return samples is None or len(samples.p_female) < self.samples_needed

    def add(self, track_id: int, face: Face) -> PersonEstimate:
        """Fold in one analysed face; faces the analyzer called unknown add nothing."""
        samples = self._people.setdefault(track_id, _Samples())
        if face.p_female is not None and len(samples.p_female) < self.samples_needed:
            weight = max(sample_weight(face), 1e-6)
            samples.weights.append(weight)
            samples.p_female.append(face.p_female)
            if face.age_years is not None:
                samples.age_weights.append(weight)
                samples.ages.append(face.age_years)
        return self.estimate(track_id)

    def estimate(self, track_id: int) -> PersonEstimate:
        samples = self._people.get(track_id)
        if samples is None or not samples.p_female:
            return NO_ESTIMATE
        margin = self.settings.gender_margin
        p_female = weighted_median(samples.p_female, samples.weights)
        votes = {Gender.FEMALE: 0.0, Gender.MALE: 0.0, Gender.UNKNOWN: 0.0}
        for p, weight in zip(samples.p_female, samples.weights, strict=True):
            votes[gender_of(p, margin)] += weight
        female, male = votes[Gender.FEMALE], votes[Gender.MALE]
        gender = gender_of(p_female, margin)
        if gender is not Gender.UNKNOWN:
            agreeing = female if gender is Gender.FEMALE else male
            if agreeing < MIN_AGREEMENT * (female + male):
                gender = Gender.UNKNOWN
        age = weighted_median(samples.ages, samples.age_weights) if samples.ages else None
        return PersonEstimate(
            gender=gender,
            p_female=p_female,
            age_years=age,
            age_bracket=None if age is None else self.settings.brackets.of(age),
            samples=len(samples.p_female),
            final=len(samples.p_female) >= self.samples_needed,
        )

    def forget(self, track_id: int) -> None:
        """Drop a person's samples once their track has ended and been counted."""
        self._people.pop(track_id, None)
