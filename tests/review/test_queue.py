"""The review queues: what awaits review, by check, in a pluggable order."""

from __future__ import annotations

import json
from pathlib import Path

from grader.overrides import OVERRIDES_FILE, save_override
from grader.review.app import ReviewSession
from grader.review.queue import (
    Item,
    build_queues,
    pseudonym,
    safe_figure,
    student_order,
    with_group,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 8


def test_queues_hold_every_written_answer_by_check(out: Path) -> None:
    queues = build_queues(ReviewSession(out, "jdoe").records())
    # HW3's eight written answers, in rubric order; every student wrote all of them
    assert list(queues) == ["Q1a", "Q1b", "Q1c", "Q1d", "Q6a", "Q6b", "Q6c", "Q6d"]
    q1a = queues["Q1a"]
    assert [i.student for i in q1a] == ["ansari_seed", "crash_in_cell", "solution"]
    first = q1a[0]
    assert first.prompt.startswith("What goes wrong when the learning rate is too high")
    saved = json.loads((out / "results" / "ansari_seed.json").read_text(encoding="utf-8"))
    q1a_saved = next(c for q in saved["questions"] for c in q["checks"] if c["id"] == "Q1a")
    assert first.answer == q1a_saved["details"]["answer"]  # the student's own words
    assert first.concepts and all(c.name for c in first.concepts)
    assert (first.suggested, first.max_score, first.mark) == (3.0, 3.0, None)


def test_a_marked_answer_stays_in_its_queue_with_its_mark(out: Path) -> None:
    save_override(out / OVERRIDES_FILE, student="solution", check="Q1a", points=1.5,
                  comment="Half.", who="jdoe")  # fmt: skip
    q1a = build_queues(ReviewSession(out, "jdoe").records())["Q1a"]
    marked = next(i for i in q1a if i.student == "solution")
    assert (marked.reviewed, marked.mark, marked.comment, marked.suggested) == (
        True, 1.5, "Half.", 3.0,
    )  # fmt: skip
    assert [i.reviewed for i in q1a].count(False) == 2


def test_the_order_is_a_plugin(out: Path) -> None:
    records = ReviewSession(out, "jdoe").records()

    def longest_first(items: list[Item]) -> list[Item]:
        return sorted(items, key=lambda i: -len(i.answer))

    default = build_queues(records)["Q1a"]
    plugged = build_queues(records, order=longest_first)["Q1a"]
    assert default == student_order(list(reversed(default)))
    assert [len(i.answer) for i in plugged] == sorted(
        (len(i.answer) for i in default), reverse=True
    )
    grouped = with_group(default, {"solution": "g1"})
    assert [i.group for i in grouped] == [None, None, "g1"]


def test_pseudonyms_hide_ids_and_differ_by_session() -> None:
    a, b = pseudonym(b"k1", "alice"), pseudonym(b"k2", "alice")
    assert a != b and "alice" not in a and a == pseudonym(b"k1", "alice")


def test_figures_are_png_or_jpeg_only() -> None:
    assert (safe_figure(PNG) or "").startswith("data:image/png;base64,")
    assert (safe_figure(JPEG) or "").startswith("data:image/jpeg;base64,")
    assert safe_figure(b'<svg xmlns="http://www.w3.org/2000/svg"><script>x</script></svg>') is None
    assert safe_figure(b"<html><script>alert(1)</script></html>") is None
