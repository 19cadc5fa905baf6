"""``type: figure`` — an image output under a named Markdown heading.

The notebook runner keeps no outputs, only which cells displayed an image
(``display_data`` / ``execute_result`` with ``image/png`` or ``image/svg+xml``) and the
Markdown headings enclosing each of them (``NotebookRun.image_cells``, handed to checks
as ``ctx.extras["image_cells"]``). A figure counts for a heading when that heading, or
one of its sub-headings, encloses the cell that displayed it; a figure the notebook
displays only when run by hand (saved outputs) does not count, since the grader runs
the notebook itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field

from grader.checks.base import CheckContext, CheckSpec, Details, register, result
from grader.checks.text import find_answer, heading_pattern
from grader.models import CheckResult

_HASHES = "#"


class FigureSpec(CheckSpec):
    """At least ``min_figures`` images displayed under the heading ``heading``."""

    type: Literal["figure"]
    heading: str = Field(min_length=1)
    """The start of the Markdown heading (Q2, Q1a) under which a cell must display the figure,
    when the grader runs the notebook."""
    points: float = Field(ge=0)
    """Points when the figures are there (an instructor may still override)."""
    min_figures: int = Field(default=1, ge=1)
    """How many images must be displayed under the heading."""

    needs_notebook: ClassVar[bool] = True  # reads the run's record of image outputs
    needs_expected: ClassVar[bool] = False  # the expectation is the rubric's own (heading, count)

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points


class FigureDetails(Details):
    """The cells that displayed a figure under the heading, and how many were asked for."""

    cells: list[int] = Field(default_factory=list)
    min_figures: int | None = None


def figures_under(image_cells: Sequence[Any], heading: str) -> list[int]:
    """Positions of the image cells that a heading starting with ``heading`` encloses."""
    pattern = heading_pattern(heading)
    found: list[int] = []
    for entry in image_cells:
        position, headings = entry[0], entry[1]
        if any(pattern.match(str(h).lstrip(_HASHES).strip()) for h in headings):
            found.append(int(position))
    return found


@register("figure", FigureSpec, details=FigureDetails)
def grade_figure(spec: FigureSpec, ctx: CheckContext) -> CheckResult:
    """Pass when the section displays enough images when the grader runs it."""
    top = spec.points
    if ctx.notebook_problem is not None:
        return result(
            spec, top, 0, "fail", f"{spec.heading} could not be graded: {ctx.notebook_problem}"
        )
    image_cells = ctx.extras.get("image_cells")
    if image_cells is None:
        return result(
            spec, top, 0, "error", "the grader did not record the notebook's image outputs"
        )
    if find_answer(ctx.markdown, spec.heading) is None:
        return result(
            spec,
            top,
            0,
            "fail",
            f"no Markdown heading starting with {spec.heading} was found: put the experiment "
            f"and its figure under a heading such as '### {spec.heading}'",
        )
    cells = figures_under(image_cells, spec.heading)
    details = FigureDetails(cells=cells, min_figures=spec.min_figures)
    if len(cells) >= spec.min_figures:
        where = ", ".join(str(c) for c in cells)
        return result(
            spec,
            top,
            top,
            "pass",
            f"{len(cells)} figure(s) displayed under {spec.heading} (cell {where})",
            got=len(cells),
            details=details,
        )
    return result(
        spec,
        top,
        0,
        "fail",
        f"{len(cells)} figure(s) displayed under {spec.heading} when the grader ran the "
        f"notebook; at least {spec.min_figures} expected (a plot must be shown by a cell in "
        "that section with plt.show() or display(fig); a figure only saved to a file does "
        "not count)",
        expected={"min_figures": spec.min_figures},
        got=len(cells),
        details=details,
    )
