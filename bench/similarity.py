"""Similarity of a generated batch (issue 18: 500 students in seconds, not minutes).

Run by hand from the project root::

    .venv/bin/python bench/similarity.py [--n 500] [--copies 10] [--baseline-n 80] [--seed 0]

Builds ``--n`` notebooks of one assignment in a temporary folder: the student version's
given cells (imports, data, public checks) and three solution cells each student writes
differently (statements drawn at random from a large pool of templates, with their own
names, constants and order) plus a written answer drawn from a word pool; ``--copies`` of
them are disguised copies of another student (names and comments changed, cells
reordered). Then, timed wall-clock in this run:

1. ours: :func:`grader.integrity.run.similarity_for_batch` over the whole batch, as
   ``grade`` runs it: reading the notebooks, fingerprinting, the index, the candidate
   pairs, scoring, writing ``similarity.csv``, ``similarity.json`` and the index;
2. baseline: every pair of a ``--baseline-n`` subset scored in full (the same per-pair
   scoring, without the index), its time per pair extrapolated to all n(n-1)/2 pairs
   of the batch, plus the same fingerprinting (timed again, its cache cleared); and the
   comparison alone, the index's against all pairs', from the same fingerprints.

Prints both times, their ratio, the pairs the index scored, and how many of the planted
copies were flagged (each should be).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.discover import discover
from grader.integrity.fingerprint import code_fingerprints
from grader.integrity.run import similarity_for_batch
from grader.integrity.similarity import (
    _kind_similarity,
    _student,
    compare,
    fingerprint_units,
)
from grader.integrity.sources import starter_units, submission_units
from grader.rubric import load_rubric
from tests.integrity.batch import write_rubric

NAMES = [
    "x",
    "y",
    "z",
    "a",
    "b",
    "v",
    "w",
    "arr",
    "data",
    "vals",
    "inp",
    "out",
    "res",
    "tmp",
    "acc",
    "score",
    "logit",
    "prob",
    "lab",
    "target",
    "pred",
    "row",
    "col",
    "idx",
    "n",
    "m",
    "k",
    "t",
    "total",
    "mx",
    "mn",
    "norm",
    "ex",
    "shift",
    "loss",
    "grad",
    "mask",
    "hits",
    "count",
    "mean",
]
TEMPLATES = [
    "{a} = {b} - {b}.max(axis={ax}, keepdims=True)",
    "{a} = np.exp({b})",
    "{a} = {b} / {c}.sum(axis={ax}, keepdims=True)",
    "{a} = np.log({b} + {eps})",
    "{a} = np.clip({b}, {eps}, 1 - {eps})",
    "{a} = {b}[np.arange(len({c})), {c}]",
    "{a} = -np.mean({b})",
    "{a} = float({b}.sum()) / max(1, len({c}))",
    "{a} = np.argmax({b}, axis={ax})",
    "{a} = ({b} == {c}).astype(float)",
    "{a} = np.zeros_like({b})",
    "for {i} in range(len({b})):\n        {a}[{i}] = {b}[{i}] * {k}",
    "if {a}.ndim == 1:\n        {a} = {a}[None, :]",
    "{a} = np.asarray({b}, dtype=np.float{bits})",
    "{a} = {b}.reshape(-1, {c}.shape[-1])",
    "{a} = np.where({b} > {k}, {b}, {k})",
    "{a} = {b} ** 2 + {k} * {c}",
    "{a} = sorted({b}, key=lambda q: -q)[:{kk}]",
    "{a} = [{b}[{i}] for {i} in range(min({kk}, len({b})))]",
    "{a} = np.einsum('ij,ij->i', {b}, {c})",
    "while {a} > {k}:\n        {a} = {a} / {kk}",
    "{a} = {b}.T @ {c}",
    "{a} = np.sqrt(({b} ** 2).sum(axis={ax}))",
    "assert {a}.shape[0] == {b}.shape[0], 'shapes differ'",
    "{a} = dict(zip(range({kk}), {b}))",
    "{a} = {b}.copy()\n    {a}[{a} < 0] = 0",
    "{a} = np.cumsum({b}, axis={ax})",
    "{a} = np.maximum({b}, {c}.min())",
]
WORDS = [
    "overflow",
    "exponent",
    "maximum",
    "stable",
    "subtract",
    "constant",
    "softmax",
    "invariant",
    "logits",
    "large",
    "numerator",
    "denominator",
    "cancel",
    "ratio",
    "infinity",
    "float",
    "precision",
    "shift",
    "rows",
    "bounded",
    "values",
    "probabilities",
    "safe",
    "because",
    "therefore",
    "identical",
    "change",
    "result",
    "equal",
    "every",
    "sample",
    "entry",
    "avoid",
    "nan",
    "division",
    "largest",
    "smallest",
    "numbers",
    "computer",
    "representation",
    "range",
    "trick",
]
SETUP = "import numpy as np\n\nrng = np.random.default_rng(0)\nX = rng.normal(size=(8, 5))\n"
PUBLIC = "assert np.allclose(softmax(X).sum(axis=1), 1.0)\nprint('ok')\n"
FUNCS = ("softmax", "cross_entropy", "accuracy")


def _function(name: str, rnd: random.Random, names: list[str]) -> str:
    args = rnd.sample(names, 2)
    body = []
    for template in rnd.sample(TEMPLATES, rnd.randint(5, 9)):
        a, b, c, i = rnd.sample(names, 4)
        # half of the one-line assignments get a student's own term: independent students
        # share some statements after normalisation, as real ones share idioms
        tweak = (
            f" + {rnd.randint(2, 999)}"
            if template.startswith("{a} = ") and "\n" not in template and rnd.random() < 0.5
            else ""
        )
        body.append(
            "    "
            + (template + tweak).format(
                a=a,
                b=b,
                c=c,
                i=i,
                ax=rnd.choice((0, 1, -1)),
                eps=rnd.choice(("1e-12", "1e-9")),
                k=rnd.randint(2, 99),
                kk=rnd.randint(2, 9),
                bits=rnd.choice((32, 64)),
            )
        )
    return f"def {name}({args[0]}, {args[1]}):\n" + "\n".join(body) + f"\n    return {args[0]}\n"


def _cell(kind: str, source: str, given: bool = False) -> dict[str, object]:
    cell: dict[str, object] = {
        "cell_type": kind,
        "metadata": {"tags": ["given"] if given else []},
        "source": source,
    }
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook(cells: list[dict[str, object]]) -> dict[str, object]:
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}


def _write_student(rnd: random.Random) -> list[dict[str, object]]:
    names = rnd.sample(NAMES, 14)
    cells = [_cell("markdown", "# Losses", True), _cell("code", SETUP, True)]
    for name in FUNCS:
        cells += [_cell("markdown", f"## {name}", True), _cell("code", _function(name, rnd, names))]
    cells += [_cell("code", PUBLIC, True), _cell("markdown", "### Q4 Why subtract the max?", True)]
    cells.append(_cell("markdown", " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(30, 60)))))
    return cells


def _disguise(cells: list[dict[str, object]], rnd: random.Random) -> list[dict[str, object]]:
    """Rename every pool name, add comments, swap two solution cells."""
    renamed = {n: f"my_{n}_{rnd.randint(0, 9)}" for n in NAMES}
    out = []
    for cell in cells:
        source = str(cell["source"])
        if cell["cell_type"] == "code" and not cell["metadata"]["tags"]:  # type: ignore[index]
            lines = []
            for line in source.splitlines():
                for old, new in renamed.items():
                    line = _replace_word(line, old, new)
                lines.append(line + ("  # my step" if rnd.random() < 0.3 else ""))
            source = "\n".join(lines) + "\n"
        out.append({**cell, "source": source})
    out[3], out[7] = out[7], out[3]
    return out


def _replace_word(line: str, old: str, new: str) -> str:
    import re

    return re.sub(rf"\b{re.escape(old)}\b", new, line)


def student_version() -> dict[str, object]:
    """The bench assignment's student version: given cells tagged, solutions empty."""
    cells = [_cell("markdown", "# Losses", True), _cell("code", SETUP, True)]
    for name in FUNCS:
        cells += [_cell("markdown", f"## {name}", True), _cell("code", "# YOUR CODE HERE")]
    cells += [_cell("code", PUBLIC, True), _cell("markdown", "### Q4 Why subtract the max?", True)]
    cells.append(_cell("markdown", "YOUR ANSWER HERE"))
    return _notebook(cells)


def build(root: Path, n: int, copies: int, seed: int) -> list[tuple[str, str]]:
    """Write ``n`` submissions; return the (original, copy) pairs planted."""
    rnd = random.Random(seed)
    notebooks = {f"s{i:04d}": _write_student(rnd) for i in range(n - copies)}
    planted = []
    originals = sorted(notebooks)
    for j in range(copies):
        source = rnd.choice(originals)
        copy_id = f"c{j:04d}"
        notebooks[copy_id] = _disguise(notebooks[source], rnd)
        planted.append((source, copy_id))
    for student, cells in notebooks.items():
        (root / student).mkdir(parents=True)
        (root / student / "losses.ipynb").write_text(json.dumps(_notebook(cells)))
    return planted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--baseline-n", type=int, default=80)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        planted = build(root / "subs", args.n, args.copies, args.seed)
        rubric_path = write_rubric(root / "rubric")
        (root / "rubric" / "student" / "losses.ipynb").write_text(json.dumps(student_version()))
        rubric = load_rubric(rubric_path)
        subs = discover(root / "subs")
        (root / "out").mkdir()
        started = time.perf_counter()
        pairs = similarity_for_batch(subs, rubric, root / "out")
        ours = time.perf_counter() - started

        # baseline: fingerprint everything the same way (not from ours' cache), then score
        # every pair in full
        code_fingerprints.cache_clear()
        started = time.perf_counter()
        given = {
            h
            for u in fingerprint_units(starter_units(rubric_path, rubric.similarity.starter))
            for h in u.prints.hashes
        }
        printed = {
            s.student: fingerprint_units(submission_units(s, "losses.ipynb", ("Q4",))) for s in subs
        }
        people = [_student(sid, units, given) for sid, units in printed.items()]
        fingerprinting = time.perf_counter() - started
        started = time.perf_counter()
        compare(printed, given, rubric.similarity)
        indexed = time.perf_counter() - started
        subset = people[: args.baseline_n]
        started = time.perf_counter()
        scored = 0
        for i, a in enumerate(subset):
            for b in subset[i + 1 :]:
                _kind_similarity(a, b, "code")
                _kind_similarity(a, b, "text")
                scored += 1
        per_pair = (time.perf_counter() - started) / scored
        all_pairs = args.n * (args.n - 1) // 2
        baseline = fingerprinting + per_pair * all_pairs

    found = {frozenset((p.a, p.b)) for p in pairs if p.flagged}
    hits = sum(1 for a, b in planted if frozenset((a, b)) in found)
    print(f"students: {args.n}, planted copies: {len(planted)}, flagged pairs: {len(found)}")
    print(f"ours (index, whole stage incl. reading and writing): {ours:.2f} s")
    print(
        f"baseline (same fingerprints, all {all_pairs} pairs scored in full; "
        f"{per_pair * 1e6:.0f} µs/pair over {scored} pairs of {args.baseline_n}, "
        f"extrapolated): {baseline:.2f} s"
    )
    print(f"ratio baseline / ours: {baseline / ours:.1f}x")
    pairwise = per_pair * all_pairs
    print(
        f"comparison alone (fingerprints ready): index {indexed:.2f} s, all pairs "
        f"{pairwise:.2f} s: {pairwise / indexed:.1f}x"
    )
    print(f"planted copies flagged: {hits} of {len(planted)}")


if __name__ == "__main__":
    main()
