"""Figures as SVG ``data:`` URIs: matplotlib charts for the summary, the report's score bar.

Matplotlib is imported on first use (the per-student reports never need it) with the
Agg backend selected first, so no display is needed. SVG text is kept as text
(``svg.fonttype: none``) in the report's font, and the output is deterministic (fixed
hash salt, no date), so re-rendering gives identical files.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape as xml_escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "grader",
    "font.family": ["DejaVu Sans"],
    "font.size": 8.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#555555",
    "axes.titlesize": 9.5,
}
GREEN = "#2e9e53"
AMBER = "#e0a030"
GREY = "#9a9a9a"


def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _to_data_uri(fig: Figure) -> str:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def histogram_svg(percentages: Sequence[float], *, bins: int = 10) -> str:
    """Histogram of total scores in percent (0–100 in ``bins`` equal bins)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 2.1))
        edges = [100.0 * i / bins for i in range(bins + 1)]
        clipped = [min(max(p, 0.0), 100.0) for p in percentages]
        ax.hist(clipped, bins=edges, color=GREEN, edgecolor="white", linewidth=0.8)
        ax.set_xlim(0, 100)
        ax.set_xticks(edges)
        ax.set_xlabel("total score (%)")
        ax.set_ylabel("students")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if percentages:
            mean = sum(clipped) / len(clipped)
            ax.axvline(mean, color="#333333", linestyle="--", linewidth=1)
            ax.text(mean, ax.get_ylim()[1], f" mean {mean:.1f}%", va="top", ha="left", fontsize=7.5)
        return _to_data_uri(fig)


def question_bars_svg(
    labels: Sequence[str], mean_pct: Sequence[float], full_pct: Sequence[float]
) -> str:
    """Per-question bars: mean score (%) and share of students with full marks (%)."""
    plt = _pyplot()
    with plt.rc_context(STYLE):
        width = max(3.5, min(6.4, 0.7 * len(labels) + 1.5))
        fig, ax = plt.subplots(figsize=(width, 2.2))
        xs = list(range(len(labels)))
        ax.bar([x - 0.2 for x in xs], mean_pct, width=0.4, color=GREEN, label="mean score")
        ax.bar([x + 0.2 for x in xs], full_pct, width=0.4, color=AMBER, label="full marks")
        ax.set_xticks(xs, labels)
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of students / points")
        ax.legend(frameon=False, fontsize=7.5, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _to_data_uri(fig)


BAR_COLOURS = {"full": "#2e9e53", "some": "#e0a030", "none": "#d24a3f"}


def score_bar_svg(questions: Sequence[tuple[str, str, float, float, str]]) -> str:
    """The header's per-question score bar as an SVG ``data:`` URI (no matplotlib).

    ``questions`` holds ``(label, score_text, width_share, fill_fraction, level)`` per
    question: each gets a segment as wide as its share of the points (``width_share``
    sums to 1), filled to ``fill_fraction`` in the colour of ``level``
    (full/some/none), with ``label score_text`` above it (one plain text run per
    segment: each ``tspan`` costs another text layout). Drawn as one image, it costs a
    fraction of the layout time of an HTML table of bars.
    """
    width, gap, top, height = 1000.0, 8.0, 15.0, 9.0
    parts: list[str] = []
    x = 0.0
    for label, score_text, share, fill, level in questions:
        w = max(width * share - gap, 2.0)
        colour = BAR_COLOURS.get(level, BAR_COLOURS["none"])
        parts.append(
            f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{height}" fill="#e4e4e4"/>'
            f'<rect x="{x:.1f}" y="{top}" width="{w * min(max(fill, 0.0), 1.0):.1f}" '
            f'height="{height}" fill="{colour}"/>'
            f'<text x="{x:.1f}" y="{top - 4}" font-size="12" fill="#444">'
            f"{xml_escape(label)} {xml_escape(score_text)}</text>"
        )
        x += width * share
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {top + height:.0f}" '
        f'font-family="DejaVu Sans">{"".join(parts)}</svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
