"""Similarity across a batch (grader/integrity/similarity.py, run.py): a batch of
independently written solutions plus one disguised copy flags exactly the copied pair."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.discover import discover
from grader.integrity import similarity_section
from grader.integrity.fingerprint import (
    code_fingerprints,
    normalise_python,
    text_fingerprints,
    text_tokens,
)
from grader.integrity.run import similarity_for_batch, similarity_from_index
from grader.integrity.settings import SimilaritySettings
from grader.integrity.similarity import COLUMNS, CSV_FILE, INDEX_FILE, compare, fingerprint_units
from grader.integrity.sources import Unit
from grader.report.summary import summary_html
from grader.rubric import load_rubric
from tests.integrity.batch import SOLUTIONS, submission, write_batch, write_rubric

INDEPENDENT = ("alice", "bob", "carol", "dave", "frank")


def rows(out: Path) -> list[dict[str, str]]:
    with (out / CSV_FILE).open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def flagged(out: Path) -> set[frozenset[str]]:
    return {
        frozenset((r["student_a"], r["student_b"])) for r in rows(out) if r["flagged"] == "true"
    }


@pytest.mark.parametrize("starter", [True, False], ids=["starter", "majority"])
def test_exactly_the_copied_pair_is_flagged(tmp_path: Path, starter: bool) -> None:
    subs = write_batch(tmp_path / "subs")
    rubric = load_rubric(write_rubric(tmp_path / "rubric", starter=starter))
    out = tmp_path / "out"
    out.mkdir()
    similarity_for_batch(discover(subs), rubric, out)
    assert flagged(out) == {frozenset(("alice", "erin"))}
    table = rows(out)
    copy = next(r for r in table if {r["student_a"], r["student_b"]} == {"alice", "erin"})
    assert float(copy["similarity"]) >= 0.9
    # the cells were reordered: alice's cross_entropy (cell 6) is erin's cell 8, and the
    # written answer matches too
    assert "cell 6 ↔ cell 8" in copy["evidence"]
    assert "answer Q4 ↔ answer Q4" in copy["evidence"]
    # every reported value is a similarity in [0, 1] at or above the floor
    for r in table:
        assert rubric.similarity.floor <= float(r["similarity"]) <= 1
    # independently written solutions sharing the given cells are not flagged
    for a in INDEPENDENT:
        for b in INDEPENDENT:
            assert frozenset((a, b)) not in flagged(out)


def test_students_sharing_only_the_starter_are_not_flagged(tmp_path: Path) -> None:
    subs = write_batch(tmp_path / "subs", ("alice", "bob", "carol"))
    # two hand-ins that are the student version with nothing done: only given code
    for student in ("gina", "hank"):
        folder = subs / student
        folder.mkdir()
        nb = submission("alice")
        nb["cells"] = [c for c in nb["cells"] if "given" in c["metadata"]["tags"]]
        (folder / "losses.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    rubric = load_rubric(write_rubric(tmp_path / "rubric"))
    out = tmp_path / "out"
    out.mkdir()
    pairs = similarity_for_batch(discover(subs), rubric, out)
    assert pairs == [] and rows(out) == []


def test_renaming_and_comments_do_not_change_code_fingerprints() -> None:
    one = "def f(x, y):\n    # add them\n    total = x + y  # sum\n    return total * 2\n"
    two = "def g(a, b):\n\n    s = a + b\n    return s * 2\n"
    assert code_fingerprints(one).hashes == code_fingerprints(two).hashes


def test_fingerprints_do_not_depend_on_the_process() -> None:
    """Kept in OUT and compared across runs: never Python's salted ``hash``."""
    code = "print(code_fingerprints(" + repr(SOLUTIONS["bob"]["softmax"]) + ").hashes)"
    script = "from grader.integrity.fingerprint import code_fingerprints\n" + code
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        seen.add(done.stdout)
    assert len(seen) == 1 and seen.pop().startswith("(")


def test_unspaced_scripts_are_compared_by_characters() -> None:
    tokens = [t for t, _ in text_tokens("减去最大值 keeps it stable")]
    assert tokens[:5] == ["减", "去", "最", "大", "值"] and tokens[5:] == ["keeps", "it", "stable"]
    answer = "减去每一行的最大值不会改变结果, 但可以避免指数溢出。"
    reworded = "减去每一行的最大值不会改变结果, 可是能避免指数溢出。"
    other = "因为数值稳定性很重要, 所以我们先做归一化处理。"
    shared = set(text_fingerprints(answer).hashes) & set(text_fingerprints(reworded).hashes)
    assert len(shared) >= 10
    assert not set(text_fingerprints(answer).hashes) & set(text_fingerprints(other).hashes)


def test_an_earlier_batch_is_compared_through_its_index(tmp_path: Path) -> None:
    rubric = load_rubric(write_rubric(tmp_path / "rubric"))
    old_out = tmp_path / "2025"
    old_out.mkdir()
    similarity_for_batch(discover(write_batch(tmp_path / "old", INDEPENDENT)), rubric, old_out)
    assert (old_out / INDEX_FILE).is_file()
    assert flagged(old_out) == set()
    # this year: erin hands in the disguised copy of last year's alice
    out = tmp_path / "2026"
    out.mkdir()
    subs = write_batch(tmp_path / "new", ("bob", "erin"))
    similarity_for_batch(discover(subs), rubric, out, compare_with=[old_out])
    # bob handed in the same as last year's bob (the generator writes the same notebook)
    assert flagged(out) == {frozenset(("erin", "2025/alice")), frozenset(("bob", "2025/bob"))}
    assert all("2025/" not in r["student_a"] or "2025/" not in r["student_b"] for r in rows(out))
    section = similarity_section(out)
    assert section is not None and section["compared_with"] == ["2025"]


def test_grade_report_compares_again_from_the_index_alone(tmp_path: Path) -> None:
    subs = write_batch(tmp_path / "subs")
    rubric = load_rubric(write_rubric(tmp_path / "rubric"))
    out = tmp_path / "out"
    out.mkdir()
    similarity_for_batch(discover(subs), rubric, out)
    before = (out / CSV_FILE).read_bytes()
    (out / CSV_FILE).unlink()
    for folder in (subs, tmp_path / "rubric"):  # no submission nor rubric is read
        for path in sorted(folder.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    assert similarity_from_index(out) is not None
    assert (out / CSV_FILE).read_bytes() == before


def test_the_summary_shows_the_matching_excerpts_side_by_side(tmp_path: Path) -> None:
    subs = write_batch(tmp_path / "subs")
    rubric = load_rubric(write_rubric(tmp_path / "rubric"))
    out = tmp_path / "out"
    out.mkdir()
    similarity_for_batch(discover(subs), rubric, out)
    section = similarity_section(out)
    assert section is not None
    assert [(p["student_a"], p["student_b"]) for p in section["flagged"]] == [("alice", "erin")]
    match = next(m for m in section["flagged"][0]["matches"] if m["unit_a"] == "cell 6")
    assert "picked = probs[np.arange(len(labels)), labels]" in match["excerpt_a"]
    assert "chosen = p[np.arange(len(y_idx)), y_idx]" in match["excerpt_b"]
    html = summary_html([], section)
    assert "Similar submissions" in html
    assert "picked = probs[np.arange(len(labels)), labels]" in html
    assert "chosen = p[np.arange(len(y_idx)), y_idx]" in html
    assert summary_html([]).count("Similar submissions") == 0


def test_two_one_liners_alike_are_too_little_to_flag() -> None:
    line = "def softmax(x):\n    return np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)\n"
    students = {s: fingerprint_units([Unit("code", "cell 2", line)]) for s in ("ann", "ben")}
    assert compare(students, set(), SimilaritySettings()) == []
    longer = line + "\n\ndef relu(x):\n    return np.maximum(x, 0.0)\n" * 2
    students = {s: fingerprint_units([Unit("code", "cell 2", longer)]) for s in ("ann", "ben")}
    assert [p.similarity for p in compare(students, set(), SimilaritySettings())] == [1.0]


def test_code_the_standard_tokenizer_cannot_read_is_normalised_by_copydetect() -> None:
    broken = "def f(values):\n    total = sum(values)\n    return total / len(values)\n  '''oops"
    assert normalise_python(broken) is None
    prints = code_fingerprints(broken)
    assert prints.hashes and set(prints.lines) <= {1, 2, 3, 4}
    renamed = broken.replace("values", "xs").replace("total", "s")
    assert set(code_fingerprints(renamed).hashes) == set(prints.hashes)
