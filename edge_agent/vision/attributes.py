"""Age and gender from aligned face chips with the int8 Cydral models (CC0, via dlib-models)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.vision.models import age_model, gender_model, model_path
from edge_agent.vision.runtime import TfliteModel
from edge_agent.vision.values import Delegate, Precision

GENDER_CHIP = 32
AGE_CHIP = 64
# The age model's 81 classes stand for these ages; the estimate is their expectation.
AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float32)


@dataclass(frozen=True, slots=True)
class AttributeEstimate:
    p_female: float
    age_years: float
    age_spread_years: float  # standard deviation of the predicted age distribution


class AgeGenderEstimator:
    """Runs the gender (32x32) and age (64x64) models on uint8 RGB chips."""

    def __init__(
        self,
        models_dir: Path,
        *,
        precision: Precision = "int8",
        num_threads: int = 1,
        delegate: Delegate = "cpu",
    ) -> None:
        self.precision = precision
        self.gender_model = TfliteModel(
            model_path(models_dir, gender_model(precision)),
            num_threads=num_threads,
            delegate=delegate,
        )
        self.age_model = TfliteModel(
            model_path(models_dir, age_model(precision)),
            num_threads=num_threads,
            delegate=delegate,
        )
        self._gender_out = self.gender_model.output_by_last_dim(2)
        self._age_out = self.age_model.output_by_last_dim(len(AGE_WEIGHTS))

    def estimate(self, age_chip: np.ndarray, gender_chip: np.ndarray) -> AttributeEstimate:
        gender = self.gender_model.run(gender_chip[np.newaxis])[self._gender_out][0]
        ages = self.age_model.run(age_chip[np.newaxis])[self._age_out][0]
        # int8 outputs are coarse near zero; renormalising keeps the expectation honest.
        ages = np.clip(ages, 0.0, None)
        ages /= max(float(ages.sum()), 1e-6)
        mean = float(ages @ AGE_WEIGHTS)
        spread = float(np.sqrt(max(0.0, ages @ (AGE_WEIGHTS - mean) ** 2)))
        p_female = float(gender[0] / max(float(gender.sum()), 1e-6))
        return AttributeEstimate(p_female=p_female, age_years=mean, age_spread_years=spread)
