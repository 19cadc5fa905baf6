"""A small assignment and a batch of submissions to it, written for the integrity tests.

The task: ``softmax``, ``cross_entropy`` and ``accuracy`` in NumPy, and a written answer
(why subtract the maximum). Four students solve it independently, each in their own way;
``erin`` copied ``alice``: variables renamed, comments rewritten, cells reordered and the
written answer lightly reworded. ``frank`` solved it on his own but edited a given cell.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

INTRO = "# Losses\nImplement the three functions below with NumPy only."
SETUP = (
    "import numpy as np\n"
    "\n"
    "rng = np.random.default_rng(0)\n"
    "X = rng.normal(size=(8, 5))\n"
    "y = rng.integers(0, 5, size=8)\n"
)
PUBLIC = (
    "assert np.allclose(softmax(X).sum(axis=1), 1.0)\n"
    "assert cross_entropy(X, y) > 0\n"
    "assert 0.0 <= accuracy(X, y) <= 1.0\n"
    "print('public checks passed')\n"
)
PLACEHOLDER = "# YOUR CODE HERE\nraise NotImplementedError()"
QUESTION = "### Q4 Why subtract the maximum?"

SOLUTIONS: dict[str, dict[str, str]] = {
    "alice": {
        "softmax": (
            "def softmax(logits):\n"
            "    # shift by the row maximum so that exp never overflows\n"
            "    shifted = logits - logits.max(axis=1, keepdims=True)\n"
            "    exps = np.exp(shifted)\n"
            "    return exps / exps.sum(axis=1, keepdims=True)\n"
        ),
        "cross_entropy": (
            "def cross_entropy(logits, labels):\n"
            "    probs = softmax(logits)\n"
            "    picked = probs[np.arange(len(labels)), labels]\n"
            "    # mean negative log-likelihood over the batch\n"
            "    return float(-np.log(picked + 1e-12).mean())\n"
        ),
        "accuracy": (
            "def accuracy(logits, labels):\n"
            "    predictions = np.argmax(logits, axis=1)\n"
            "    return float(np.mean(predictions == labels))\n"
        ),
        "answer": (
            "Exponentials of large logits overflow to infinity in floating point. "
            "Subtracting the row maximum leaves the softmax unchanged, because the common "
            "factor cancels between numerator and denominator, and makes the largest "
            "exponent exactly one, so nothing overflows."
        ),
    },
    "bob": {
        "softmax": (
            "def softmax(z):\n"
            "    out = np.zeros_like(z, dtype=float)\n"
            "    for i in range(z.shape[0]):\n"
            "        row = z[i]\n"
            "        m = max(row)\n"
            "        total = 0.0\n"
            "        for j in range(len(row)):\n"
            "            out[i, j] = np.exp(row[j] - m)\n"
            "            total += out[i, j]\n"
            "        out[i] /= total\n"
            "    return out\n"
        ),
        "cross_entropy": (
            "def cross_entropy(z, t):\n"
            "    p = softmax(z)\n"
            "    loss = 0.0\n"
            "    for i, label in enumerate(t):\n"
            "        loss -= np.log(p[i][label])\n"
            "    return loss / len(t)\n"
        ),
        "accuracy": (
            "def accuracy(z, t):\n"
            "    hits = 0\n"
            "    for row, label in zip(z, t):\n"
            "        if list(row).index(max(row)) == label:\n"
            "            hits += 1\n"
            "    return hits / len(t)\n"
        ),
        "answer": (
            "I subtract the max for numerical stability. Without it exp(1000) is inf and "
            "we would get nan after dividing inf by inf. The result does not change since "
            "softmax is invariant to adding a constant to every input."
        ),
    },
    "carol": {
        "softmax": (
            "def logsumexp(a):\n"
            "    top = np.max(a, axis=-1, keepdims=True)\n"
            "    return top + np.log(np.sum(np.exp(a - top), axis=-1, keepdims=True))\n"
            "\n"
            "\n"
            "def softmax(a):\n"
            "    '''Row-wise softmax through the log-sum-exp trick.'''\n"
            "    return np.exp(a - logsumexp(a))\n"
        ),
        "cross_entropy": (
            "def cross_entropy(a, targets):\n"
            "    log_probs = a - logsumexp(a)\n"
            "    onehot = np.eye(a.shape[1])[targets]\n"
            "    return -np.sum(onehot * log_probs) / a.shape[0]\n"
        ),
        "accuracy": (
            "def accuracy(a, targets):\n"
            "    correct = np.count_nonzero(a.argmax(-1) == np.asarray(targets))\n"
            "    return correct / np.asarray(targets).size\n"
        ),
        "answer": (
            "Because softmax(x) equals softmax(x - c) for any constant c we are free to "
            "pick c as the largest entry. Then every exponent is at most zero, the exp "
            "values stay between zero and one, and the sum is at least one, so there is "
            "neither overflow nor division by zero."
        ),
    },
    "dave": {
        "softmax": (
            "softmax = lambda v: (lambda e: e / e.sum(1)[:, None])(np.exp(v - v.max(1)[:, None]))\n"
        ),
        "cross_entropy": (
            "def cross_entropy(v, cls):\n"
            "    n = v.shape[0]\n"
            "    lse = np.log(np.exp(v - v.max(1)[:, None]).sum(1)) + v.max(1)\n"
            "    return np.mean(lse - v[range(n), cls])\n"
        ),
        "accuracy": (
            "def accuracy(v, cls):\n    return (v.argmax(1) == cls).sum() / float(len(cls))\n"
        ),
        "answer": (
            "Large scores make np.exp return inf. Taking away the biggest score first is "
            "safe: the ratio of exponentials only depends on differences between scores."
        ),
    },
    "frank": {
        "softmax": (
            "def softmax(scores):\n"
            "    scores = np.asarray(scores, dtype=np.float64)\n"
            "    stable = scores - np.amax(scores, axis=1).reshape(-1, 1)\n"
            "    numerator = np.exp(stable)\n"
            "    denominator = np.sum(numerator, axis=1).reshape(-1, 1)\n"
            "    return numerator / denominator\n"
        ),
        "cross_entropy": (
            "def cross_entropy(scores, y_true):\n"
            "    probabilities = softmax(scores)\n"
            "    rows = np.arange(scores.shape[0])\n"
            "    nll = -np.log(np.clip(probabilities[rows, y_true], 1e-15, 1.0))\n"
            "    return nll.sum() / scores.shape[0]\n"
        ),
        "accuracy": (
            "def accuracy(scores, y_true):\n"
            "    guess = scores.argmax(axis=1)\n"
            "    right = [int(g == t) for g, t in zip(guess, y_true)]\n"
            "    return sum(right) / len(right)\n"
        ),
        "answer": (
            "Overflow. In float64 exp overflows above about 709 so big logits produce inf "
            "values; shifting all logits of a sample by the same amount is harmless for "
            "the probabilities and keeps the exponentials bounded."
        ),
    },
}

# erin copied alice: renamed everything, rewrote the comments, reordered the cells.
SOLUTIONS["erin"] = {
    "softmax": (
        "def softmax(scores_in):\n"
        "    # numerically stable version: take away the largest value per row\n"
        "    centred = scores_in - scores_in.max(axis=1, keepdims=True)\n"
        "    e = np.exp(centred)\n"
        "    return e / e.sum(axis=1, keepdims=True)\n"
    ),
    "cross_entropy": (
        "def cross_entropy(scores_in, y_idx):\n"
        "    p = softmax(scores_in)\n"
        "    chosen = p[np.arange(len(y_idx)), y_idx]\n"
        "    # average NLL\n"
        "    return float(-np.log(chosen + 1e-12).mean())\n"
    ),
    "accuracy": (
        "def accuracy(scores_in, y_idx):\n"
        "    guessed = np.argmax(scores_in, axis=1)\n"
        "    return float(np.mean(guessed == y_idx))\n"
    ),
    "answer": (
        "Exponentials of big logits overflow to infinity in floating point. "
        "Subtracting the row maximum leaves the softmax unchanged, because the common "
        "factor cancels between numerator and denominator, and makes the biggest "
        "exponent exactly one, so nothing overflows."
    ),
}

QUESTIONS = ("softmax", "cross_entropy", "accuracy")


def _cell(kind: str, source: str, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "metadata": {"tags": list(tags)}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def _notebook(cells: list[dict[str, Any]]) -> dict[str, Any]:
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def student_version() -> dict[str, Any]:
    """The student version as ``grade assign`` writes it: given cells tagged."""
    g = ("given",)
    cells = [_cell("markdown", INTRO, g), _cell("code", SETUP, g)]
    for name in QUESTIONS:
        cells.append(_cell("markdown", f"## {name}", g))
        cells.append(_cell("code", PLACEHOLDER))
    cells.append(_cell("code", PUBLIC, g))
    cells.append(_cell("markdown", QUESTION, g))
    cells.append(_cell("markdown", "YOUR ANSWER HERE"))
    return _notebook(cells)


def submission(student: str, *, edit_setup: bool = False, reorder: bool = False) -> dict[str, Any]:
    """A student's notebook: the student version with the solution cells filled in."""
    nb = student_version()
    cells = nb["cells"]
    parts = SOLUTIONS[student]
    slots = [i for i, c in enumerate(cells) if c["source"] == PLACEHOLDER]
    for slot, name in zip(slots, QUESTIONS, strict=True):
        cells[slot] = _cell("code", parts[name])
    cells[-1] = _cell("markdown", parts["answer"])
    if edit_setup:
        cells[1] = _cell(
            "code",
            SETUP.replace("size=(8, 5)", "size=(4, 5)").replace("size=8", "size=4"),
            ("given",),
        )
    if reorder:
        # accuracy's heading and cell before cross_entropy's
        ce, acc = slots[1], slots[2]
        block_ce, block_acc = cells[ce - 1 : ce + 1], cells[acc - 1 : acc + 1]
        cells[ce - 1 : acc + 1] = [*block_acc, *block_ce]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return nb


def write_batch(root: Path, students: tuple[str, ...] = tuple(SOLUTIONS)) -> Path:
    """One folder per student holding ``losses.ipynb``; returns the folder."""
    for student in students:
        folder = root / student
        folder.mkdir(parents=True, exist_ok=True)
        nb = submission(student, edit_setup=student == "frank", reorder=student == "erin")
        (folder / "losses.ipynb").write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return root


def write_student_version(path: Path) -> Path:
    """The student version notebook at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(student_version(), indent=1), encoding="utf-8")
    return path


def write_rubric(
    folder: Path, *, starter: bool = True, policy: str = "warn", extra: str = ""
) -> Path:
    """A rubric for the task in ``folder`` (its student version beside it when
    ``starter``): one written answer, marked by hand, so no reference value is needed."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "assignment: losses",
        "title: Losses",
        "reference: hw3",
        "notebook: losses.ipynb",
        "similarity:",
        f"  given_cells: {policy}",
    ]
    if starter:
        write_student_version(folder / "student" / "losses.ipynb")
        lines.append("  starter: [student/losses.ipynb]")
    if extra:
        lines.append(extra)
    lines += [
        "questions:",
        "  - id: q4",
        "    checks:",
        "      - {id: why_max, type: text, heading: Q4, points: 2}",
    ]
    path = folder / "losses.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
