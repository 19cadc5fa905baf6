import numpy as np

from grader.checks.value import ValueSpec, grade_value
from tests.conftest import make_ctx

DX = np.array([[0.5, 0.5, 0.0], [-0.25, 0.0, 0.25], [-0.75, -0.5, 0.25]])


def spec(**kw: object) -> ValueSpec:
    base: dict[str, object] = {"id": "q2_dL_dX", "type": "value", "answer": "q2_dL_dX", "points": 7}
    return ValueSpec.model_validate({**base, **kw})


def test_fraction_strings_pass() -> None:
    got = [["1/2", "1/2", 0], ["-1/4", 0, "1/4"], ["-3/4", "-1/2", "1/4"]]
    res = grade_value(spec(), make_ctx({"q2_dL_dX": got}, {"q2_dL_dX": DX}))
    assert (res.status, res.score, res.max_score) == ("pass", 7, 7)


def test_transpose_fails_with_hint_and_mask() -> None:
    res = grade_value(spec(), make_ctx({"q2_dL_dX": DX.T}, {"q2_dL_dX": DX}))
    assert (res.status, res.score) == ("fail", 0)
    assert "transpose" in res.message
    assert res.details["mismatch"] == (~np.isclose(DX.T, DX)).tolist()


def test_within_atol_passes_outside_fails() -> None:
    ok = grade_value(spec(), make_ctx({"q2_dL_dX": DX + 5e-7}, {"q2_dL_dX": DX}))
    bad = grade_value(spec(), make_ctx({"q2_dL_dX": DX + 2e-6}, {"q2_dL_dX": DX}))
    assert ok.score == 7 and bad.score == 0


def test_shape_mismatch_names_shapes() -> None:
    res = grade_value(spec(), make_ctx({"q2_dL_dX": DX.ravel()}, {"q2_dL_dX": DX}))
    assert res.status == "fail"
    assert "3×3 matrix" in res.message and "reshape" in res.message
    assert res.details == {"expected_shape": [3, 3], "got_shape": [9]}


def test_nan_never_passes() -> None:
    res = grade_value(
        spec(id="g", answer="g", points=2), make_ctx({"g": float("nan")}, {"g": 0.25})
    )
    assert res.score == 0


def test_scalar_accepts_size_one() -> None:
    res = grade_value(spec(id="g", answer="g", points=2), make_ctx({"g": [0.25]}, {"g": 0.25}))
    assert res.status == "pass"


def test_shape_answer_as_string() -> None:
    s = spec(id="q6_output_shape", answer="q6_output_shape", points=2, atol=0)
    assert (
        grade_value(
            s, make_ctx({"q6_output_shape": "(28, 28, 32)"}, {"q6_output_shape": (28, 28, 32)})
        ).score
        == 2
    )
    wrong = grade_value(
        s, make_ctx({"q6_output_shape": [32, 28, 28]}, {"q6_output_shape": (28, 28, 32)})
    )
    assert wrong.score == 0


def test_unreadable_answer_fails_not_crashes() -> None:
    res = grade_value(spec(), make_ctx({"q2_dL_dX": "see notebook"}, {"q2_dL_dX": DX}))
    assert res.status == "fail" and "could not be read" in res.message


def test_missing_error_unsupported() -> None:
    exp = {"q2_dL_dX": DX}
    missing = grade_value(spec(), make_ctx({}, exp))
    assert missing.status == "fail" and "not defined" in missing.message
    err = grade_value(
        spec(),
        make_ctx({}, exp, statuses={"q2_dL_dX": ("error", "assigned in cell 5, which raised")}),
    )
    assert err.status == "error" and err.message == "assigned in cell 5, which raised"
    uns = grade_value(spec(), make_ctx({}, exp, statuses={"q2_dL_dX": ("unsupported", "")}))
    assert uns.status == "fail" and "unsupported" in uns.message


def test_show_expected_false_hides_expected() -> None:
    res = grade_value(spec(show_expected=False), make_ctx({"q2_dL_dX": DX.T}, {"q2_dL_dX": DX}))
    assert res.expected is None


def test_leading_none_only_where_the_rubric_opts_in() -> None:
    exp = {"q6_output_shape": (28, 28, 32)}
    keras_spec = spec(
        id="q6_output_shape", answer="q6_output_shape", points=2, atol=0, leading_none=True
    )
    for answer in ("(None, 28, 28, 32)", [None, 28, 28, 32], (28, 28, 32)):
        res = grade_value(keras_spec, make_ctx({"q6_output_shape": answer}, exp))
        assert res.score == 2, answer
    # an argument value (HW4's LSTM input_shape): (None, 1, 5) stays wrong
    arg_spec = spec(id="q3_input_shape", answer="q3_input_shape", points=4, atol=0)
    for answer in ("(None, 1, 5)", [None, 1, 5]):
        ctx = make_ctx({"q3_input_shape": answer}, {"q3_input_shape": (1, 5)})
        res = grade_value(arg_spec, ctx)
        assert (res.status, res.score) == ("fail", 0), answer
        assert "holds None" in res.message
