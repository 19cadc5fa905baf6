"""``grade validate``'s listing of the behavioural rules each check enforces."""

from __future__ import annotations

from grader.rubric import load_rubric
from grader.validate import rules_listing


def _checks_with(rubric: str, words: str) -> set[str]:
    """Ids of the checks whose listed rules mention ``words``."""
    found: set[str] = set()
    current = ""
    for line in rules_listing(load_rubric(rubric)):
        if line.startswith("  ") and not line.startswith("    "):
            current = line.strip().split(" ")[0].split("/")[1]
        elif words in line:
            found.add(current)
    return found


def test_in_place_rules_only_where_the_handouts_state_them() -> None:
    # hw2.md says nothing about in-place changes; hw1.md says it of dropout alone
    # ("must not modify h1 in place"); hw4.md of batchnorm_forward ("The inputs must not
    # be modified in place"), not of Grad-CAM.
    assert _checks_with("hw2", "in place") == set()
    assert _checks_with("hw1", "in place") == {"dropout"}
    assert _checks_with("hw4", "in place") == {"batchnorm_forward"}


def test_every_check_is_listed_with_its_rules_or_none() -> None:
    rubric = load_rubric("hw2")
    lines = rules_listing(rubric)
    heads = [line for line in lines if line.startswith("  q")]
    assert len(heads) == len(rubric.checks())
    assert "  q1/relu_forward (function):" in lines
    dropout = lines[lines.index("  q1/dropout_backward (function):") + 2]
    assert "(out / x), whatever its mask and scale" in dropout
