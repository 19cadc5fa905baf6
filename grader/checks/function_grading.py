"""How one case of a ``function`` check is judged, by the rubric's ``grading:`` key.

A grading is registered by name (the timm pattern again, one level down): ``values``
here, the element-by-element comparison with the reference's return values, and the
dropout gradings in :mod:`grader.checks.dropout`. The check (:mod:`grader.checks.function`)
makes the calls, turns a call that gave no value into a :class:`Problem`, and hands every
usable case to its spec's grading. The comparison of one output with the reference's,
which every grading uses, lives here too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from grader.checks.compare import Tolerance, compare_arrays
from grader.checks.compare import rel_error as rel_error  # re-exported: tests and callers
from grader.models import CallResult, CheckStatus
from grader.normalize import NotNumeric, to_array

if TYPE_CHECKING:  # the spec imports this module to validate its ``grading:``
    from grader.checks.function import FunctionSpec


@dataclass(frozen=True)
class Case:
    """One case to judge: the reference's data for it and what the student's calls gave.

    ``forward`` is the call of the student's forward whose cache a backward case used
    (None for a plain check); ``n_cases`` is how many cases the check has (a statistical
    grading splits its ``false_fail`` over them).
    """

    data: Mapping[str, Any]
    result: CallResult
    forward: CallResult | None
    arg_names: Sequence[str]
    n_cases: int

    @property
    def name(self) -> str:
        """The case's name, in words."""
        return str(self.data["name"])


Judge = Callable[["FunctionSpec", Case], "Problem | None"]


@dataclass(frozen=True)
class Grading:
    """A registered way of judging a case, with what it asks of the spec."""

    name: str
    judge: Judge
    #: The behavioural rules it enforces, in words, for ``grade validate``.
    rules: Callable[[FunctionSpec], list[str]]
    #: Why a spec cannot use it (a missing key), or None.
    requires: Callable[[FunctionSpec], str | None]


GRADINGS: dict[str, Grading] = {}


def _no_rules(spec: FunctionSpec) -> list[str]:
    return []


def _no_requirement(spec: FunctionSpec) -> str | None:
    return None


def grading(
    name: str,
    *,
    rules: Callable[[FunctionSpec], list[str]] = _no_rules,
    requires: Callable[[FunctionSpec], str | None] = _no_requirement,
) -> Callable[[Judge], Judge]:
    """Register ``judge`` as the grading ``grading: name`` of function checks."""

    def decorate(judge: Judge) -> Judge:
        if name in GRADINGS:
            raise ValueError(f"grading {name!r} registered twice")
        GRADINGS[name] = Grading(name, judge, rules, requires)
        return judge

    return decorate


# ------------------------------------------------------------------ comparison


@dataclass(frozen=True)
class Problem:
    """Why one case failed: what the message says, the status, and the size of the error."""

    case: str
    message: str
    status: CheckStatus = "fail"
    error: float | str | None = None
    expected: Any = None
    got: Any = None


def shape_text(shape: tuple[int, ...]) -> str:
    """A shape as Python prints a tuple: ``(3,)``, ``(2, 4)``."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def tolerance_of(spec: FunctionSpec) -> Tolerance:
    """The spec's tolerance keys as the comparison module takes them."""
    return Tolerance(spec.rel_error, spec.rtol, spec.atol, spec.squeeze_size1)


def compare_value(
    spec: FunctionSpec, name: str, expected: Any, got: Any, case: str, shape_hint: str = ""
) -> Problem | None:
    """Compare one output (an array, a number) with the reference's; None when right."""
    try:
        exp = to_array(expected)
    except NotNumeric:
        if _plain_equal(got, expected):
            return None
        return Problem(case, f"{name} is {short(got)}, not {short(expected)}")
    if got is None:
        return Problem(case, f"{name} is missing from what the function returned", got=None)
    try:
        arr = to_array(got)
    except NotNumeric as exc:
        return Problem(case, f"{name} could not be read as numbers: {exc}")
    verdict = compare_arrays(tolerance_of(spec), exp, arr)
    if verdict.reason == "shape":
        hint = shape_hint if arr.size == exp.size else ""
        return Problem(
            case,
            f"{name} has shape {shape_text(arr.shape)} but should have shape "
            f"{shape_text(exp.shape)}{hint}",
            error="shape",
            expected=list(exp.shape),
            got=list(arr.shape),
        )
    if verdict.reason == "not finite":
        return Problem(
            case,
            f"{name} contains inf or nan (an overflow? with large inputs, subtract the "
            "maximum before exponentiating)",
            error="not finite",
        )
    if verdict.ok:
        return None
    err = verdict.error
    shown = verdict.got if verdict.got is not None else arr
    what = "max |a − b|" if spec.rtol is not None or spec.atol is not None else "relative error"
    return Problem(
        case,
        f"{name} differs ({what} {err:.2g})",
        error=round(err, 6),
        expected=exp if exp.size <= 64 else None,
        got=shown if shown.size <= 64 else None,
    )


# ------------------------------------------------------------------ calls without a value


def call_problem(spec: FunctionSpec, res: CallResult | None, case: str) -> Problem | None:
    """A call that gave no value to compare."""
    fn = spec.student_function
    if res is None:
        return Problem(case, f"{fn} was not called (the grader made no such call)", "error")
    if res.status == "ok":
        return None
    if res.status == "missing_function":
        return Problem(case, res.message or f"{fn} is not defined", "fail", "missing")
    if res.status == "unsupported":
        return Problem(case, res.message, "fail", "unsupported")
    if res.status == "error":
        text = res.message.removeprefix(f"{fn} ")
        return Problem(case, f"{fn} {text}" if text else f"{fn} raised", "error", "raised")
    if res.status == "timeout":
        return Problem(case, res.message, "error", "timeout")
    return Problem(case, res.message or f"{fn} was not run", "error", "not run")


def forward_problem(spec: FunctionSpec, res: CallResult | None, case: str) -> Problem | None:
    """A backward case whose forward gave no cache: the backward could not be tested."""
    if res is None or res.status == "ok":
        return None
    fw = spec.forward
    if res.status == "missing_function":
        return Problem(
            case, f"{spec.student_function} needs the cache of {fw}, which is not defined", "fail"
        )
    detail = res.message.removeprefix(f"{fw} ")
    return Problem(
        case,
        f"{spec.student_function} could not be tested because its forward {fw} {detail}",
        "error" if res.status in ("error", "timeout") else "fail",
        "forward failed",
    )


# ------------------------------------------------------------------ the values grading


def _output_name(spec: FunctionSpec, k: int, n: int) -> str:
    if k < len(spec.output_names):
        return spec.output_names[k]
    return "the result" if n == 1 else f"output {k}"


def _values_rules(spec: FunctionSpec) -> list[str]:
    return [
        "outputs must have the reference's shapes"
        + (" (size-1 axes may be added or dropped: squeeze_size1)" if spec.squeeze_size1 else "")
    ]


def _values_requires(spec: FunctionSpec) -> str | None:
    if spec.reference is None:
        return "`reference:` names the reference function to compare with"
    return None


@grading("values", rules=_values_rules, requires=_values_requires)
def grade_case(spec: FunctionSpec, one: Case) -> Problem | None:
    """Everything the handout requires of one ``values`` case: its outputs equal the
    reference's (within the spec's tolerance), its stateful arguments are written back,
    and its inputs are unchanged where the rubric says so."""
    case, res, arg_names = one.data, one.result, one.arg_names
    name = one.name
    fn = spec.student_function
    if spec.check_inplace and res.mutated:
        pos = res.mutated[0]
        arg = arg_names[pos] if pos < len(arg_names) else f"argument {pos + 1}"
        return Problem(
            name,
            f"{fn} modified its input {arg} in place: work on a copy (e.g. {arg}.copy())",
            error="in place",
        )
    if case["tuple"]:
        expected_list: list[Any] = list(case["returned"])
        got = res.value
        if type(got) is not list:
            return Problem(
                name,
                f"{fn} should return a tuple of {len(expected_list)} values, got {kind_text(got)}",
                error="not a tuple",
            )
        wanted = spec.outputs if spec.outputs is not None else list(range(len(expected_list)))
        if len(got) < max(wanted, default=-1) + 1:
            return Problem(
                name,
                f"{fn} returned {len(got)} values; it should return {len(expected_list)}",
                error="too few values",
            )
        for k in wanted:
            label = _output_name(spec, k, len(expected_list))
            problem = compare_value(
                spec, label, expected_list[k], got[k], name, _shape_hint(spec, label)
            )
            if problem is not None:
                return problem
    else:
        label = _output_name(spec, 0, 1)
        problem = compare_value(
            spec, label, case["returned"], res.value, name, _shape_hint(spec, label)
        )
        if problem is not None:
            return problem
    for pos in spec.return_args:
        problem = _compare_after(spec, case, res, pos, arg_names, name)
        if problem is not None:
            return problem
    return None


def _shape_hint(spec: FunctionSpec, label: str) -> str:
    if label.startswith("d") and spec.forward is not None:
        return f": reshape it to the shape of {label[1:] or 'the input'}"
    return ": reshape it"


def kind_text(value: Any) -> str:
    """What a returned value is, in words (``an array of shape (2, 3)``)."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {shape_text(value.shape)}"
    return f"a {type(value).__name__}"


def _compare_after(
    spec: FunctionSpec,
    case: Mapping[str, Any],
    res: CallResult,
    pos: int,
    arg_names: Sequence[str],
    name: str,
) -> Problem | None:
    """A stateful argument (``bn_param``) after the call against the reference's copy."""
    arg = arg_names[pos] if pos < len(arg_names) else f"argument {pos + 1}"
    expected = case["args_after"].get(str(pos))
    before = case["args"][pos] if pos < len(case["args"]) else None
    got = res.args_after.get(pos)
    if not isinstance(expected, dict):
        return compare_value(spec, f"{arg} after the call", expected, got, name)
    if not isinstance(got, dict):
        return Problem(name, f"{arg} could not be read back after the call", error="args_after")
    for key, value in expected.items():
        unchanged = isinstance(before, dict) and _same(before.get(key), value)
        if key not in got:
            if isinstance(before, dict) and key in before:
                return Problem(name, f"{fn_name(spec)} deleted {arg}[{key!r}]")
            return Problem(
                name,
                f"{arg}[{key!r}] was not written back into {arg} "
                f"(the handout asks for the running statistics to be stored there)",
                error="not written back",
            )
        problem = compare_value(spec, f"{arg}[{key!r}] after the call", value, got[key], name)
        if problem is not None:
            if unchanged:
                problem = Problem(
                    name,
                    f"{fn_name(spec)} changed {arg}[{key!r}], which must be left unchanged "
                    "in this mode",
                    error=problem.error,
                )
            elif isinstance(before, dict) and _same(before.get(key), got[key]):
                problem = Problem(
                    name,
                    f"{arg}[{key!r}] was not updated: write the new running statistics back "
                    f"into {arg}",
                    error="not written back",
                )
            return problem
    return None


def fn_name(spec: FunctionSpec) -> str:
    """The student function's name."""
    return spec.student_function


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    try:
        x, y = to_array(a), to_array(b)
    except NotNumeric:
        return _plain_equal(a, b)
    return x.shape == y.shape and bool(np.array_equal(x, y))


def _plain_equal(a: Any, b: Any) -> bool:
    """Equality of plain decoded data (strings, numbers, None); arrays are never equal
    to non-arrays here."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return False
    try:
        return bool(a == b)
    except Exception:
        return False


def short(value: Any) -> str:
    """``repr(value)`` cut to 80 characters, for messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
