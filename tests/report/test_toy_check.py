"""A check type added from outside the grader: this module registers a toy type (its
spec, grading function, details model and view) and its macro file lies next to it.
Reports, the summary and ``grade validate`` handle it without any change to
``grader/report/``, the templates or ``grader/validate.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import Field
from pypdf import PdfReader

from grader.checks.base import (
    REGISTRY,
    CheckContext,
    CheckSpec,
    Details,
    register,
    result,
    unavailable,
    view,
)
from grader.models import (
    AnswerRequest,
    CheckResult,
    ExecutionReport,
    GradeRecord,
    Provenance,
    QuestionResult,
)
from grader.report.render import load_records, render_all, report_html
from grader.report.summary import summary_view
from grader.results import record_to_dict
from grader.rubric import load_rubric
from grader.validate import solution_problems
from tests.conftest import make_ctx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


class RatingSpec(CheckSpec):
    """A student's rating of their own work, 0 to 5 stars, marked by the instructor."""

    type: Literal["toy_rating"]
    answer: str = Field(min_length=1)
    points: float = Field(ge=0)

    needs_expected: ClassVar[bool] = False  # nothing to compute from the reference
    needs_review: ClassVar[bool] = True  # the instructor marks it

    def max_points(self, expected: Mapping[str, Any]) -> float:
        return self.points

    def requests(self) -> list[AnswerRequest]:
        return [AnswerRequest(name=self.answer)]


class RatingDetails(Details):
    stars: int
    out_of: int = 5


def grade_rating(spec: RatingSpec, ctx: CheckContext) -> CheckResult:
    missing = unavailable(spec, ctx, spec.answer, spec.points)
    if missing is not None:
        return missing
    stars = max(0, min(5, int(ctx.answers[spec.answer].value)))
    return result(
        spec,
        spec.points,
        spec.points * stars / 5,
        "manual",
        f"rated {stars} of 5, awaiting the instructor",
        details=RatingDetails(stars=stars),
    )


def rating_view(check: CheckResult, details: RatingDetails) -> dict[str, Any]:
    assert isinstance(details, RatingDetails)  # read back through the type's model
    return {"stars": "★" * details.stars + "☆" * (details.out_of - details.stars)}


def rating_wrong(check: CheckResult, details: RatingDetails) -> list[tuple[str, bool]]:
    return [(f"{details.stars} stars", False)]


@pytest.fixture
def toy() -> Iterator[None]:
    """The toy type registered as a check module would register it, for one test."""
    register("toy_rating", RatingSpec, details=RatingDetails)(grade_rating)
    view(
        "toy_rating",
        macros=HERE / "toy_rating.html.j2",
        word="self-assessment",
        wrong=rating_wrong,
    )(rating_view)
    yield
    del REGISTRY["toy_rating"]


def _record(*checks: CheckResult) -> GradeRecord:
    execution = ExecutionReport("x.ipynb", 3, 3, (), (), False, False, None, (), 1.0)
    provenance = Provenance("0" * 64, "1" * 64, "2" * 64, "v", "3.11", "t", "n")
    score, top = sum(c.score for c in checks), sum(c.max_score for c in checks)
    question = QuestionResult("q1", "Reflection", score, top, checks)
    return GradeRecord(
        "ada", "toy", "Toy", "Course", score, top, (question,), execution, provenance
    )


def _graded(stars: int) -> CheckResult:
    spec = RatingSpec.model_validate(
        {"id": "self", "type": "toy_rating", "answer": "r", "points": 5}
    )
    return REGISTRY["toy_rating"].grade(spec, make_ctx({"r": stars}))


@pytest.mark.usefixtures("toy")
def test_a_toy_check_type_renders_in_a_student_report() -> None:
    html = report_html(_record(_graded(3)))
    assert '<p class="kv toy-stars"><b>Self-assessment:</b> ★★★☆☆ (3 / 5 suggested)</p>' in html
    assert '<span class="ctype">self-assessment</span>' in html
    assert "Awaiting instructor review" in html


@pytest.mark.usefixtures("toy")
def test_a_toy_result_file_renders_to_pdf(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    data = record_to_dict(_record(_graded(4)))
    (results / "ada.json").write_text(json.dumps(data), encoding="utf-8")
    render_all(load_records(results), tmp_path, jobs=1)
    reader = PdfReader(tmp_path / "reports" / "ada.pdf")
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert "Self-assessment: ★★★★☆ (4 / 5 suggested)" in text


@pytest.mark.usefixtures("toy")
def test_the_summary_asks_the_toy_type_how_an_answer_was_wrong() -> None:
    wrong = CheckResult("self", "toy_rating", 0.0, 5.0, "fail", "no", details={"stars": 1})
    view_ = summary_view([_record(wrong)])
    (check,) = view_["checks"]
    assert check["type"] == "toy rating"
    assert check["wrong"] == [{"answer": "1 stars", "code": False, "count": 1}]


@pytest.mark.usefixtures("toy")
def test_validate_treats_the_toy_type_by_its_capability(tmp_path: Path) -> None:
    path = tmp_path / "toy.yaml"
    path.write_text(
        "assignment: toy\ntitle: Toy\nreference: hw3\nnotebook: x.ipynb\n"
        "questions:\n  - id: q1\n    checks:\n"
        "      - {id: self, type: toy_rating, answer: r, points: 5}\n"
    )
    rubric = load_rubric(path)
    assert solution_problems(rubric, _record(_graded(1))) == []  # a low mark is no problem
    missing = REGISTRY["toy_rating"].grade(rubric.checks()[0], make_ctx())
    assert solution_problems(rubric, _record(missing)) == [f"self: {missing.message}"]


def test_the_report_code_does_not_know_the_toy_type() -> None:
    sources = [*(ROOT / "grader" / "report").glob("*.py"), *(ROOT / "templates").iterdir()]
    assert sources and not any("toy_rating" in p.read_text(encoding="utf-8") for p in sources)
    assert "toy_rating" not in REGISTRY  # registered only while a test needs it
