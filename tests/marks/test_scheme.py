import pytest
from pydantic import ValidationError

from grader.checks.text import TextSpec
from grader.marks.scheme import Cap, Concept, Group, scheme_mark


def concepts(*names: str, points: float | None = 1.0) -> list[Concept]:
    return [Concept(name=n, points=points, any=[n]) for n in names]


def test_sum_of_points_of_found_concepts() -> None:
    cs = [Concept(name="a", points=2, any=["a"]), Concept(name="b", points=1, any=["b"])]
    assert scheme_mark(cs, [], [], 3, {"a": True, "b": False}) == (2, [])


def test_equal_shares_without_points_as_before() -> None:
    cs = concepts("a", "b", "c", points=None)
    assert scheme_mark(cs, [], [], 3, {"a": True, "b": True, "c": False})[0] == pytest.approx(2)


def test_all_group_needs_every_member() -> None:
    cs = concepts("a", "b", points=0)
    groups = [Group(all=["a", "b"], points=2)]
    assert scheme_mark(cs, groups, [], 2, {"a": True, "b": False})[0] == 0
    assert scheme_mark(cs, groups, [], 2, {"a": True, "b": True})[0] == 2


def test_any_group_counts_once() -> None:
    cs = concepts("a", "b", points=0)
    groups = [Group(any=["a", "b"], points=1)]
    assert scheme_mark(cs, groups, [], 1, {"a": True, "b": True})[0] == 1
    assert scheme_mark(cs, groups, [], 1, {"a": False, "b": True})[0] == 1
    assert scheme_mark(cs, groups, [], 1, {"a": False, "b": False})[0] == 0


def test_caps_when_and_unless() -> None:
    cs = [*concepts("a", "b", "c"), Concept(name="wrong", points=0, any=["wrong"])]
    caps = [Cap(max=1, when=["wrong"]), Cap(max=1.5, unless=["a"])]
    found = {"a": True, "b": True, "c": True, "wrong": True}
    assert scheme_mark(cs, [], caps, 3, found) == (1, ["at most 1 (says: wrong)"])
    found = {"a": False, "b": True, "c": True, "wrong": False}
    assert scheme_mark(cs, [], caps, 3, found) == (1.5, ["at most 1.5 (without: a)"])


def test_mark_never_exceeds_the_points() -> None:
    cs = concepts("a", "b", "c", "d")
    assert scheme_mark(cs, [], [], 3, dict.fromkeys("abcd", True))[0] == 3


def spec(**extra: object) -> TextSpec:
    return TextSpec.model_validate(
        {"id": "Q", "type": "text", "heading": "Q", "points": 2, **extra}
    )


def test_rubric_errors_name_the_problem() -> None:
    with pytest.raises(ValidationError, match=r"unknown concept.*'c'"):
        spec(
            concepts=[{"name": "a", "points": 2, "any": ["a"]}],
            groups=[{"all": ["c"], "points": 1}],
        )
    with pytest.raises(ValidationError, match="at most 1 of the 2 points"):
        spec(concepts=[{"name": "a", "points": 1, "any": ["a"]}])
    with pytest.raises(ValidationError, match="can never be found"):
        spec(concepts=[{"name": "a", "points": 2}])
    with pytest.raises(ValidationError, match="exactly one of when: or unless:"):
        spec(concepts=[{"name": "a", "points": 2, "any": ["a"]}], caps=[{"max": 1}])
    with pytest.raises(ValidationError, match="defined twice"):
        spec(concepts=[{"name": "a", "points": 2, "any": ["a"]}, {"name": "a", "any": ["b"]}])
