import numpy as np

from grader.checks.shape_table import ShapeTableSpec, grade_shape_table
from tests.conftest import make_ctx

REF = [
    ["Input", (500, 7), 0],
    ["Conv1D", (498, 16), 352],
    ["MaxPool1D", (249, 16), 0],
    ["Flatten", (3984,), 0],
    ["Dense", (5,), 19925],
]
SPEC = ShapeTableSpec.model_validate({"id": "t", "type": "shape_table", "answer": "t"})


def grade(table: object):  # type: ignore[no-untyped-def]
    return grade_shape_table(SPEC, make_ctx({"t": table}, {"t": REF}))


def test_correct_table_in_mixed_forms() -> None:
    res = grade(
        [
            ["Input", "(500, 7)", 0],
            ["c", [498, 16], "(7*3+1)*16"],
            ["p", "(249, 16)", 0],
            ["f", "(,3984)", 0],
            ["d", (5,), 19925.0],
        ]
    )
    assert (res.status, res.score, res.max_score) == ("pass", 8, 8)


def test_row_by_row_credit_and_filter_hint() -> None:
    res = grade(
        [
            ["Input", (500, 7), 0],
            ["c", (498, 16), 22],
            ["p", (249, 16), 0],
            ["f", (16, 249), 0],
            ["d", (5,), 19925],
        ]
    )
    assert (res.status, res.score) == ("partial", 6)
    rows = res.details["rows"]
    assert [r["points"] for r in rows] == [1, 2, 1, 2]
    assert "multiply by the number of filters" in res.message


def test_channels_first_hint_and_short_table() -> None:
    res = grade([["Input", (500, 7), 0], ["c", (16, 498), 352]])
    assert res.score == 1
    assert "write it as (steps, channels)" in res.message
    assert "the table has 2 rows; it should have 5" in res.message


def test_not_a_list() -> None:
    res = grade("see above")
    assert (res.status, res.score) == ("fail", 0)


def test_invalid_rows() -> None:
    ref = [["Input", (8, 1), 0], ["Conv", (2, 4), 40], ["Conv", "invalid", 0]]
    res = grade_shape_table(
        SPEC,
        make_ctx({"t": [["i", (8, 1), 0], ["c", (2, 4), 40], ["c", "Invalid", 0]]}, {"t": ref}),
    )
    assert res.score == 4
    wrong = grade_shape_table(
        SPEC, make_ctx({"t": [["i", (8, 1), 0], ["c", (2, 4), 40], ["c", (0, 4), 0]]}, {"t": ref})
    )
    assert wrong.score == 3


def test_shapes_as_they_arrive_from_torch_and_numpy() -> None:
    # torch.Size rows and named tuples arrive as lists; np.array(x.shape[1:]) as an int
    # array; a flattened size kept as torch.tensor(3984) as a 0-d array.
    res = grade(
        [
            ["Input", [500, 7], 0],
            ["c", np.array([498, 16]), np.int64(352)],
            ["p", [249, 16], np.array(0)],
            ["f", np.array(3984), 0],
            ["d", [5], np.array(19925)],
        ]
    )
    assert (res.status, res.score) == ("pass", 8)


def test_unreadable_shape_names_the_accepted_forms() -> None:
    res = grade(
        [
            ["Input", (500, 7), 0],
            ["c", "(498, 16.5)", 352],
            ["p", (249, 16), 0],
            ["f", (3984,), 0],
            ["d", (5,), 19925],
        ]
    )
    assert (res.status, res.score) == ("partial", 7)
    assert res.message.startswith("row 2 (Conv1D): its shape cannot be read (")
    assert "torch.Size included" in res.message


KERAS_SPEC = ShapeTableSpec.model_validate(
    {"id": "t", "type": "shape_table", "answer": "t", "leading_none": True}
)


def test_leading_none_as_keras_prints_it_when_the_rubric_opts_in() -> None:
    keras_rows = [
        ["input_1 (InputLayer)", "(None, 500, 7)", 0],
        ["conv1d (Conv1D)", "(None, 498, 16)", 352],
        ["max_pooling1d", [None, 249, 16], 0],
        ["flatten", "(None, 3984)", 0],
        ["dense", (None, 5), 19925],
    ]
    res = grade_shape_table(KERAS_SPEC, make_ctx({"t": keras_rows}, {"t": REF}))
    assert (res.status, res.score) == ("pass", 8)
    # without the opt-in the same rows' shapes cannot be read: parameters only
    plain = grade(keras_rows)
    assert plain.score == 4
    assert "holds None" in plain.message


def test_leading_none_does_not_excuse_a_batch_size_or_a_none_elsewhere() -> None:
    rows = [
        ["Input", (500, 7), 0],
        ["c", "(8, 498, 16)", 352],
        ["p", "(249, None)", 0],
        ["f", (3984,), 0],
        ["d", (5,), 19925],
    ]
    res = grade_shape_table(KERAS_SPEC, make_ctx({"t": rows}, {"t": REF}))
    assert res.score == 6
    assert [r["shape_ok"] for r in res.details["rows"]] == [False, False, True, True]
