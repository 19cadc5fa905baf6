"""OUT/index.html: written by every grade run, student strings escaped everywhere."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from grader.models import GradeRecord
from grader.overrides import OVERRIDES_FILE, save_override
from grader.review import dashboard
from grader.review.app import ReviewSession
from grader.review.dashboard import (
    SECTION_PROVIDERS,
    csp_hash,
    dashboard_html,
    json_for_html,
    write_dashboard,
)

EVIL = '</script><script>alert("x")</script><!--'


def test_every_grade_run_writes_the_dashboard(graded_three: Path) -> None:
    page = (graded_three / "index.html").read_text(encoding="utf-8")
    for student in ("ansari_seed", "crash_in_cell", "solution"):
        assert f'<td class="sid">{student}</td>' in page
        assert f'href="reports/{student}.pdf"' in page
    assert "24 answers awaiting review" in page  # 8 written answers × 3 students


def test_json_for_html_cannot_end_the_script_block() -> None:
    text = json_for_html({"name": EVIL, "sep": "a\u2028b"})
    assert "<" not in text and ">" not in text and "\u2028" not in text
    assert json.loads(text) == {"name": EVIL, "sep": "a\u2028b"}


def _evil(record: GradeRecord) -> GradeRecord:
    lms = {"layout": "plain", "name": EVIL, "email": "", "sis_id": "", "login_id": "",
           "section": "", "on_roster": None, "no_submission": False, "flags": [EVIL]}  # fmt: skip
    return dataclasses.replace(record, lms=lms)


def test_student_strings_are_escaped_in_the_table_and_the_data(out: Path) -> None:
    records = [_evil(r) for r in ReviewSession(out, "jdoe").records()]
    page = dashboard_html(records)
    scripts = re.findall(r"<script[^>]*>", page)
    assert scripts == ['<script type="application/json" id="dash-data">', "<script>"]
    assert 'alert("x")' not in page
    assert str(escape(EVIL)) in page  # shown as text in the table
    data = re.search(r'id="dash-data">(.*?)</script>', page, re.S)
    assert data is not None
    assert json.loads(data.group(1))["students"][0]["name"] == EVIL


def test_the_policy_allows_exactly_the_page_own_script_and_style(out: Path) -> None:
    page = dashboard_html(ReviewSession(out, "jdoe").records())
    policy = html.unescape(re.search(r'Content-Security-Policy" content="([^"]+)"', page)[1])  # type: ignore[index]
    script = re.findall(r"<script>(.*?)</script>", page, re.S)[0]
    style = re.findall(r"<style>(.*?)</style>", page, re.S)[0]
    assert f"script-src {csp_hash(script)};" in policy
    assert f"style-src {csp_hash(style)};" in policy
    assert policy.startswith("default-src 'none';")


@pytest.fixture
def provider() -> Iterator[None]:
    def similarity(records: object, out_dir: Path) -> dict[str, object]:
        return {"id": "similarity", "title": "Similar submissions", "note": "by tokens",
                "columns": ["A", "B", "Score"], "rows": [["solution", EVIL, 0.93]]}  # fmt: skip

    SECTION_PROVIDERS.append(similarity)
    yield
    SECTION_PROVIDERS.remove(similarity)


def test_extra_sections_from_plain_data(out: Path, provider: None) -> None:
    path = write_dashboard(out, ReviewSession(out, "jdoe").records())
    page = path.read_text(encoding="utf-8")
    section = page[page.index('<section class="extra" id="section-similarity">') :]
    assert "<h2>Similar submissions</h2>" in section
    assert f"<td>solution</td><td>{escape(EVIL)!s}</td><td>0.93</td>" in section
    assert 'alert("x")' not in page


def test_item_analysis_and_crashing_cells(out: Path) -> None:
    save_override(out / OVERRIDES_FILE, student="solution", check="Q1a", points=1.5, who="x")
    data = dashboard.dashboard_data(ReviewSession(out, "jdoe").records())
    q1a = next(c for c in data["checks"] if c["id"] == "Q1a")
    assert (q1a["n"], q1a["manual"]) == (3, 2)
    assert q1a["wrong"] == []  # an instructor's partial mark is not a wrong answer
    assert [c["count"] for c in data["crashes"]] == [1]  # crash_in_cell's one cell
    assert sum(b["count"] for b in data["histogram"]["bars"]) == 3


def test_similar_submissions_are_a_section(out: Path) -> None:
    records = ReviewSession(out, "jdoe").records()
    page = dashboard_html(records, sections=dashboard.provided_sections(records, out))
    assert "<h2>Similar submissions</h2>" in page  # every batch is compared
    (out / "similarity.json").unlink()
    page = dashboard_html(records, sections=dashboard.provided_sections(records, out))
    assert 'id="section-similarity"' not in page  # a folder never compared
    pairs = [
        {"student_a": "ansari_seed", "student_b": "solution", "similarity": 0.912,
         "flagged": True, "evidence": f"code {EVIL}", "matches": []},
        {"student_a": "crash_in_cell", "student_b": "solution", "similarity": 0.41,
         "flagged": False, "evidence": "text", "matches": []},
    ]  # fmt: skip
    (out / "similarity.json").write_text(
        json.dumps({"threshold": 0.8, "floor": 0.3, "students": 3, "pairs": pairs}),
        encoding="utf-8",
    )
    page = dashboard_html(records, sections=dashboard.provided_sections(records, out))
    section = page[page.index('id="section-similarity"') :]
    assert "2 pair(s) of 3 students at or above 0.3; flagged at 0.8" in section
    assert (
        f"<td>ansari_seed</td><td>solution</td><td>0.91</td><td>yes</td><td>code {escape(EVIL)!s}"
        in section
    )
    assert "<td>crash_in_cell</td><td>solution</td><td>0.41</td><td></td><td>text</td>" in section
    assert 'alert("x")' not in page
