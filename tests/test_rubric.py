from pathlib import Path

import pytest

from grader.checks import REGISTRY
from grader.errors import RubricError
from grader.rubric import load_rubric

HEAD = (
    "assignment: x\ntitle: T\nreference: hw3\nnotebook: x.ipynb\n"
    "questions:\n  - id: q1\n    checks:\n"
)


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(HEAD + body)
    return path


def test_hw3_by_name_and_by_file_name() -> None:
    by_name = load_rubric("hw3")
    assert load_rubric("hw3.yaml").sha256 == by_name.sha256
    assert [q.id for q in by_name.questions] == ["q1", "q2", "q3", "q4", "q6", "q7"]
    assert [c.id for c in by_name.checks()][:6] == ["Q1a", "Q1b", "Q1c", "Q1d", "q2_O", "q2_G"]
    assert by_name.solution is not None and by_name.solution.name == "solution"


def test_unknown_key_names_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "      - id: a\n        type: value\n        answer: a\n"
        "        points: 2\n        rtoll: 1\n",
    )
    with pytest.raises(RubricError) as err:
        load_rubric(path)
    assert err.value.line == 12
    assert str(err.value) == f"{path}:12: check 'a': unknown key 'rtoll'"


def test_unknown_type_lists_known(tmp_path: Path) -> None:
    path = write(tmp_path, "      - {id: a, type: tensor, answer: a, points: 1}\n")
    with pytest.raises(
        RubricError,
        match=r":8: check 'a': unknown type 'tensor' "
        rf"\(known types: {', '.join(sorted(REGISTRY))}\)",
    ):
        load_rubric(path)


def test_missing_key_and_bad_value(tmp_path: Path) -> None:
    with pytest.raises(RubricError, match=r"missing key 'points'"):
        load_rubric(write(tmp_path, "      - {id: a, type: value, answer: a}\n"))
    with pytest.raises(RubricError, match=r"points: Input should be greater than or equal to 0"):
        load_rubric(write(tmp_path, "      - {id: a, type: value, answer: a, points: -1}\n"))


def test_top_level_unknown_key(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("assignment: x\ntitel: T\n")
    with pytest.raises(
        RubricError, match=r"r.yaml:2: unknown key 'titel' \(did you mean 'title'\?\)"
    ):
        load_rubric(path)


def test_duplicate_check_id(tmp_path: Path) -> None:
    body = (
        "      - {id: a, type: value, answer: a, points: 1}\n"
        "      - {id: a, type: value, answer: b, points: 1}\n"
    )
    with pytest.raises(RubricError, match=r":9: check id 'a' is used twice \(also at line 8\)"):
        load_rubric(write(tmp_path, body))


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("assignment: x\ntitle: [unclosed\nnotebook: a\n")
    with pytest.raises(RubricError, match=r"not valid YAML"):
        load_rubric(path)


def test_unknown_rubric_name() -> None:
    with pytest.raises(RubricError, match=r"no rubric of that name .*known: .*hw3"):
        load_rubric("hw99")


FUNCTION_CHECK = "      - {id: f, type: function, points: 1, reference: f, cases: f_cases}\n"


def test_module_rubric_without_notebook(tmp_path: Path) -> None:
    hw2 = load_rubric("hw2")
    assert (hw2.module, hw2.notebook) == ("layers.py", None)
    assert len(hw2.checks()) == 13
    path = tmp_path / "m.yaml"
    path.write_text(HEAD.replace("notebook: x.ipynb", "module: layers.py") + FUNCTION_CHECK)
    assert load_rubric(path).module == "layers.py"


def test_rubric_needs_a_notebook_or_a_module(tmp_path: Path) -> None:
    path = tmp_path / "n.yaml"
    path.write_text(HEAD.replace("notebook: x.ipynb\n", "") + FUNCTION_CHECK)
    with pytest.raises(RubricError, match=r"needs `notebook:`.*`module:`"):
        load_rubric(path)


def test_function_check_source_defaults_from_the_rubric(tmp_path: Path) -> None:
    """``source:`` defaults to ``notebook`` without ``module:``, to ``module`` with one."""
    (check,) = load_rubric(write(tmp_path, FUNCTION_CHECK)).checks()
    assert check.call_source() == "notebook"
    path = tmp_path / "m.yaml"
    path.write_text(
        HEAD.replace("notebook: x.ipynb", "notebook: x.ipynb\nmodule: layers.py") + FUNCTION_CHECK
    )
    rubric = load_rubric(path)
    assert [c.call_source() for c in rubric.checks()] == ["module"]
    assert rubric.calls({"f": {"cases": [{"args": (1,)}]}}, "notebook") == []
    assert [c.id for c in rubric.calls({"f": {"cases": [{"args": (1,)}]}}, "module")] == ["f/case0"]


def test_function_check_needs_what_its_source_names(tmp_path: Path) -> None:
    explicit = FUNCTION_CHECK.replace("cases: f_cases", "cases: f_cases, source: module")
    with pytest.raises(RubricError, match=r"calls the student's module.*module: <file>\.py"):
        load_rubric(write(tmp_path, explicit))
    path = tmp_path / "n.yaml"
    path.write_text(
        HEAD.replace("notebook: x.ipynb", "module: layers.py")
        + FUNCTION_CHECK.replace("cases: f_cases", "cases: f_cases, source: notebook")
    )
    with pytest.raises(RubricError, match=r"calls functions of the notebook.*notebook: <file>"):
        load_rubric(path)
    path = tmp_path / "v.yaml"
    path.write_text(
        HEAD.replace("notebook: x.ipynb", "module: layers.py")
        + "      - {id: a, type: value, answer: a, points: 1}\n"
    )
    with pytest.raises(RubricError, match="reads answers from the notebook"):
        load_rubric(path)
