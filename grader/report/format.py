"""Values of a result as short text for reports: points, numbers, shapes, tracebacks.

The report's own views (:mod:`grader.report.view`, the summary) and every check type's
view (:mod:`grader.checks`) format what they show with these, so a number reads the same
wherever it appears.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable
from typing import Any

from grader.models import CheckResult
from grader.normalize import to_plain

TRACEBACK_HEAD = 6
TRACEBACK_TAIL = 24
LINE_WIDTH = 108
LINE_CAP = 400


def fmt_points(value: Any) -> str:
    """Points as short text: 12, 12.5, 12.33."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def fmt_number(value: Any) -> str:
    """A matrix entry or probe value as compact text (4 significant digits)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    if value is None:
        return "—"
    return shorten(str(value), 24)


def fmt_shape(value: Any) -> str:
    """A shape such as ``[498, 16]`` as ``(498, 16)``; other values as text."""
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        inner = ", ".join(fmt_number(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return shorten(str(value), 40)


def fmt_compact(value: Any, limit: int = 120) -> str:
    """Any JSON value as one short line of text."""
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(fmt_compact(v, limit) for v in value[:20])
        text += ", …]" if len(value) > 20 else "]"
    elif isinstance(value, dict):
        items = list(value.items())[:10]
        text = "{" + ", ".join(f"{k}: {fmt_compact(v, limit)}" for k, v in items) + "}"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = fmt_number(value)
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def percent(score: Any, max_score: Any) -> float:
    """Score as a percentage of max (0 when max is 0)."""
    try:
        top = float(max_score)
        return 100.0 * float(score) / top if top > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0


def level(score: Any, max_score: Any) -> str:
    """A colour class for a score: ``full``, ``some`` or ``none``."""
    frac = percent(score, max_score) / 100.0
    if frac >= 0.999:
        return "full"
    return "some" if frac > 0 else "none"


def text_direction(text: str) -> str:
    """``rtl`` when the first strongly directional character is right-to-left."""
    for char in text:
        bidi = unicodedata.bidirectional(char)
        if bidi in ("R", "AL"):
            return "rtl"
        if bidi == "L":
            return "ltr"
    return "ltr"


def trim_traceback(
    text: str, head: int = TRACEBACK_HEAD, tail: int = TRACEBACK_TAIL, width: int = LINE_WIDTH
) -> str:
    """The first ``head`` and last ``tail`` lines of a traceback, long lines folded.

    Lines are cut to ``LINE_CAP`` characters and folded at ``width`` so the block can be
    laid out as preformatted text without running off the page.
    """
    lines = text.strip("\n").splitlines()
    if len(lines) > head + tail + 1:
        omitted = len(lines) - head - tail
        lines = [*lines[:head], f"    … {omitted} lines omitted …", *lines[-tail:]]
    out: list[str] = []
    for line in lines:
        line = shorten(line.rstrip().expandtabs(4), LINE_CAP)
        while len(line) > width:
            out.append(line[:width])
            line = "  " + line[width:]
        out.append(line)
    return "\n".join(out)


def cell_ranges(cells: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3–5, 9``."""
    nums = sorted(set(cells))
    parts: list[str] = []
    start = prev = None
    for n in [*nums, None]:
        if start is None:
            start = prev = n
        elif n is not None and prev is not None and n == prev + 1:
            prev = n
        else:
            parts.append(str(start) if start == prev else f"{start}–{prev}")
            start = prev = n
    return ", ".join(parts)


def expected_of(check: CheckResult) -> tuple[bool, Any]:
    """Whether the check's expected value may be shown, and the value as plain data."""
    if not check.show_expected or check.expected is None:
        return False, None
    return True, to_plain(check.expected)


def got_of(check: CheckResult) -> Any:
    """The student's answer as plain data (lists, not arrays), or None."""
    return None if check.got is None else to_plain(check.got)
