"""The ``function`` check on made-up call results: cases, pairs, tolerances, dropout."""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from grader.checks.base import CheckContext
from grader.checks.dropout import kept_bounds
from grader.checks.function import (
    FunctionSpec,
    call_id,
    compute_cases,
    describe_inputs,
    forward_id,
    grade_function,
)
from grader.checks.function_grading import GRADINGS, rel_error
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
    # Off by default: a check enforces only what its handout states.
    assert grade_function(FORWARD, ctx(FORWARD, {c: mutated})).status == "pass"
    strict = FORWARD.model_copy(update={"check_inplace": True})
    res = grade_function(strict, ctx(strict, {c: mutated}))
    assert "modified its input w in place" in res.message and res.status == "fail"
    assert any("in place" in rule for rule in strict.rules())
    assert not any("in place" in rule for rule in FORWARD.rules())
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


def test_a_notebook_function_is_read_from_the_notebooks_calls() -> None:
    """``source: notebook``: the results come from the kernel's calls, and a notebook
    that did not run (not a module problem) is what stops the check."""
    nb = FORWARD.model_copy(update={"source": "notebook"})
    good = ok(call_id(nb, 0), [X @ W + B, None])
    wrong = ok(call_id(nb, 0), [X @ W, None])
    base = ctx(nb, {})
    made = CheckContext(
        answers={},
        expected=base.expected,
        markdown=(),
        execution=None,
        calls={wrong.id: wrong},  # the module's calls: not this check's
        notebook_calls={good.id: good},
        module_problem="no layers.py in the submission",  # not this check's either
    )
    assert grade_function(nb, made).status == "pass"
    assert grade_function(FORWARD, made).message.endswith("no layers.py in the submission")
    not_run = CheckContext(
        answers={},
        expected=base.expected,
        markdown=(),
        execution=None,
        notebook_problem="no hw5.ipynb in the submission",
    )
    res = grade_function(nb, not_run)
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == "affine_forward could not be graded: no hw5.ipynb in the submission"


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
    assert "what your dropout_forward multiplied x by" in res.message
    # A wrong forward (p read as the drop probability, scaled by 1/(1 - p)) with a
    # backward that reuses its mask: "a working forward, not a correct one" -> right.
    wrong_out = _dropout(0.3, x, "p_is_drop", 4)
    wrong_fw = ok(forward_id(s, 0), [wrong_out, None])
    same_mask = ok(call_id(s, 0), dout * (wrong_out != 0) / 0.7)
    assert grade_function(s, ctx(s, {wrong_fw.id: wrong_fw, same_mask.id: same_mask})).status == (
        "pass"
    )
    # ... but the handout's 1/p applied to that forward's mask is not what it used.
    handout_scale = ok(call_id(s, 0), dout * (wrong_out != 0) / 0.3)
    res = grade_function(s, ctx(s, {wrong_fw.id: wrong_fw, handout_scale.id: handout_scale}))
    assert res.status == "fail"


def test_binomial_bound_holds_empirically_at_a_looser_level() -> None:
    n, p, tail = 10_000, 0.2, 5e-4
    low, high = kept_bounds(n, p, tail)
    kept = np.random.default_rng(0).binomial(n, p, size=20_000)
    outside = np.mean((kept < low) | (kept > high))
    assert outside <= 2 * tail * 2  # two tails of 5e-4 each, with room for sampling noise
    assert low / n > 0.18 and high / n < 0.22
    # The usual mistake (p read as drop: 80 % kept) is always outside.
    assert not low <= 0.8 * n <= high


# ------------------------------------------------------------------ families in messages


def _family_reference() -> types.ModuleType:
    """Four cases of a function that doubles x; two of them are 'non-square'."""
    ref = types.ModuleType("family_ref")

    def double(x: Any, param: Any) -> Any:
        return 2 * x, None

    def double_backward(dout: Any, x: Any, param: Any) -> Any:
        return 2 * dout

    def cases() -> list[dict[str, Any]]:
        shapes = [((2, 2), []), ((3, 5), ["non-square"]), ((4, 4), []), ((1, 2), ["non-square"])]
        return [
            {
                "name": f"x {s}",
                "args": [np.full(s, 1.5), {"stride": 1, "mode": "train"}],
                "dout": np.full(s, 0.5),
                "families": fams,
            }
            for s, fams in shapes
        ]

    def unnamed_cases() -> list[dict[str, Any]]:
        return [dict(c, arg_names=["x", "param"]) for c in cases()]

    def bad_cases() -> list[dict[str, Any]]:
        return [dict(cases()[0], families="non-square")]

    for fn in (double, double_backward, cases, unnamed_cases, bad_cases):
        setattr(ref, fn.__name__, fn)
    return ref


FAMILY_REF = _family_reference()
DOUBLE = spec(id="double", reference="double", cases="cases", outputs=[0], output_names=["out"])


def _family_ctx(s: FunctionSpec, calls: dict[str, CallResult]) -> CheckContext:
    return CheckContext(
        answers={},
        expected={s.reference_key: compute_cases(s, FAMILY_REF)},
        markdown=(),
        execution=None,
        calls=calls,
    )


def _double_calls(s: FunctionSpec, wrong: set[int], raised: set[int] | None = None) -> Any:
    calls = {}
    for i, case in enumerate(compute_cases(s, FAMILY_REF)["cases"]):
        cid = call_id(s, i)
        x = case["args"][0]
        if i in (raised or set()):
            calls[cid] = CallResult(id=cid, status="error", message="double raised IndexError: 2")
        else:
            calls[cid] = ok(cid, [3 * x if i in wrong else 2 * x, None])
    return calls


def test_compute_cases_keeps_families_and_input_names() -> None:
    data = compute_cases(DOUBLE, FAMILY_REF)
    assert [c["families"] for c in data["cases"]] == [[], ["non-square"], [], ["non-square"]]
    assert data["input_names"] == ["x", "param"]
    backward = spec(id="double_backward", reference="double_backward", cases="cases", forward="f")
    assert compute_cases(backward, FAMILY_REF)["input_names"] == ["x", "param"]
    unnamed = spec(id="d", grading="dropout_forward", cases="unnamed_cases")
    assert compute_cases(unnamed, FAMILY_REF)["input_names"] == ["x", "param"]
    with pytest.raises(ValueError, match="families must be words"):
        compute_cases(spec(id="d", reference="double", cases="bad_cases"), FAMILY_REF)


def test_a_failure_on_exactly_one_family_is_named_with_the_smallest_case() -> None:
    res = grade_function(DOUBLE, _family_ctx(DOUBLE, _double_calls(DOUBLE, {1, 3})))
    assert res.status == "fail"
    # the smallest failing case is x (1, 2), the later of the two
    assert res.message.startswith(
        "wrong only on the 'non-square' cases (2 of 4), e.g. case 'x (1, 2)' "
        "(x (1, 2), stride 1, mode 'train'): out differs (relative error 0.2)"
    )
    assert res.details["family"] == "non-square"
    assert res.details["case"] == "x (1, 2)"
    assert res.details["failing_cases"] == ["x (3, 5)", "x (1, 2)"]
    assert res.details["inputs"] == "x (1, 2), stride 1, mode 'train'"


def test_no_family_when_the_failures_are_not_exactly_one() -> None:
    for wrong in ({1}, {0, 1, 3}, {0, 1, 2, 3}):
        res = grade_function(DOUBLE, _family_ctx(DOUBLE, _double_calls(DOUBLE, wrong)))
        first = f"x {[(2, 2), (3, 5), (4, 4), (1, 2)][min(wrong)]}"
        assert res.message.startswith(f"case '{first}': out differs"), wrong
        assert "family" not in res.details and res.details["case"] == first


def test_every_case_is_graded_after_one_raises() -> None:
    calls = _double_calls(DOUBLE, wrong={3}, raised={1})
    res = grade_function(DOUBLE, _family_ctx(DOUBLE, calls))
    assert res.details["failing_cases"] == ["x (3, 5)", "x (1, 2)"]
    # the smallest failing case of the family decides the status: it gave wrong values
    assert res.details["family"] == "non-square" and res.status == "fail"
    res = grade_function(DOUBLE, _family_ctx(DOUBLE, _double_calls(DOUBLE, set(), raised={1})))
    assert res.status == "error" and "double raised IndexError" in res.message


def test_a_backward_whose_forward_failed_is_not_blamed_on_a_family() -> None:
    s = spec(id="double_backward", reference="double_backward", cases="cases", forward="double")
    calls = {}
    for i, case in enumerate(compute_cases(s, FAMILY_REF)["cases"]):
        fw, bw = forward_id(s, i), call_id(s, i)
        if i in (1, 3):
            calls[fw] = CallResult(id=fw, status="error", message="double raised ValueError: w")
        else:
            calls[fw] = ok(fw, [2 * case["args"][0], None])
            calls[bw] = ok(bw, 2 * case["dout"])
    res = grade_function(s, _family_ctx(s, calls))
    assert res.status == "error" and "family" not in res.details
    assert res.message.startswith("case 'x (3, 5)': double_backward could not be tested")


def test_describe_inputs_in_words() -> None:
    case: dict[str, Any] = {
        "args": (
            np.zeros((2, 3)),
            {"pool_height": 2, "eps": 0.01, "running_mean": np.zeros(4)},
            np.float64(0.5),
            {"__torch_model__": {"layers": [], "state": {}}},
            [[1, 2], [3, 4]],
            True,
        ),
        "kwargs": {"mode": "test"},
    }
    assert describe_inputs(case, ["x", "param", "p"]) == (
        "x (2, 3), pool_height 2, eps 0.01, running_mean (4,), p 0.5, "
        "argument 4 (a torch model), argument 5 (2, 2), argument 6 True, mode 'test'"
    )


def test_grading_is_a_registered_name_with_its_own_requirements() -> None:
    assert {"values", "dropout_forward", "dropout_backward"} <= set(GRADINGS)
    with pytest.raises(ValidationError, match="unknown grading 'dropout'"):
        spec(cases="affine_cases", grading="dropout")
    with pytest.raises(ValidationError, match="`reference:` names the reference function"):
        spec(cases="affine_cases")  # values compares with a reference function
    with pytest.raises(ValidationError, match="dropout_backward needs `forward:`"):
        spec(cases="drop_cases", grading="dropout_backward")
