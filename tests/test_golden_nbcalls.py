"""End to end: a notebook assignment whose functions are defined in the notebook.

``tests/data/nbcalls/hw5.yaml`` checks ``attention`` (a ``function`` check with
``source: notebook``) and ``dropout`` (a ``statistical`` check, notebook by default: the
rubric names no module) on hidden cases, called in each student's own kernel after the
notebook ran. The samples under ``tests/data/nbcalls/submissions/`` (made by
``make_samples.py`` there) are graded with ``grade`` as a user would, and each check's
points and status compared with ``tests/data/nbcalls/expected/<student>.yaml``, written
by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grader.cli import main
from tests.golden.support import Expectation, checks, golden_mismatches, result

DATA = Path(__file__).resolve().parent / "data" / "nbcalls"
RUBRIC = DATA / "hw5.yaml"


def expectations() -> dict[str, Expectation]:
    found = {}
    for path in sorted((DATA / "expected").glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        found[path.stem] = Expectation(
            path.stem,
            float(data["total"]),
            {c: (float(e["points"]), str(e["status"])) for c, e in data["checks"].items()},
        )
    return found


EXPECTED = expectations()


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nbcalls")
    argv = [str(DATA / "submissions"), "--rubric", str(RUBRIC), "--out", str(out)]
    assert main([*argv, "--no-reports", "--jobs", "2"]) == 0
    return out


def test_every_sample_has_an_expectation() -> None:
    samples = sorted(p.name for p in (DATA / "submissions").iterdir() if p.is_dir())
    assert samples == sorted(EXPECTED)


@pytest.mark.parametrize("student", sorted(EXPECTED))
def test_points_and_statuses_as_written_by_hand(batch: Path, student: str) -> None:
    assert golden_mismatches(batch, EXPECTED[student]) == {}


def test_what_the_students_read(batch: Path) -> None:
    missing = checks(result(batch, "missing_attention"))["attention"]
    assert missing["message"] == "attention is not defined in hw5.ipynb"
    crash = checks(result(batch, "crashes_kernel"))
    assert crash["attention"]["message"] == (
        "case 'batch of one, one query': attention stopped the kernel (the kernel process "
        "exited with code 1)"
    )
    wrong = checks(result(batch, "wrong_formula"))["attention"]
    assert wrong["message"].startswith("case 'batch of one, one query': ")
