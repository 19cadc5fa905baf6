import numpy as np

from grader.checks.choice import ChoiceSpec, grade_choice, read_choice
from tests.conftest import make_ctx

EXPECTED = {"tf": ["false", "true", "false", "true"]}


def spec() -> ChoiceSpec:
    return ChoiceSpec.model_validate(
        {"id": "tf", "type": "choice", "answer": "tf", "points_each": 1}
    )


def test_booleans_and_spellings_are_read() -> None:
    assert read_choice(True) == "true" and read_choice(False) == "false"
    assert read_choice(" T ") == "true" and read_choice("False.") == "false"
    assert read_choice("No") == "false" and read_choice(1) is None


def test_all_right_passes() -> None:
    res = grade_choice(spec(), make_ctx({"tf": [False, "True", "f", "yes"]}, EXPECTED))
    assert (res.status, res.score, res.max_score) == ("pass", 4, 4)


def test_item_by_item_credit() -> None:
    res = grade_choice(spec(), make_ctx({"tf": ["false"] * 4}, EXPECTED))
    assert (res.status, res.score) == ("partial", 2)
    assert "items 2, 4" in res.message


def test_short_list_and_not_a_list() -> None:
    short = grade_choice(spec(), make_ctx({"tf": [False, True]}, EXPECTED))
    assert short.score == 2 and "2 items, not 4" in short.message
    bad = grade_choice(spec(), make_ctx({"tf": "FTFT"}, EXPECTED))
    assert (bad.status, bad.score) == ("fail", 0)


def test_arrays_of_bools_and_of_zeros_and_ones() -> None:
    # np.array([...]) of bools, a 0/1 int array, a torch bool tensor (arrives as a bool
    # array), a (1, 4) row and a list of 0-d tensors: all read item by item.
    for answer in (
        np.array([False, True, False, True]),
        np.array([0, 1, 0, 1]),
        np.array([[0.0, 1.0, 0.0, 1.0]]),
        np.array([[False], [True], [False], [True]]),
        [np.array(False), np.array(True), np.array(0), np.array(1)],
        (0, 1, False, "T"),
    ):
        res = grade_choice(spec(), make_ctx({"tf": answer}, EXPECTED))
        assert (res.status, res.score) == ("pass", 4), answer


def test_numbers_other_than_zero_and_one_are_unreadable() -> None:
    res = grade_choice(spec(), make_ctx({"tf": np.array([0, 2, 0, 1])}, EXPECTED))
    assert (res.status, res.score) == ("partial", 3)
    assert res.message == (
        "item 2 of 4 wrong or unreadable; write each answer as True/False: booleans (NumPy "
        'and torch bools included), 0/1, or the strings "true"/"false"'
    )


def test_zero_and_one_are_not_read_where_the_choice_is_not_true_false() -> None:
    assert read_choice(1, boolean=True) == "true" and read_choice(0.0, boolean=True) == "false"
    assert read_choice(1) is None and read_choice(np.int64(0)) is None
    assert read_choice(np.bool_(True)) == "true"


def test_not_a_list_names_the_accepted_forms() -> None:
    for answer in (True, np.array(True), np.zeros((2, 2), dtype=bool), {"a": True}):
        res = grade_choice(spec(), make_ctx({"tf": answer}, EXPECTED))
        assert (res.status, res.score) == ("fail", 0)
        assert res.message == (
            "tf must be a list, a tuple or a 1-D array of 4 answers; each one True/False: "
            'booleans (NumPy and torch bools included), 0/1, or the strings "true"/"false"'
        )
