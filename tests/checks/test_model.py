from typing import Any

from grader.checks.model import ModelSpec, grade_model
from tests.conftest import make_ctx

Q4 = ModelSpec.model_validate(
    {
        "id": "m",
        "type": "model",
        "answer": "m",
        "probe": {"input_shape": [2, 1, 8, 8], "low": 0, "high": 255},
        "parts": {
            "runs": 4,
            "output_shape": 4,
            "output_range": {"points": 2, "min": 0, "max": 1},
            "param_count": 6,
        },
    }
)
Q7 = ModelSpec.model_validate(
    {
        "id": "m",
        "type": "model",
        "answer": "m",
        "probe": {"input_shape": [2, 3, 32, 32]},
        "parts": {"runs": 3, "output_shape": 3, "concat": {"points": 4, "min_inputs": 4, "dim": 1}},
    }
)
EXP4 = {"m": {"trainable_params": 100, "output_shape": [1]}}
EXP7 = {"m": {"output_shape": [10]}}


def probe(**kw: Any) -> dict[str, Any]:
    base = {
        "ran": True,
        "error": None,
        "output_shape": [2, 1],
        "output_min": 0.2,
        "output_max": 0.7,
        "output_finite": True,
        "trainable_params": 100,
        "total_params": 100,
        "cat_calls": [],
        "modules": [],
    }
    return {**base, **kw}


def test_full_marks() -> None:
    res = grade_model(Q4, make_ctx({"m": probe()}, EXP4))
    assert (res.status, res.score, res.max_score) == ("pass", 16, 16)
    assert [p["ok"] for p in res.details["parts"]] == [True, True, True, True]


def test_missing_sigmoid_loses_range_only() -> None:
    res = grade_model(Q4, make_ctx({"m": probe(output_min=-3.0, output_max=40.0)}, EXP4))
    assert (res.status, res.score) == ("partial", 14)
    assert "final activation" in res.message


def test_forward_raises_keeps_param_points() -> None:
    res = grade_model(
        Q4, make_ctx({"m": probe(ran=False, error="RuntimeError: shapes", output_shape=None)}, EXP4)
    )
    assert res.score == 6
    assert "RuntimeError: shapes" in res.message


def test_wrong_params() -> None:
    res = grade_model(Q4, make_ctx({"m": probe(trainable_params=99)}, EXP4))
    assert res.score == 10 and "99 trainable parameters" in res.message


def test_concat_rule() -> None:
    four = {"n_inputs": 4, "dim": 1, "shapes": []}
    assert (
        grade_model(Q7, make_ctx({"m": probe(output_shape=[2, 10], cat_calls=[four])}, EXP7)).score
        == 10
    )
    two = {"n_inputs": 2, "dim": 1, "shapes": []}
    res = grade_model(Q7, make_ctx({"m": probe(output_shape=[2, 10], cat_calls=[two])}, EXP7))
    assert res.score == 6 and "2 tensors on dim 1" in res.message
    other_dim = {"n_inputs": 4, "dim": 0, "shapes": []}
    assert (
        grade_model(
            Q7, make_ctx({"m": probe(output_shape=[2, 10], cat_calls=[other_dim])}, EXP7)
        ).score
        == 6
    )
    none = grade_model(Q7, make_ctx({"m": probe(output_shape=[2, 10])}, EXP7))
    assert none.score == 6 and "no torch.cat call" in none.message


def test_forged_probe_is_error() -> None:
    res = grade_model(Q4, make_ctx({"m": [1, 2, 3]}, EXP4))
    assert (res.status, res.score) == ("error", 0)


def test_keras_probe_without_concatenation_names_keras_forms() -> None:
    from grader.checks.model import ConcatPart, _concat_part

    part = _concat_part(ConcatPart(points=4, min_inputs=4), {"framework": "keras"}, True)
    assert part.ok is False and "Concatenate layer" in part.message
    hit = {"framework": "keras", "cat_calls": [{"n_inputs": 4, "dim": 1, "axis": -1}]}
    assert _concat_part(ConcatPart(points=4, min_inputs=4), hit, True).ok is True
