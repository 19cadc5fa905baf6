"""Shared fixtures of the review tests: three HW3 students graded once per session."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from grader.cli import main
from grader.marks.embed import Encoder, Vectors

ROOT = Path(__file__).resolve().parents[2]
#: A correct submission, one with a long written answer, one whose cell crashes.
STUDENTS = ("ansari_seed", "crash_in_cell", "solution")


@pytest.fixture(scope="session")
def graded_three(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``grade`` of three HW3 students (no reports), once per session; copy it before
    changing it (:func:`out`)."""
    base = tmp_path_factory.mktemp("hw3-three")
    subs = base / "submissions"
    for student in STUDENTS:
        shutil.copytree(ROOT / "submissions" / "hw3" / student, subs / student)
    out = base / "graded"
    assert main([str(subs), "--rubric", "hw3", "--out", str(out), "--no-reports", "--quiet"]) == 0
    return out


@pytest.fixture
def out(graded_three: Path, tmp_path: Path) -> Path:
    """A private copy of the graded folder."""
    target = tmp_path / "graded"
    shutil.copytree(graded_three, target)
    return target


# ------------------------------------------------- suggestions that learn (grader.review.learn)

#: Q1a answers of a synthetic class: the first three are one answer, written three times.
SAME = "The loss diverges and explodes to NaN. You see it on the training loss curve."
Q1A_ANSWERS = {
    "s01": SAME,
    "s02": SAME,
    "s03": SAME,
    "s04": "Training becomes very slow.",
    "s05": "The updates overshoot the minimum, so the loss oscillates. Monitor the loss plot.",
    "s06": "It is unstable; gradients explode. I would look at the validation loss.",
    "s07": "The model learns nothing useful and the accuracy stays low.",
    "s08": "Weights become huge and training fails; the loss spikes.",
    "s09": "The learning rate is too high so the model does not converge well at all.",
    "s10": "学习率太高时损失会发散，训练损失曲线会上升。",  # noqa: RUF001 - Chinese punctuation
}


class BagOfWords:
    """A stand-in encoder (no model): each word hashed to one of 64 axes, rows
    normalised; the same words give the same vector."""

    name = "bag of words (tests)"

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[i, hashlib.sha256(word.encode()).digest()[0] % 64] += 1.0
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-12)
        return out


@pytest.fixture(scope="session")
def e5() -> Encoder:
    """The real model, loaded once for the session (the process's shared encoder): the
    only fixture of the review tests that loads it."""
    from grader.marks.embed import default_encoder

    encoder = default_encoder()
    encoder.encode(["load"])
    return encoder


def make_class(out: Path, answers: dict[str, str], check: str = "Q1a") -> None:
    """Turn the graded folder ``out`` into a class of ``answers`` to ``check``: one
    result per student, copied from the solution's with its answer replaced."""
    results = out / "results"
    template = json.loads((results / "solution.json").read_text(encoding="utf-8"))
    for path in results.glob("*.json"):
        path.unlink()
    for student, text in answers.items():
        record = json.loads(json.dumps(template))
        record["student"] = student
        for question in record["questions"]:
            for result in question["checks"]:
                if result["id"] == check:
                    result["details"]["answer"] = text
        (results / f"{student}.json").write_text(json.dumps(record), encoding="utf-8")


@pytest.fixture
def klass(out: Path) -> Path:
    """A private graded folder holding the synthetic class :data:`Q1A_ANSWERS`."""
    make_class(out, Q1A_ANSWERS)
    return out
