import dataclasses

from grader.checks.figure import FigureSpec, figures_under, grade_figure
from tests.conftest import make_ctx

SPEC = FigureSpec.model_validate(
    {"id": "lr_figure", "type": "figure", "heading": "Learning rate", "points": 2}
)
MARKDOWN = ("# Task 2\n## Learning rate\nwhat we saw", "## Momentum\nmore")
IMAGES = ((3, ("# Task 2", "## Learning rate", "### CNN")), (6, ("# Task 2", "## Momentum")))


def ctx(images: object, markdown: tuple[str, ...] = MARKDOWN) -> object:
    return dataclasses.replace(make_ctx(markdown=markdown), extras={"image_cells": images})


def test_figures_under_nested_headings() -> None:
    assert figures_under(IMAGES, "Learning rate") == [3]
    assert figures_under(IMAGES, "Momentum") == [6]
    assert figures_under(IMAGES, "Task 2") == [3, 6]
    assert figures_under(IMAGES, "Batch size") == []


def test_pass_and_fail() -> None:
    res = grade_figure(SPEC, ctx(IMAGES))  # type: ignore[arg-type]
    assert (res.status, res.score) == ("pass", 2)
    res = grade_figure(SPEC, ctx(IMAGES[1:]))  # type: ignore[arg-type]
    assert (res.status, res.score) == ("fail", 0)
    assert "0 figure(s)" in res.message


def test_missing_heading_and_no_record() -> None:
    res = grade_figure(SPEC, ctx(IMAGES, markdown=("# Task 2\n## Momentum",)))  # type: ignore[arg-type]
    assert res.status == "fail" and "no Markdown heading" in res.message
    res = grade_figure(SPEC, make_ctx(markdown=MARKDOWN))
    assert res.status == "error"
