"""Synthetic HW3-like results records, for the report tests and the render benchmark.

They follow ``grader/schema/result.schema.json`` (:func:`sample_record` gives the JSON,
:func:`sample_grade_record` the record) and exercise every check type the
report draws (value with differing cells and with a shape mismatch, shape table, model
probe, free text awaiting review, function, error) plus execution failures.
"""

from __future__ import annotations

import random
from typing import Any

from grader.models import GradeRecord
from grader.results import record_from_dict

HEX = "0123456789abcdef"

PERSIAN_ANSWER = (
    "When encountering plateaus (زینی) or flat regions in the loss landscape, a very low "
    "learning rate may struggle to move the parameters away: training is slow and the loss "
    "curve barely decreases. در این حالت آموزش بسیار کند است."
)


def _sha(rng: random.Random) -> str:
    return "".join(rng.choice(HEX) for _ in range(64))


def _check(
    cid: str,
    ctype: str,
    score: float,
    top: float,
    status: str,
    message: str,
    *,
    prompt: str = "",
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "type": ctype,
        "score": round(score, 2),
        "max_score": round(top, 2),
        "status": status,
        "message": message,
        "prompt": prompt,
    }
    out.update({k: v for k, v in extra.items() if v is not None})
    return out


def _question(qid: str, title: str, checks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": qid,
        "title": title,
        "score": round(sum(c["score"] for c in checks), 2),
        "max_score": round(sum(c["max_score"] for c in checks), 2),
        "checks": checks,
    }


def _text_check(
    cid: str, points: float, prompt: str, answer: str, rng: random.Random
) -> dict[str, Any]:
    concepts = [
        {"name": "divergence or overshooting", "found": rng.random() < 0.7, "matched": "diverge"},
        {
            "name": "detection from the loss curve",
            "found": rng.random() < 0.6,
            "matched": "loss curve",
        },
    ]
    for c in concepts:
        if not c["found"]:
            c["matched"] = None
    found = sum(1 for c in concepts if c["found"])
    suggested = round(points * found / len(concepts), 2)
    words = len(answer.split())
    return _check(
        cid,
        "text",
        suggested,
        points,
        "manual",
        f"{found} of {len(concepts)} key concepts found; suggested mark {suggested:g}",
        prompt=prompt,
        details={
            "concepts": concepts,
            "word_count": words,
            "min_words": 25,
            "answer": answer[:1500],
        },
    )


def sample_record(
    student: str = "s001",
    *,
    seed: int = 0,
    answer: str | None = None,
    traceback_lines: int = 12,
    all_correct: bool = False,
    show_expected: bool = True,
) -> dict[str, Any]:
    """One student's results record; ``seed`` varies which checks pass.

    ``answer`` is the text of the first free-text answer (default: English with a Persian
    word); ``traceback_lines`` sets the length of the failing cell's traceback (0 for a
    clean run); ``all_correct`` gives full marks on every automatic check.
    """
    rng = random.Random(seed)
    ok = (lambda p: True) if all_correct else (lambda p: rng.random() < p)

    q1 = _question(
        "q1",
        "Optimisation",
        [
            _text_check(
                "Q1a",
                3,
                "What goes wrong when the learning rate is too high, and how do you detect it?",
                answer if answer is not None else PERSIAN_ANSWER,
                rng,
            ),
            _text_check(
                "Q1b",
                3,
                "The same for a learning rate that is too low.",
                "Training is slow, the loss decreases barely and may get stuck on a plateau.",
                rng,
            ),
        ],
    )

    expected_o = [[round(rng.uniform(-2, 2), 4) for _ in range(4)] for _ in range(4)]
    if ok(0.5):
        q2_o = _check(
            "q2_O", "value", 4, 4, "pass", "q2_O is correct", expected=expected_o, got=expected_o
        )
    else:
        got = [row[:] for row in expected_o]
        mismatch = [[False] * 4 for _ in range(4)]
        for i, j in [(0, 1), (2, 3), (3, 0)]:
            got[i][j] = round(got[i][j] + 0.5, 4)
            mismatch[i][j] = True
        q2_o = _check(
            "q2_O",
            "value",
            0,
            4,
            "fail",
            "q2_O differs from the expected value in 3 of 16 entries",
            expected=expected_o,
            got=got,
            details={"mismatch": mismatch},
        )
    expected_g = [[0.25, -0.5], [1.0, 0.125]]
    if ok(0.5):
        q2_g = _check(
            "q2_G", "value", 2, 2, "pass", "q2_G is correct", expected=expected_g, got=expected_g
        )
    else:
        q2_g = _check(
            "q2_G",
            "value",
            0,
            2,
            "fail",
            "q2_G should be a 2×2 matrix, got an array of shape (4,) (it has the right number of "
            "entries: reshape it to (2, 2))",
            expected=expected_g,
            got=[0.25, -0.5, 1.0, 0.125],
            details={"expected_shape": [2, 2], "got_shape": [4]},
        )
    big = [[round(rng.uniform(-1, 1), 3) for _ in range(14)] for _ in range(14)]
    big_got = [row[:] for row in big]
    big_mask = [[False] * 14 for _ in range(14)]
    if not ok(0.4):
        for i in range(0, 14, 3):
            big_got[i][i] = -big_got[i][i]
            big_mask[i][i] = True
    n_diff = sum(map(sum, big_mask))
    q2_dx = _check(
        "q2_dL_dX",
        "value",
        0 if n_diff else 7,
        7,
        "fail" if n_diff else "pass",
        f"q2_dL_dX differs from the expected value in {n_diff} of 196 entries"
        if n_diff
        else "q2_dL_dX is correct",
        expected=big,
        got=big_got,
        details={"mismatch": big_mask} if n_diff else None,
    )
    q2_df = (
        _check(
            "q2_dL_dF",
            "value",
            0,
            7,
            "error",
            "q2_dL_dF could not be read: tensor requires grad",
            details={
                "traceback": "Traceback (most recent call last):\n"
                '  File "harvest.py", line 3\n'
                "RuntimeError: Can't call numpy() on Tensor that requires grad."
            },
        )
        if not ok(0.7)
        else _check(
            "q2_dL_dF", "value", 7, 7, "pass", "q2_dL_dF is correct", expected=3.25, got=3.25
        )
    )
    q2 = _question(
        "q2",
        "Backprop through a convolution and global average pooling",
        [q2_o, q2_g, q2_dx, q2_df],
    )

    layers = [
        ("Conv1D", [498, 16], 64),
        ("MaxPool1D", [249, 16], 0),
        ("Conv1D", [247, 32], 1568),
        ("Flatten", [7904], 0),
        ("Dense", [1], 7905),
    ]
    rows = []
    table_score = 0.0
    for k, (layer, shape, params) in enumerate(layers, start=2):
        shape_ok = ok(0.8)
        params_ok = ok(0.7)
        got_shape = shape if shape_ok else shape[::-1] if len(shape) > 1 else [shape[0] + 1]
        got_params = params if params_ok else max(params // 16, 1)
        pts = (1 if shape_ok else 0) + (1 if params_ok else 0)
        table_score += pts
        rows.append(
            {
                "row": k,
                "layer": layer,
                "expected_shape": shape,
                "got_shape": got_shape,
                "expected_params": params,
                "got_params": got_params,
                "shape_ok": shape_ok,
                "params_ok": params_ok,
                "points": pts,
                "max_points": 2,
            }
        )
    table_status = "pass" if table_score == 10 else "partial" if table_score else "fail"
    q3 = _question(
        "q3",
        "Shape table of a 1-D CNN",
        [
            _check(
                "q3_table",
                "shape_table",
                table_score,
                10,
                table_status,
                "all 5 graded rows are correct"
                if table_score == 10
                else "row 2 (Conv1D): the parameter count 4 is wrong (it is the count for one "
                "filter: multiply by the number of filters)",
                got=[
                    ["Input", [500, 1], 0],
                    *[[r["layer"], r["got_shape"], r["got_params"]] for r in rows],
                ],
                details={"rows": rows},
            ),
            _check(
                "q3_total_params",
                "value",
                2,
                2,
                "pass",
                "q3_total_params is correct",
                expected=9537,
                got=9537,
            ),
        ],
    )

    params_ok = ok(0.6)
    got_params = 1492225 if params_ok else 1492289
    parts = [
        {
            "name": "runs",
            "points": 4,
            "max_points": 4,
            "ok": True,
            "message": "forward pass ran on a (2, 1, 256, 256) batch",
        },
        {
            "name": "output_shape",
            "points": 4,
            "max_points": 4,
            "ok": True,
            "message": "output shape (2, 1) is right",
        },
        {
            "name": "output_range",
            "points": 2,
            "max_points": 2,
            "ok": True,
            "message": "outputs lie in [0, 1]",
        },
        {
            "name": "param_count",
            "points": 6 if params_ok else 0,
            "max_points": 6,
            "ok": params_ok,
            "message": "1,492,225 trainable parameters"
            if params_ok
            else "1,492,289 trainable parameters, expected 1,492,225",
        },
    ]
    model_score = sum(float(str(p["points"])) for p in parts)
    q4 = _question(
        "q4",
        "Binary image classifier",
        [
            _check(
                "q4_model",
                "model",
                model_score,
                16,
                "pass" if model_score == 16 else "partial",
                "the model passes every probe"
                if model_score == 16
                else "the parameter count is wrong",
                expected={"trainable_params": 1492225, "output_shape": [2, 1]},
                details={
                    "parts": parts,
                    "probe": {
                        "ran": True,
                        "error": None,
                        "output_shape": [2, 1],
                        "output_min": 0.1132,
                        "output_max": 0.8731,
                        "trainable_params": got_params,
                        "cat_calls": [],
                    },
                },
            )
        ],
    )

    fn_ok = ok(0.5)
    q5 = _question(
        "q5",
        "Softmax",
        [
            _check(
                "q5_softmax", "function", 3, 3, "pass", "softmax matches the reference on 12 inputs"
            )
            if fn_ok
            else _check(
                "q5_softmax",
                "function",
                0,
                3,
                "fail",
                "softmax returns nan for large logits",
                details={
                    "case": "logits = [[1000.0, 1001.0, 1002.0]] (large logits, batch of one)",
                    "error": "result contains nan: subtract the row maximum before exp()",
                },
            )
        ],
    )

    questions = [q1, q2, q3, q4, q5]
    if not show_expected:
        for q in questions:
            for c in q["checks"]:
                c.pop("expected", None)
                for row in (c.get("details") or {}).get("rows", []):
                    row.pop("expected_shape", None)
                    row.pop("expected_params", None)
    failures = []
    not_run: list[int] = []
    if traceback_lines:
        tb = ["Traceback (most recent call last):"]
        for i in range(max(traceback_lines - 2, 0)):
            if i % 2 == 0:
                tb.append(f'  File "/tmp/nb/cell_{i % 7}.py", line {i + 3}, in layer_{i}')
            else:
                tb.append(f"    x = layer_{i + 1}(x)")
        tb.append("RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x7904 and 7905x1)")
        failures.append(
            {
                "cell": 14,
                "kind": "error",
                "ename": "RuntimeError",
                "evalue": "mat1 and mat2 shapes cannot be multiplied (2x7904 and 7905x1)",
                "traceback": "\n".join(tb[:traceback_lines]),
            }
        )
        not_run = [15, 16, 17, 21]
    return {
        "schema_version": 2,
        "student": student,
        "assignment": "hw3",
        "title": "HW3 — Convolutions, backprop and shape tables",
        "course": "Deep Learning",
        "score": round(sum(q["score"] for q in questions), 2),
        "max_score": round(sum(q["max_score"] for q in questions), 2),
        "questions": questions,
        "execution": {
            "notebook": "hw3.ipynb",
            "cells_total": 24,
            "cells_run": 24 - len(not_run),
            "cells_not_run": not_run,
            "failures": failures,
            "timed_out": False,
            "kernel_died": False,
            "limit_hit": None,
            "warnings": ["UserWarning: nn.functional.sigmoid is deprecated"]
            if traceback_lines
            else [],
            "duration_s": round(3 + rng.random() * 20, 2),
        },
        "provenance": {
            "submission_sha256": _sha(rng),
            "rubric_sha256": _sha(rng),
            "reference_sha256": _sha(rng),
            "grader_version": "0.1.0",
            "python": "3.11.2",
            "torch": "2.13.0",
            "numpy": "2.3.1",
            "seeds": {"q4_model": 0, "q7_model": 0},
            "graded_at": "2025-11-22T10:00:00+00:00",
        },
    }


def sample_grade_record(student: str = "s001", **options: Any) -> GradeRecord:
    """:func:`sample_record` read back as the :class:`GradeRecord` it is the JSON of."""
    return record_from_dict(sample_record(student, **options))
