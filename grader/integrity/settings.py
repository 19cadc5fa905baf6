"""The rubric's ``similarity:`` key: thresholds, the assignment's given code, given cells."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from grader.checks.base import StrictModel


class SimilaritySettings(StrictModel):
    """How a batch's submissions are compared with each other (never changes a score).

    ``similarity:`` at the top level of a rubric; every key has a default, so a rubric
    without it is compared with these defaults.
    """

    #: A pair whose similarity (0..1) is at least this is flagged for the instructor.
    threshold: float = Field(default=0.5, gt=0, le=1)
    #: Pairs below this similarity are not written to ``similarity.csv`` at all.
    floor: float = Field(default=0.25, ge=0, le=1)
    #: The assignment's given code, relative to the rubric's folder: the student version
    #: notebook from ``grade assign`` (its cells tagged ``given`` and the lines outside
    #: ``### BEGIN SOLUTION``/``### END SOLUTION`` are given) or starter ``.py`` files
    #: (whole). Code shared with these is never evidence. Empty: code that more than half
    #: of the batch shares counts as given instead.
    starter: list[str] = Field(default_factory=list)
    #: What happens when a submission changed a cell the student version tags ``given``
    #: (needs a student version notebook in ``starter``): ``warn`` grades the student's
    #: cells and warns in the result and report; ``run_original`` runs the original given
    #: cells instead (nbgrader's behaviour) and says so; ``ignore`` does neither.
    given_cells: Literal["warn", "run_original", "ignore"] = "warn"

    @model_validator(mode="after")
    def _floor_below_threshold(self) -> SimilaritySettings:
        if self.floor > self.threshold:
            raise ValueError(
                f"floor ({self.floor}) must not exceed threshold ({self.threshold}): "
                "flagged pairs must also be reported"
            )
        return self
