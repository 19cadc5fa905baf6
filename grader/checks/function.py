"""``type: function`` — a student's function called on grader-made inputs, all or nothing.

The rubric names the student's function, a reference function and a case generator in
the rubric's reference module::

    - {id: conv_backward_naive, type: function, points: 10, forward: conv_forward_naive,
       reference: conv_backward_naive, cases: conv_cases, output_names: [dx, dw, db],
       rel_error: 1.0e-6, squeeze_size1: true, check_inplace: true}

The generator returns a list of cases ``{"name", "args", "kwargs"?, "dout"?, "seed"?,
"families"?, "arg_names"?}`` (seeded NumPy, edge cases named in words; ``families``: the
words of the edge cases the case is an instance of, see :mod:`grader.cases`, named by
the message when exactly that family's cases fail; ``arg_names``: what to call ``args``
in messages when no reference function's signature says). The reference runs in the
grader, on a deep copy of each case's arguments, when expected values are computed (and
cached with them): a plain check keeps the reference's return value and the arguments
named by ``return_args`` after the call (a stateful ``bn_param``); a backward check
(``forward:`` set) calls ``reference(dout, *args, **kwargs)``, which the reference module
implements by torch autograd on its own forward.

Where the function lives is ``source:``: ``module`` (the rubric's ``module:``, imported
in a sandboxed worker) or ``notebook`` (defined by the notebook, called in its kernel
after the last cell); by default ``module`` when the rubric names one. Calls made, per
case ``i``: a plain check calls the function once; a backward check first calls the
student's *forward* on the case (keeping its return value in the sandbox) and then the
backward on ``(dout, cache)``, the cache being element ``cache_index`` of what that
forward returned.

How each case is judged is the spec's ``grading:``, a name registered in
:mod:`grader.checks.function_grading`: ``values`` (the default) compares with the
reference's return values; ``dropout_forward`` / ``dropout_backward``
(:mod:`grader.checks.dropout`) judge inverted dropout by its statistics.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from grader.checks.base import MACROS, CallingSpec, CheckContext, Details, register, result, view
from grader.checks.function_grading import (
    GRADINGS,
    Case,
    Problem,
    call_problem,
    forward_problem,
    shape_text,
    short,
)
from grader.models import Call, CheckResult, Stored
from grader.normalize import NotNumeric, to_array
from grader.report.format import (
    expected_of,
    fmt_compact,
    got_of,
    shorten,
    text_direction,
    trim_traceback,
)


class FunctionSpec(CallingSpec):
    """A student's function (of their module, or defined by their notebook: ``source``)
    compared with the reference on every case, all or nothing."""

    type: Literal["function"]
    function: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The student's function to call; default: the check's id."""
    reference: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The reference module's function run on each case (on a deep copy of its arguments) to
    give the expected outputs; none where the grading needs no reference outputs (dropout)."""
    cases: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """The reference module's case generator: a function returning a list of case dicts (name,
    args, kwargs, dout, seed, families), computed once with the expected values. The
    students never see them (hidden cases)."""
    points: float = Field(ge=0)
    """Points when every case passes (all or nothing)."""
    forward: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """For a backward function: the student's forward function, called first on each case; the
    backward is then called on (dout, cache), so it is judged with the student's own cache."""
    cache_index: int = Field(default=1, ge=0)
    """Which element of the forward's return value is the cache (1: the second, as in (out,
    cache))."""
    outputs: list[int] | None = None
    """The elements of a returned tuple that are compared (0-based); none: all of them."""
    output_names: list[str] = Field(default_factory=list)
    """What to call the returned values in messages (dx, dw, db)."""
    rel_error: float | None = Field(default=None, gt=0)
    """Each output passes when max |a − b| / max(1e-8, |a| + |b|) ≤ rel_error (default 1e-6
    when no tolerance is given). Give either rel_error or rtol/atol."""
    rtol: float | None = Field(default=None, ge=0)
    """Relative tolerance: each element passes when |got − expected| ≤ atol + rtol·|expected|."""
    atol: float | None = Field(default=None, ge=0)
    """Absolute tolerance (see rtol)."""
    squeeze_size1: bool = False
    """Accept outputs whose shape differs from the reference's only by axes of size 1 ((N, 1)
    for (N,))."""
    # Off unless the handout forbids changing the inputs: a check enforces only what its
    # handout states (HW2 says nothing of it; HW1's dropout and HW4 do).
    check_inplace: bool = False
    """The function must not modify its input arrays: turn it on only where the handout says
    so."""
    return_args: list[int] = Field(default_factory=list)
    """Positions of arguments (0-based) that must hold the reference's values after the call:
    state the function writes back, such as running statistics in bn_param."""
    grading: str = "values"
    """How each case is judged, a name registered in grader/checks/function_grading.py: values
    (compare with the reference's outputs), dropout_forward, dropout_backward."""
    public_cases: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """A generator in the reference module, like cases:, of the public cases: the students'
    self-check (grade assign) ships them with the reference's outputs. They are never
    graded, and none may equal a hidden case (refused when the expected values are
    computed). Only with grading: values."""
    false_fail: float = Field(default=1e-6, gt=0, lt=0.5)
    """For statistical gradings (dropout): the largest probability that a correct function
    fails."""

    @model_validator(mode="after")
    def _consistent(self) -> FunctionSpec:
        if self.rel_error is not None and (self.rtol is not None or self.atol is not None):
            raise ValueError("give either rel_error or rtol/atol, not both")
        if self.public_cases is not None and (self.grading != "values" or self.reference is None):
            raise ValueError(
                "public_cases needs `grading: values` and a `reference:` function: the "
                "self-check compares outputs with the reference's"
            )
        problem = GRADINGS[self.grading].requires(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    @field_validator("grading")
    @classmethod
    def _known_grading(cls, value: str) -> str:
        if value not in GRADINGS:
            raise ValueError(f"unknown grading {value!r}: one of {', '.join(GRADINGS)}")
        return value

    @property
    def student_function(self) -> str:
        """The function called in the student's module (defaults to the check id)."""
        return self.function or self.id

    def rules(self) -> list[str]:
        """What a case requires besides equal values, each from a rubric key."""
        fn = self.student_function
        found: list[str] = []
        if self.check_inplace:
            found.append(f"{fn} must not modify its inputs in place (check_inplace)")
        if self.forward is not None:
            found.append(f"{fn} is called with the cache of the student's own {self.forward}")
        found += GRADINGS[self.grading].rules(self)
        for pos in self.return_args:
            found.append(
                f"argument {pos + 1} must hold the reference's values after the call, "
                "e.g. running statistics written back (return_args)"
            )
        return found

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points

    def compute_expected(self, reference: ModuleType) -> Any:
        """The cases and what the reference returns on them (run in the grader)."""
        return compute_cases(self, reference)

    def calls(self, expected: Mapping[str, Any]) -> list[Call]:
        """One call per case; a backward's call preceded by its forward's."""
        cases = expected.get(self.reference_key, {}).get("cases", [])
        calls: list[Call] = []
        for i, case in enumerate(cases):
            args = tuple(case["args"])
            kwargs = dict(case.get("kwargs") or {})
            seed = case.get("seed")
            if self.forward is None:
                calls.append(
                    Call(
                        id=call_id(self, i),
                        function=self.student_function,
                        args=args,
                        kwargs=kwargs,
                        return_args=tuple(self.return_args),
                        seed=seed,
                    )
                )
                continue
            key = f"{self.id}/{i}"
            calls.append(
                Call(
                    id=forward_id(self, i),
                    function=self.forward,
                    args=args,
                    kwargs=kwargs,
                    store=key,
                    seed=seed,
                )
            )
            calls.append(
                Call(
                    id=call_id(self, i),
                    function=self.student_function,
                    args=(case["dout"], Stored(key, self.cache_index)),
                )
            )
        return calls


class FunctionDetails(Details):
    """Every case's name when all pass; else the case shown and why it failed (``error``:
    the size of the error, or a word such as ``shape`` or ``missing``), every failing
    case, the shown case's inputs in words, and the family of edge cases that alone fails."""

    cases: list[str] | None = None
    case: str | None = None
    error: float | str | None = None
    failing_cases: list[str] | None = None
    inputs: str | None = None
    family: str | None = None


def call_id(spec: FunctionSpec, index: int) -> str:
    """The id of the call that case ``index`` grades."""
    return f"{spec.id}/case{index}"


def forward_id(spec: FunctionSpec, index: int) -> str:
    """The id of the forward call whose cache a backward case uses."""
    return f"{spec.id}/case{index}/forward"


# ------------------------------------------------------------------ expected values


def compute_cases(spec: FunctionSpec, reference: ModuleType) -> dict[str, Any]:
    """Run the case generator and the reference function on every case."""
    generator = getattr(reference, spec.cases, None)
    if not callable(generator):
        raise ValueError(f"the reference module has no case generator {spec.cases!r}")
    ref_fn = getattr(reference, spec.reference, None) if spec.reference else None
    if spec.reference is not None and not callable(ref_fn):
        raise ValueError(f"the reference module has no function {spec.reference!r}")
    generated = list(generator())
    out_cases = [_case_entry(spec, case, ref_fn) for case in generated]
    if not out_cases:
        raise ValueError(f"{spec.cases} generated no cases")
    names = _arg_names(ref_fn, spec)
    given = generated[0].get("arg_names") or ()
    inputs = _input_names(ref_fn, spec) or [str(n) for n in given]
    data: dict[str, Any] = {"cases": out_cases, "arg_names": names, "input_names": inputs}
    if spec.public_cases is not None:
        data["public"] = _public_entries(spec, reference, ref_fn, out_cases)
    return data


def _public_entries(
    spec: FunctionSpec, reference: ModuleType, ref_fn: Any, hidden: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The public cases with the reference's outputs; a public case whose inputs equal a
    hidden case's is refused (its expected output would give the hidden one away)."""
    generator = getattr(reference, str(spec.public_cases), None)
    if not callable(generator):
        raise ValueError(f"the reference module has no public case generator {spec.public_cases!r}")
    entries = [_case_entry(spec, case, ref_fn) for case in generator()]
    if not entries:
        raise ValueError(f"{spec.public_cases} generated no cases")
    for entry in entries:
        for secret in hidden:
            if same_inputs(entry, secret):
                raise ValueError(
                    f"public case {entry['name']!r} of {spec.public_cases} has the same inputs "
                    f"as the hidden case {secret['name']!r} of {spec.cases}: a public case "
                    "must differ from every hidden case"
                )
    return entries


def same_inputs(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two cases call the function on equal arguments (and the same ``dout``)."""
    return _equal_data(
        [list(a["args"]), a.get("kwargs") or {}, a.get("dout")],
        [list(b["args"]), b.get("kwargs") or {}, b.get("dout")],
    )


def _equal_data(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        return x.shape == y.shape and bool(np.array_equal(x, y))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_equal_data(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_equal_data(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


def _case_entry(spec: FunctionSpec, case: Mapping[str, Any], ref_fn: Any) -> dict[str, Any]:
    """One generated case as kept with the expected values: its inputs, families and what
    the reference returns on a deep copy of them."""
    args = list(case["args"])
    kwargs = dict(case.get("kwargs") or {})
    entry: dict[str, Any] = {
        "name": str(case["name"]),
        "args": tuple(args),
        "kwargs": kwargs,
    }
    if case.get("seed") is not None:
        entry["seed"] = int(case["seed"])
    families = case.get("families") or ()
    if isinstance(families, str) or not all(isinstance(f, str) for f in families):
        raise ValueError(f"case {case['name']!r} of {spec.cases}: families must be words")
    # What the case is an instance of ("non-square output", "pad 0"): the message
    # names the family when exactly its cases fail.
    entry["families"] = list(families)
    if spec.forward is not None:
        if "dout" not in case:  # the backward is called on (dout, cache)
            raise ValueError(f"case {case['name']!r} of {spec.cases} has no dout")
        entry["dout"] = case["dout"]
    if ref_fn is not None:
        call_args = copy.deepcopy(args)
        call_kwargs = copy.deepcopy(kwargs)
        if spec.forward is not None:
            returned = ref_fn(case["dout"], *call_args, **call_kwargs)
        else:
            returned = ref_fn(*call_args, **call_kwargs)
        entry["tuple"] = isinstance(returned, tuple | list)
        entry["returned"] = [_plain(v) for v in returned] if entry["tuple"] else _plain(returned)
        entry["args_after"] = {str(i): _plain(call_args[i]) for i in spec.return_args}
    return entry


def _arg_names(ref_fn: Any, spec: FunctionSpec) -> list[str]:
    if spec.forward is not None:
        return ["dout", "cache"]
    return _positional(ref_fn)


def _input_names(ref_fn: Any, spec: FunctionSpec) -> list[str]:
    """The names of a case's ``args`` (a backward's reference takes ``dout`` first)."""
    names = _positional(ref_fn)
    return names[1:] if spec.forward is not None else names


def _positional(ref_fn: Any) -> list[str]:
    if ref_fn is None:
        return []
    try:
        params = inspect.signature(ref_fn).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _plain(value: Any) -> Any:
    """A reference value as NumPy/Python data (torch tensors become float64 arrays)."""
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value) if isinstance(value, np.ndarray) else value.item()
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().cpu().numpy())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# ------------------------------------------------------------------ the check


@register("function", FunctionSpec, details=FunctionDetails)
def grade_function(spec: FunctionSpec, ctx: CheckContext) -> CheckResult:
    """Every case must pass. The message names the first failing case in words, or, when
    the failing cases are exactly one family's (:func:`separating_family`), that family
    and its smallest failing case with the inputs to rebuild it; the status is that of
    the case shown."""
    top = spec.points
    fn = spec.student_function
    unavailable = spec.calls_unavailable(ctx, fn)
    if unavailable is not None:
        return unavailable
    made = spec.call_results(ctx)
    data = ctx.expected[spec.reference_key]
    cases: list[Mapping[str, Any]] = data["cases"]
    arg_names: list[str] = list(data.get("arg_names") or [])
    judge = GRADINGS[spec.grading].judge
    problems: list[tuple[int, Problem]] = []
    for i, case in enumerate(cases):
        name = str(case["name"])
        forward = made.get(forward_id(spec, i)) if spec.forward is not None else None
        problem = forward_problem(spec, forward, name)
        if problem is None:
            res = made.get(call_id(spec, i))
            problem = call_problem(spec, res, name)
            if problem is None and res is not None:
                problem = judge(spec, Case(case, res, forward, arg_names, len(cases)))
        if problem is not None:
            problems.append((i, problem))
            # A missing function fails every case alike. Any other problem is graded on
            # every case: which cases fail is what tells a family's bug apart.
            if problem.error == "missing":
                break
    if not problems:
        return result(
            spec,
            top,
            top,
            "pass",
            f"{fn} is correct on all {len(cases)} test cases",
            details=FunctionDetails(cases=[str(c["name"]) for c in cases]),
        )
    input_names: list[str] = list(data.get("input_names") or [])
    failing = [i for i, _ in problems]
    # A backward whose forward failed is not wrong on a family: its forward is (and the
    # forward's own check names the family).
    attributable = all(p.error not in ("missing", "forward failed") for _, p in problems)
    family = separating_family(cases, failing) if attributable else None
    if family is None:
        index, shown = problems[0]
        if shown.error == "missing":
            message = shown.message
        else:
            message = f"case '{shown.case}': {shown.message}"
            # Cases never run (after a call that hung or stopped the kernel) are not wrong.
            others = [
                p.case for _, p in problems[1:] if p.case != shown.case and p.error != "not run"
            ]
            if others:
                message += f" (also wrong: {', '.join(repr(c) for c in others[:5])})"
    else:
        # The smallest failing case of the family, with its inputs, so that the student
        # can rebuild it.
        index, shown = min(problems, key=lambda item: (_input_size(cases[item[0]]), item[0]))
        message = (
            f"wrong only on the {family!r} cases ({len(failing)} of {len(cases)}), e.g. "
            f"case '{shown.case}' ({describe_inputs(cases[index], input_names)}): "
            f"{shown.message}"
        )
    details = FunctionDetails(
        case=shown.case,
        error=shown.error if shown.error is not None else shown.message,
        failing_cases=[p.case for _, p in problems],
        inputs=describe_inputs(cases[index], input_names),
        **({"family": family} if family is not None else {}),
    )
    return result(
        spec,
        top,
        0,
        shown.status,
        message,
        expected=shown.expected,
        got=shown.got,
        details=details,
    )


def separating_family(cases: Sequence[Mapping[str, Any]], failing: Sequence[int]) -> str | None:
    """The family whose cases are exactly the failing ones (some case passing), if any:
    the bug shows on that family and nowhere else. The first such family in the cases'
    order; ``grader.cases.cover`` tells families apart, so there is at most one."""
    bad = set(failing)
    if not bad or len(bad) == len(cases):
        return None
    seen: dict[str, set[int]] = {}
    for i, case in enumerate(cases):
        for family in case.get("families") or ():
            seen.setdefault(str(family), set()).add(i)
    for family, members in seen.items():
        if members == bad:
            return family
    return None


def describe_inputs(case: Mapping[str, Any], names: Sequence[str]) -> str:
    """A case's inputs in words, enough to rebuild it: arrays by shape, numbers and
    strings by value, a dict of parameters by its entries (``stride 1, pad 1``)."""
    parts = [
        _describe(names[k] if k < len(names) else f"argument {k + 1}", value)
        for k, value in enumerate(case.get("args") or ())
    ]
    parts += [_describe(str(k), v) for k, v in (case.get("kwargs") or {}).items()]
    return ", ".join(p for p in parts if p)


def _describe(name: str, value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return f"{name} {shape_text(value.shape)}" if value.ndim else f"{name} {value.item():g}"
    if isinstance(value, Mapping):
        if "__torch_model__" in value:
            return f"{name} (a torch model)"
        return ", ".join(_describe(str(k), v) for k, v in value.items())
    if isinstance(value, bool | str):
        return f"{name} {value!r}"
    if isinstance(value, int | float):
        return f"{name} {value:g}"
    if isinstance(value, list | tuple):
        try:
            return f"{name} {shape_text(to_array(value).shape)}"
        except NotNumeric:
            return f"{name} {short(value)}"
    return f"{name} {short(value)}"


def _input_size(case: Mapping[str, Any]) -> int:
    """How many numbers a case's inputs hold (its size, for picking the smallest)."""

    def size(value: Any) -> int:
        if isinstance(value, np.ndarray):
            return int(value.size)
        if isinstance(value, Mapping):
            return sum(size(v) for v in value.values())
        if isinstance(value, list | tuple):
            return sum(size(v) for v in value)
        return 1

    return size(list(case.get("args") or ())) + size(dict(case.get("kwargs") or {}))


@view("function", macros=MACROS / "function.html.j2")
def function_view(check: CheckResult, details: FunctionDetails) -> dict[str, Any]:
    """The failing case shown, what was expected and returned, and the student's
    traceback when the function raised."""
    has_exp, expected = expected_of(check)
    got = got_of(check)
    case = details.case or ""
    return {
        "case": shorten(case, 600),
        "case_dir": text_direction(case),
        "error": trim_traceback(str(details.error), head=4, tail=12) if details.error else "",
        "expected_text": fmt_compact(expected, 300) if has_exp else "",
        "got_text": fmt_compact(got, 300) if got is not None else "",
    }
