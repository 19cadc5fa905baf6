"""The class summary PDF: distribution, pass rates, hardest checks, problems, reviews."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from pypdf import PdfReader

from grader.models import GradeRecord
from grader.report.samples import sample_record
from grader.report.summary import render_summary, summary_html, summary_view
from grader.results import record_from_dict

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "grader" / "schema" / "result.schema.json").read_text())


def class_dicts() -> list[dict[str, Any]]:
    """The class's results as written to disk (valid against the published schema)."""
    records = [sample_record(f"s{i:02d}", seed=i, traceback_lines=0) for i in range(10)]
    records.append(sample_record("crash01", seed=20, traceback_lines=30))
    timeout = sample_record("slow01", seed=21, traceback_lines=0)
    timeout["execution"].update(
        timed_out=True,
        failures=[
            {
                "cell": 9,
                "kind": "timeout",
                "ename": "CellTimeoutError",
                "evalue": "30 s",
                "traceback": "",
            }
        ],
        cells_not_run=[10, 11],
    )
    records.append(timeout)
    died = sample_record("oom01", seed=22, traceback_lines=0)
    died["execution"].update(kernel_died=True, limit_hit="memory 4 GiB")
    records.append(died)
    for r in records:
        jsonschema.validate(r, SCHEMA)
    return records


def class_records() -> list[GradeRecord]:
    return [record_from_dict(r) for r in class_dicts()]


def test_summary_pdf_sections(tmp_path: Path) -> None:
    records = class_records()
    out = tmp_path / "summary.pdf"
    render_summary(records, out)
    text = re.sub(r"\s+", " ", "\n".join(p.extract_text() or "" for p in PdfReader(out).pages))
    for heading in (
        "class summary",
        "Score distribution",
        "Questions",
        "Checks",
        "Hardest checks",
        "Submissions that crashed or timed out",
        "Answers awaiting review",
    ):
        assert heading in text
    assert "total score (%)" in text  # the histogram's axis label (SVG text)
    for student in ("crash01", "slow01", "oom01"):
        assert student in text
    assert "timed out" in text and "kernel died" in text
    assert "Students" in text and str(len(records)) in text
    assert len(PdfReader(out).pages) <= 6


def test_summary_embeds_svg_figures() -> None:
    html = summary_html(class_records())
    assert html.count('src="data:image/svg+xml;base64,') == 2


def test_summary_numbers() -> None:
    records = class_records()
    view = summary_view(records)
    checks = {c["id"]: c for c in view["checks"]}
    q2o = checks["q2_O"]
    assert q2o["n"] == len(records)
    passed = sum(
        1
        for r in records
        for q in r.questions
        for c in q.checks
        if c.id == "q2_O" and c.status == "pass"
    )
    assert q2o["pass"] == passed
    assert abs(q2o["pass_pct"] - 100 * passed / len(records)) < 1e-9
    # text checks are awaiting review for every student, never "hardest"
    assert checks["Q1a"]["manual"] == len(records)
    assert all(c["id"] not in ("Q1a", "Q1b") for c in view["hardest"])
    assert view["n_review"] == 2 * len(records)
    # the hardest checks come with their most common wrong answers, counted
    hardest = view["hardest"]
    assert hardest and all(c["wrong"] for c in hardest)
    assert hardest == sorted(hardest, key=lambda c: (c["mean_pct"], c["id"]))
    shape = checks["q3_table"]
    if shape["n_wrong"]:
        assert any(w["answer"].startswith("row ") for w in shape["wrong"])
    assert {p["student"] for p in view["problems"]} == {"crash01", "slow01", "oom01"}


def test_empty_class(tmp_path: Path) -> None:
    out = tmp_path / "empty.pdf"
    render_summary([], out)
    assert out.stat().st_size > 0
