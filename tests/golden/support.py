"""What every golden test shares: grade a rubric's sample batch as a user would, and
compare each check's points and status with the expectations written by hand in
``tests/golden/<rubric>/<student>.yaml`` (never captured from the grader's output).

Adding an assignment adds files, not a test module: its sample submissions under
``submissions/<rubric>/`` and one expectation file per sample under
``tests/golden/<rubric>/``, each ``{total: N, checks: {id: {points, status}}}`` with the
reasoning from the handout in its comments. ``tests/test_golden.py`` finds them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"


@dataclass(frozen=True)
class Expectation:
    """One sample's hand-written grade: its total and each check's (points, status)."""

    student: str
    total: float
    checks: dict[str, tuple[float, str]]


def golden_rubrics() -> list[str]:
    """Every rubric with hand-written expectations (a folder of YAML files here)."""
    return sorted(d.name for d in GOLDEN.iterdir() if d.is_dir() and any(d.glob("*.yaml")))


def load_golden(rubric: str) -> dict[str, Expectation]:
    """The hand-written expectations of ``rubric``'s samples, by student id."""
    found: dict[str, Expectation] = {}
    for path in sorted((GOLDEN / rubric).glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or set(data) != {"total", "checks"}:
            raise ValueError(f"{path}: expected the keys total and checks")
        checks = {
            str(cid): (float(exp["points"]), str(exp["status"]))
            for cid, exp in data["checks"].items()
        }
        found[path.stem] = Expectation(path.stem, float(data["total"]), checks)
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def graded(rubric: str, factory: pytest.TempPathFactory) -> Path:
    """``rubric``'s sample batch graded into a folder shared by every test process.

    Under pytest-xdist each worker has its own temporary folder; their parent is shared
    for the session. The first process to ask grades the batch (under a lock); later
    ones run ``grade`` again on the same folder, which the grader's own incremental
    regrade answers from its results and cache without starting a kernel.
    """
    base = factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    out = shared / f"golden-{rubric}"
    with _locked(shared / f"golden-{rubric}.lock"):
        return grade_samples(rubric, out, "--jobs", "2")


def grade_samples(rubric: str, out: Path, *options: str) -> Path:
    """``grade submissions/<rubric> --rubric <rubric> --out OUT --no-reports [options]``."""
    argv = [str(ROOT / "submissions" / rubric), "--rubric", rubric, "--out", str(out)]
    assert main([*argv, "--no-reports", *options]) == 0
    return out


def result(batch: Path, student: str) -> dict[str, Any]:
    """One student's results JSON."""
    data: dict[str, Any] = json.loads((batch / "results" / f"{student}.json").read_text())
    return data


def checks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A results record's checks by id."""
    return {c["id"]: c for q in record["questions"] for c in q["checks"]}


def points_and_statuses(record: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """A results record's (score, status) by check id."""
    return {cid: (c["score"], c["status"]) for cid, c in checks(record).items()}


def golden_mismatches(batch: Path, expectation: Expectation) -> dict[str, Any]:
    """Every check whose (points, status) differs from the hand-written expectation, with
    its message; the check ids and the total are compared too. Empty when all agree."""
    record = result(batch, expectation.student)
    got = checks(record)
    problems: dict[str, Any] = {}
    if sorted(got) != sorted(expectation.checks):
        problems["check ids"] = {"expected": sorted(expectation.checks), "got": sorted(got)}
    for cid, exp in expectation.checks.items():
        mine = got.get(cid)
        if mine is None or (mine["score"], mine["status"]) != exp:
            problems[cid] = {
                "expected": exp,
                "got": None if mine is None else (mine["score"], mine["status"]),
                "message": None if mine is None else mine["message"],
            }
    if record["score"] != expectation.total:
        problems["total"] = {"expected": expectation.total, "got": record["score"]}
    return problems
