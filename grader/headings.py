"""Markdown headings as answers are found under them, shared by every reader.

A text answer's ``heading: Q1a`` (:mod:`grader.checks.text`), a figure's heading and a
cell time budget's ``{heading: Q7}`` (:mod:`grader.sandbox.limits`, resolved by the
notebook runner) all match headings the same way: the heading's text starts with the
part's letters and digits, whatever punctuation or spaces lie between them
(``Q1a`` finds ``Q1 (a)``, ``Q1 a)``, ``q1-a``). Plain ``re`` only: the sandbox imports it.
"""

from __future__ import annotations

import re

#: A Markdown ATX heading line: its ``#`` run and its text (closing ``#`` dropped).
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")


def heading_pattern(part: str) -> re.Pattern[str]:
    """A regex matching headings that start with ``part`` (``Q1a`` ≡ ``Q1 a)`` ≡ ``Q1 (a)``)."""
    tokens = re.findall(r"[A-Za-z]+|\d+", part)
    body = r"[\s\-_.:]*[(\[]?\s*".join(re.escape(t) for t in tokens)
    return re.compile(r"^\W*" + body + r"(?![A-Za-z0-9])", re.IGNORECASE)


def heading_matches(line: str, part: str) -> bool:
    """Whether the Markdown heading ``line`` (``### Q7 (b) Training``) is one for ``part``."""
    match = HEADING.match(line.strip())
    return bool(match and heading_pattern(part).match(match.group(2)))
