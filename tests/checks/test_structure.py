"""The structure check on hand-made records: the spec's keys, every spelling of a torch
function, each rule's verdict and message, calls that failed, and the report's view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from grader.checks.base import CheckContext, read_details
from grader.checks.structure import (
    StructureDetails,
    StructureSpec,
    function_key,
    grade_structure,
    structure_view,
    wrong_rules,
)
from grader.errors import RubricError
from grader.models import CallResult
from grader.rubric import load_rubric
from tests.conftest import make_ctx


def spec(**kw: Any) -> StructureSpec:
    base: dict[str, Any] = {"id": "s", "type": "structure", "points": 3}
    return StructureSpec.model_validate({**base, **kw})


MODEL = {"answer": "m", "probe": {"input_shape": [2, 10, 16]}}
FUNCTION = {"function": "attention", "cases": "attention_cases"}
CASES = {"s": {"cases": [{"name": "one head", "args": []}, {"name": "batch of one", "args": []}]}}


def record(
    layers: list[tuple[str, str | None, int, Any]] = (),  # type: ignore[assignment]
    functions: dict[str, int] | None = None,
    types: dict[str, list[str]] | None = None,
    params: dict[str, int] | None = None,
) -> dict[str, Any]:
    rows = [{"type": t, "name": n, "depth": d, "output_shape": s} for t, n, d, s in layers]
    modules: dict[str, int] = {}
    for row in rows:
        modules[row["type"]] = modules.get(row["type"], 0) + 1
    return {
        "layers": rows,
        "layers_dropped": 0,
        "modules": modules,
        "types": types or {t: [t] for t in modules},
        "types_dropped": 0,
        "functions": functions or {},
        "functions_dropped": 0,
        "params": params,
        "error": None,
    }


ATTENTION_MODEL = record(
    [
        ("__main__.Encoder", "", 0, [2, 10, 16]),
        ("torch.nn.MultiheadAttention", "attn", 1, [[2, 10, 16], [2, 10, 10]]),
        ("torch.nn.Linear", "ff", 1, [2, 10, 16]),
    ],
    {"torch.nn.functional.multi_head_attention_forward": 1, "torch.nn.functional.linear": 1},
    params={"torch.nn.MultiheadAttention": 1088, "torch.nn.Linear": 544, "__main__.Encoder": 1360},
)
LINEAR_MODEL = record(
    [
        ("__main__.Fake", "", 0, [2, 10, 16]),
        ("torch.nn.Linear", "a", 1, [2, 10, 16]),
        ("torch.nn.Linear", "b", 1, [2, 10, 16]),
    ],
    {"torch.nn.functional.linear": 2},
    params={"torch.nn.Linear": 544, "__main__.Fake": 544},
)


def probed(structure: dict[str, Any] | None, ran: bool = True) -> dict[str, Any]:
    return {"ran": ran, "error": None if ran else "ValueError: boom", "structure": structure}


def called(*records: tuple[str, dict[str, Any] | None]) -> CheckContext:
    calls = {
        f"s/case{i}": CallResult(
            id=f"s/case{i}",
            status="ok" if status == "ok" else "error",  # type: ignore[arg-type]
            message="" if status == "ok" else status,
            structure=rec,
        )
        for i, (status, rec) in enumerate(records)
    }
    return CheckContext(answers={}, expected=CASES, markdown=(), execution=None, calls=calls)


# ------------------------------------------------------------------ the spec


def test_keys_expand_and_are_checked() -> None:
    s = spec(
        **MODEL,
        requires_modules=["nn.MultiheadAttention"],
        forbids_functions=["F.scaled_dot_product_attention"],
        params={"nn.MultiheadAttention": 1088},
    )
    assert s.requires_modules == ["torch.nn.MultiheadAttention"]
    assert s.forbids_functions == ["torch.nn.functional.scaled_dot_product_attention"]
    assert s.params == {"torch.nn.MultiheadAttention": 1088}
    assert s.rules() == [
        "torch.nn.MultiheadAttention must run in the forward pass of m",
        "torch.nn.functional.scaled_dot_product_attention must not be called in the forward "
        "pass of m (in any spelling)",
        "modules of type torch.nn.MultiheadAttention hold 1,088 parameters",
    ]


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({**MODEL, **FUNCTION, "forbids_modules": ["a.B"]}, "not both"),
        ({"forbids_modules": ["a.B"]}, "not both"),
        ({"answer": "m", "forbids_modules": ["a.B"]}, "needs probe"),
        ({"function": "f", "forbids_modules": ["a.B"]}, "needs cases"),
        ({**MODEL}, "at least one rule"),
        ({**FUNCTION, "params": {"torch.nn.Linear": 3}}, "give answer"),
        ({**MODEL, "forbids_functions": ["softmax"]}, "not a qualified name"),
        ({**MODEL, "forbids_modules": ["a.B"], "cases": "c"}, "belong to a function"),
        ({**MODEL, "forbids_module": ["a.B"]}, "Extra inputs"),
    ],
)
def test_bad_specs_say_what_to_do(keys: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        spec(**keys)


def test_every_spelling_of_a_function_is_one() -> None:
    softmax = {
        function_key(n)
        for n in (
            "torch.softmax",
            "torch.Tensor.softmax",
            "torch.nn.functional.softmax",
            "F.softmax",
            "torch.special.softmax",
        )
    }
    assert softmax == {"torch.softmax"}
    assert function_key("torch.Tensor.__matmul__") == function_key("torch.matmul")
    assert function_key("torch.Tensor.matmul") == "torch.matmul"
    assert function_key("torch.nn.functional.relu_") == function_key("torch.relu")
    assert function_key("torch.Tensor.backward") == function_key("torch.autograd.backward")
    assert function_key("torch.autograd.grad") == "torch.autograd.grad"
    assert function_key("torch.nn.init.uniform_") == "torch.nn.init.uniform_"
    assert function_key("torch.mm") != function_key("torch.matmul")


# ------------------------------------------------------------------ a model answer


def test_a_model_using_attention_passes() -> None:
    s = spec(
        **MODEL,
        requires_modules=["torch.nn.MultiheadAttention"],
        params={"torch.nn.MultiheadAttention": 1088},
    )
    res = grade_structure(s, make_ctx({"m": probed(ATTENTION_MODEL)}))
    assert (res.status, res.score, res.max_score) == ("pass", 3, 3)
    assert res.message == "all 2 structure rules hold"
    details = read_details(res)
    assert isinstance(details, StructureDetails)
    assert [row.type for row in details.layers][1] == "torch.nn.MultiheadAttention"


def test_linear_layers_of_the_right_shapes_fail_the_requirement() -> None:
    s = spec(
        **MODEL,
        requires_modules=["torch.nn.MultiheadAttention"],
        params={"torch.nn.MultiheadAttention": 1088},
    )
    res = grade_structure(s, make_ctx({"m": probed(LINEAR_MODEL)}))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == (
        "no torch.nn.MultiheadAttention ran in the forward pass of m; the handout asks you "
        "to use one (modules that ran: torch.nn.Linear ×2, __main__.Fake ×1); the model has "
        "no module of type torch.nn.MultiheadAttention; the handout's architecture has one"
    )


def test_a_subclass_satisfies_the_requirement_and_the_wrong_size_fails() -> None:
    sub = record(
        [("x.MyAttention", None, 0, [2, 10, 16])],
        types={"x.MyAttention": ["x.MyAttention", "torch.nn.MultiheadAttention"]},
        params={"x.MyAttention": 272, "torch.nn.MultiheadAttention": 272},
    )
    s = spec(
        **MODEL,
        requires_modules=["torch.nn.MultiheadAttention"],
        params={"torch.nn.MultiheadAttention": 1088},
    )
    res = grade_structure(s, make_ctx({"m": probed(sub)}))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == (
        "modules of type torch.nn.MultiheadAttention hold 272 parameters; the handout's "
        "architecture has 1,088"
    )
    hidden = s.model_copy(update={"show_expected": False})
    assert (
        "not the handout's count" in grade_structure(hidden, make_ctx({"m": probed(sub)})).message
    )


def test_forbidden_module_names_what_ran() -> None:
    s = spec(**MODEL, forbids_modules=["torch.nn.MultiheadAttention"])
    res = grade_structure(s, make_ctx({"m": probed(ATTENTION_MODEL)}))
    assert res.message == (
        "torch.nn.MultiheadAttention ran in the forward pass of m; the handout asks you to "
        "implement it yourself"
    )


def test_a_failed_forward_or_missing_answer_earns_nothing() -> None:
    s = spec(**MODEL, forbids_modules=["torch.nn.MultiheadAttention"])
    res = grade_structure(s, make_ctx({"m": probed(record(), ran=False)}))
    assert (res.status, res.score) == ("error", 0)
    assert "raised ValueError: boom, so its structure could not be observed" in res.message
    res = grade_structure(s, make_ctx({}))
    assert (res.status, res.score) == ("fail", 0)
    res = grade_structure(s, make_ctx({"m": probed(None)}))
    assert (res.status, res.message) == ("error", "probing m recorded nothing about its structure")


# ------------------------------------------------------------------ a function


SDPA = "torch.nn.functional.scaled_dot_product_attention"
HAND = record(functions={"torch.Tensor.matmul": 2, "torch.softmax": 1, "torch.Tensor.transpose": 1})
SHORTCUT = record(functions={SDPA: 1, "torch.from_numpy": 3})


def test_a_function_calling_the_forbidden_one_fails() -> None:
    s = spec(**FUNCTION, forbids_functions=[SDPA])
    res = grade_structure(s, called(("ok", SHORTCUT), ("ok", SHORTCUT)))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == (
        "torch.nn.functional.scaled_dot_product_attention was called inside attention "
        "(2 times); the handout asks you to implement it yourself"
    )
    view = structure_view(res, read_details(res))
    assert view["functions"] == [
        {"name": "torch.from_numpy", "count": "6"},
        {"name": SDPA, "count": "2"},
    ]
    assert view["cases"] == "2 of 2"
    # The class summary groups wrong answers by the rule they broke.
    assert wrong_rules(res, read_details(res)) == [(f"forbids_functions: {SDPA}", True)]


def test_a_hand_written_function_passes_and_spellings_match() -> None:
    s = spec(**FUNCTION, forbids_functions=[SDPA], requires_functions=["F.softmax"])
    res = grade_structure(s, called(("ok", HAND), ("ok", HAND)))
    assert (res.status, res.score) == ("pass", 3)
    assert res.message == "all 2 structure rules hold"
    one = spec(**FUNCTION, forbids_functions=[SDPA])
    assert grade_structure(one, called(("ok", HAND))).message.startswith("the structure rule holds")
    details = read_details(res)
    assert isinstance(details, StructureDetails)
    assert details.rules[0].message == (
        "torch.softmax (a form of torch.nn.functional.softmax) was called inside attention"
    )


def test_autograd_in_a_hand_written_backward_fails() -> None:
    s = spec(**FUNCTION, forbids_functions=["torch.autograd.grad", "torch.autograd.backward"])
    backward = record(functions={"torch.Tensor.backward": 1})
    res = grade_structure(s, called(("ok", backward), ("ok", backward)))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message == (
        "torch.Tensor.backward (a form of torch.autograd.backward) was called inside "
        "attention (2 times); the handout asks you to implement it yourself"
    )


def test_calls_that_failed() -> None:
    s = spec(**FUNCTION, forbids_functions=[SDPA])
    # One case raised after calling the forbidden function: it still counts.
    res = grade_structure(s, called(("ok", HAND), ("ValueError: later", SHORTCUT)))
    assert (res.status, res.score) == ("fail", 0)
    assert res.message.endswith(
        "(observed on the 1 of 2 cases that ran to the end; batch of one: ValueError: later)"
    )
    # Every case raised: nothing complete was observed.
    res = grade_structure(s, called(("ValueError: x", HAND), ("ValueError: x", HAND)))
    assert (res.status, res.score) == ("error", 0)
    assert res.message.startswith("attention did not complete on any case (one head: ")
    # The module was never run.
    empty = CheckContext(answers={}, expected=CASES, markdown=(), execution=None)
    assert grade_structure(s, empty).status == "error"
    missing = CheckContext(
        answers={},
        expected=CASES,
        markdown=(),
        execution=None,
        calls={"s/case0": CallResult(id="s/case0", status="missing_function", message="no f")},
    )
    assert (grade_structure(s, missing).status, grade_structure(s, missing).message) == (
        "fail",
        "no f",
    )


def test_calls_are_recorded_per_case() -> None:
    s = spec(**FUNCTION, forbids_functions=[SDPA])
    calls = s.calls(
        {"s": {"cases": [{"name": "a", "args": (1,), "seed": 4}, {"name": "b", "args": (2,)}]}}
    )
    assert [(c.id, c.args, c.seed, c.record_structure) for c in calls] == [
        ("s/case0", (1,), 4, True),
        ("s/case1", (2,), None, True),
    ]
    assert spec(**MODEL, forbids_modules=["a.B"]).calls({}) == []


def test_the_view_draws_the_layer_list() -> None:
    s = spec(**MODEL, requires_modules=["torch.nn.MultiheadAttention"])
    res = grade_structure(s, make_ctx({"m": probed(ATTENTION_MODEL)}))
    view = structure_view(res, read_details(res))
    assert view["layers"] == [
        {"indent": 0, "type": "__main__.Encoder", "name": "(the model)", "shape": "(2, 10, 16)"},
        {
            "indent": 1,
            "type": "torch.nn.MultiheadAttention",
            "name": "attn",
            "shape": "(2, 10, 16), (2, 10, 10)",
        },
        {"indent": 1, "type": "torch.nn.Linear", "name": "ff", "shape": "(2, 10, 16)"},
    ]
    assert view["params"][0] == {"type": "__main__.Encoder", "count": "1,360"}
    assert view["rules"] == [
        {
            "ok": True,
            "rule": "requires modules",
            "message": "torch.nn.MultiheadAttention ran in the forward pass of m",
        }
    ]


def test_a_function_is_called_where_the_rubric_says(tmp_path: Path) -> None:
    rubric = tmp_path / "r.yaml"
    rubric.write_text(
        "assignment: a\ntitle: A\nreference: ref.py\nnotebook: a.ipynb\nquestions:\n"
        "  - id: q1\n    checks:\n"
        "      - {id: s, type: structure, points: 1, function: f, cases: c,\n"
        "         forbids_functions: [torch.matmul]}\n"
        "      - {id: m, type: structure, points: 1, answer: m, probe: {input_shape: [1]},\n"
        "         forbids_functions: [torch.matmul]}\n"
    )
    notebook_only = load_rubric(rubric)
    assert [c.call_source() for c in notebook_only.checks()] == ["notebook", None]
    rubric.write_text(rubric.read_text().replace("cases: c,", "cases: c, source: module,"))
    with pytest.raises(RubricError, match=r"add `module: <file>\.py`"):
        load_rubric(rubric)
    assert spec(**FUNCTION, forbids_modules=["a.B"]).call_source() == "module"
    assert spec(**MODEL, forbids_modules=["a.B"]).call_source() is None
