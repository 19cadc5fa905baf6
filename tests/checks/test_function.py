"""The ``function`` check on made-up call results: cases, pairs, tolerances, dropout."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest

from grader.checks.base import CheckContext
from grader.checks.function import (
    FunctionSpec,
    call_id,
    compute_cases,
    forward_id,
    grade_function,
    kept_bounds,
    rel_error,
)
from grader.models import CallResult, ExecutionReport, Stored

X = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]])
W = np.array([[0.5, -1.0], [1.5, 2.0], [-0.5, 0.25]])
B = np.array([0.1, -0.2])
DOUT = np.array([[1.0, -1.0], [0.5, 2.0]])


def _reference() -> types.ModuleType:
    ref = types.ModuleType("ref")

    def affine_forward(x: Any, w: Any, b: Any) -> Any:
        return x @ w + b, None

    def affine_backward(dout: Any, x: Any, w: Any, b: Any) -> Any:
        return dout @ w.T, x.T @ dout, dout.sum(0)

    def bn(x: Any, bn_param: Any) -> Any:
        if bn_param["mode"] == "train":
            bn_param["running_mean"] = 0.9 * bn_param.get("running_mean", 0) + 0.1 * x.mean(0)
        return x, None

    def cases() -> list[dict[str, Any]]:
        return [{"name": "two rows", "args": [X, W, B], "dout": DOUT}]

    def bn_cases() -> list[dict[str, Any]]:
        return [
            {"name": "train", "args": [X, {"mode": "train"}]},
            {"name": "test", "args": [X, {"mode": "test", "running_mean": np.ones(3)}]},
        ]

    def drop_cases() -> list[dict[str, Any]]:
        rng = np.random.default_rng(0)
        x = rng.uniform(0.5, 1.5, size=(100, 100))
        return [
            {"name": "train p = 0.3", "args": [x, {"p": 0.3, "mode": "train"}], "dout": x},
            {"name": "test", "args": [x[:3], {"p": 0.3, "mode": "test"}]},
        ]

    def drop_backward_cases() -> list[dict[str, Any]]:
        return drop_cases()[:1]

    for fn in (
        affine_forward,
        affine_backward,
        bn,
        cases,
        bn_cases,
        drop_cases,
        drop_backward_cases,
    ):
        setattr(ref, fn.__name__, fn)
    return ref


REF = _reference()


def spec(**kw: Any) -> FunctionSpec:
    base: dict[str, Any] = {"id": "affine_forward", "type": "function", "points": 10}
    base.update(kw)
    return FunctionSpec.model_validate(base)


def ctx(s: FunctionSpec, calls: dict[str, CallResult], problem: str | None = None) -> CheckContext:
    expected = {s.reference_key: compute_cases(s, REF)}
    return CheckContext(
        answers={},
        expected=expected,
        markdown=(),
        execution=None,
        calls=calls,
        module_problem=problem,
    )


def ok(cid: str, value: Any, **kw: Any) -> CallResult:
    return CallResult(id=cid, status="ok", value=value, **kw)


FORWARD = spec(reference="affine_forward", cases="cases", outputs=[0], output_names=["out"])


def test_calls_of_a_plain_check_and_of_a_pair() -> None:
    expected = {"affine_forward": compute_cases(FORWARD, REF)}
    (call,) = FORWARD.calls(expected)
    assert call.id == "affine_forward/case0" and call.function == "affine_forward"
    assert call.store is None and len(call.args) == 3
    backward = spec(
        id="affine_backward", reference="affine_backward", cases="cases", forward="affine_forward"
    )
    expected = {"affine_backward": compute_cases(backward, REF)}
    fw, bw = backward.calls(expected)
    assert (fw.function, fw.store) == ("affine_forward", "affine_backward/0")
    assert bw.function == "affine_backward"
    assert bw.args[1] == Stored("affine_backward/0", 1)
    np.testing.assert_array_equal(bw.args[0], DOUT)


def test_pass_and_relative_error_message() -> None:
    good = ok(call_id(FORWARD, 0), [X @ W + B, None])
    res = grade_function(FORWARD, ctx(FORWARD, {good.id: good}))
    assert (res.score, res.status) == (10, "pass")
    off = ok(call_id(FORWARD, 0), [(X @ W + B) * 1.1, None])
    res = grade_function(FORWARD, ctx(FORWARD, {off.id: off}))
    assert (res.score, res.status) == (0, "fail")
    assert res.message.startswith("case 'two rows': out differs (relative error 0.048)")
    assert res.details["case"] == "two rows"
    assert res.details["error"] == pytest.approx(0.047619, abs=1e-6)


def test_rel_error_is_the_handouts() -> None:
    assert rel_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert rel_error(np.array([1e-12]), np.array([2e-12])) == pytest.approx(1e-4)
    assert rel_error(np.array([1.0]), np.array([np.nan])) == np.inf


def test_rtol_atol_scheme() -> None:
    s = spec(reference="affine_forward", cases="cases", outputs=[0], rtol=1e-6, atol=1e-9)
    near = ok(call_id(s, 0), [X @ W + B + 1e-12, None])
    assert grade_function(s, ctx(s, {near.id: near})).status == "pass"
    far = ok(call_id(s, 0), [X @ W + B + 1e-3, None])
    assert "max |a − b| 0.001" in grade_function(s, ctx(s, {far.id: far})).message


def test_in_place_raise_missing_and_not_a_tuple() -> None:
    c = call_id(FORWARD, 0)
    mutated = ok(c, [X @ W + B, None], mutated=(1,))
    res = grade_function(FORWARD, ctx(FORWARD, {c: mutated}))
    assert "modified its input w in place" in res.message and res.status == "fail"
    raised = CallResult(id=c, status="error", message="affine_forward raised ValueError: bad")
    res = grade_function(FORWARD, ctx(FORWARD, {c: raised}))
    assert res.status == "error"
    assert res.message == "case 'two rows': affine_forward raised ValueError: bad"
    missing = CallResult(id=c, status="missing_function", message="layers.py defines no function")
    res = grade_function(FORWARD, ctx(FORWARD, {c: missing}))
    assert (res.status, res.message) == ("fail", "layers.py defines no function")
    single = ok(c, X @ W + B)
    res = grade_function(FORWARD, ctx(FORWARD, {c: single}))
    assert "should return a tuple of 2 values, got an array of shape (2, 2)" in res.message


def test_module_problem_fails_every_function() -> None:
    res = grade_function(FORWARD, ctx(FORWARD, {}, problem="no layers.py in the submission"))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == "affine_forward could not be graded: no layers.py in the submission"
    c = ctx(FORWARD, {}, problem="layers.py has a syntax error")
    imported = ExecutionReport(None, 0, 0, (), (), False, False, None, (), 0.0, module="layers.py")
    c = CheckContext(
        answers={},
        expected=c.expected,
        markdown=(),
        execution=imported,
        module_problem="layers.py has a syntax error",
    )
    assert grade_function(FORWARD, c).status == "error"


def test_backward_pair_squeeze_shapes_and_failed_forward() -> None:
    s = spec(
        id="affine_backward",
        reference="affine_backward",
        cases="cases",
        forward="affine_forward",
        output_names=["dx", "dw", "db"],
        squeeze_size1=True,
    )
    dx, dw, db = DOUT @ W.T, X.T @ DOUT, DOUT.sum(0)
    fw = ok(forward_id(s, 0), [X @ W + B, [X, W, B]])
    good = ok(call_id(s, 0), [dx, dw, db.reshape(1, 2)])  # (1, D) for (D,) is accepted
    assert grade_function(s, ctx(s, {fw.id: fw, good.id: good})).status == "pass"
    flat = ok(call_id(s, 0), [dx.reshape(-1), dw, db])
    res = grade_function(s, ctx(s, {fw.id: fw, flat.id: flat}))
    assert "dx has shape (6,) but should have shape (2, 3)" in res.message
    raised = CallResult(id=fw.id, status="error", message="affine_forward raised KeyError: 'x'")
    res = grade_function(s, ctx(s, {fw.id: raised}))
    assert res.status == "error"
    assert "could not be tested because its forward affine_forward raised KeyError" in res.message


def test_stateful_argument_written_back_and_unchanged_in_test_mode() -> None:
    s = spec(id="bn", reference="bn", cases="bn_cases", outputs=[0], return_args=[1])
    expected = compute_cases(s, REF)
    after_train = expected["cases"][0]["args_after"]["1"]
    c0, c1 = call_id(s, 0), call_id(s, 1)
    test_after = {"mode": "test", "running_mean": np.ones(3)}
    good = {
        c0: ok(c0, [X, None], args_after={1: after_train}),
        c1: ok(c1, [X, None], args_after={1: test_after}),
    }
    assert grade_function(s, ctx(s, good)).status == "pass"
    forgot = dict(good)
    forgot[c0] = ok(c0, [X, None], args_after={1: {"mode": "train"}})
    assert "was not written back into bn_param" in grade_function(s, ctx(s, forgot)).message
    changed = dict(good)
    changed[c1] = ok(c1, [X, None], args_after={1: {"mode": "test", "running_mean": np.zeros(3)}})
    message = grade_function(s, ctx(s, changed)).message
    assert "changed bn_param['running_mean'], which must be left unchanged" in message


def _dropout(p: float, x: np.ndarray, keep_rule: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if keep_rule == "right":
        return x * (rng.random(x.shape) < p) / p
    if keep_rule == "p_is_drop":
        return x * (rng.random(x.shape) >= p) / (1 - p)
    return x * (rng.random(x.shape) < p)  # no scaling


def test_dropout_forward_statistics() -> None:
    s = spec(id="dropout_forward", grading="dropout_forward", cases="drop_cases")
    cases = compute_cases(s, REF)["cases"]
    x = cases[0]["args"][0]

    def grade(rule: str) -> Any:
        calls = {
            call_id(s, 0): ok(call_id(s, 0), [_dropout(0.3, x, rule, 1), None]),
            call_id(s, 1): ok(call_id(s, 1), [cases[1]["args"][0], None]),
        }
        return grade_function(s, ctx(s, calls))

    assert grade("right").status == "pass"
    assert "KEEPING" in grade("p_is_drop").message
    assert "kept units are not x / p" in grade("unscaled").message


def test_dropout_backward_uses_the_forward_mask() -> None:
    s = spec(
        id="dropout_backward",
        grading="dropout_backward",
        cases="drop_backward_cases",
        forward="dropout_forward",
    )
    case = compute_cases(s, REF)["cases"][0]
    x, dout = case["args"][0], case["dout"]
    out = _dropout(0.3, x, "right", 2)
    fw = ok(forward_id(s, 0), [out, None])
    right = ok(call_id(s, 0), dout * (out != 0) / 0.3)
    assert grade_function(s, ctx(s, {fw.id: fw, right.id: right})).status == "pass"
    other_mask = ok(call_id(s, 0), dout * (_dropout(0.3, x, "right", 3) != 0) / 0.3)
    res = grade_function(s, ctx(s, {fw.id: fw, other_mask.id: other_mask}))
    assert res.details["case"] == "train p = 0.3" and res.status == "fail"
    assert "same mask" in res.message


def test_binomial_bound_holds_empirically_at_a_looser_level() -> None:
    n, p, tail = 10_000, 0.2, 5e-4
    low, high = kept_bounds(n, p, tail)
    kept = np.random.default_rng(0).binomial(n, p, size=20_000)
    outside = np.mean((kept < low) | (kept > high))
    assert outside <= 2 * tail * 2  # two tails of 5e-4 each, with room for sampling noise
    assert low / n > 0.18 and high / n < 0.22
    # The usual mistake (p read as drop: 80 % kept) is always outside.
    assert not low <= 0.8 * n <= high
