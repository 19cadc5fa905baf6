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
