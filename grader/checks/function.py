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

Calls made in the sandboxed worker, per case ``i``: a plain check calls the function
once; a backward check first calls the student's *forward* on the case (keeping its
return value in the worker) and then the backward on ``(dout, cache)``, the cache being
element ``cache_index`` of what that forward returned.

``grading: dropout_forward`` / ``dropout_backward`` judge inverted dropout by its
statistics instead of element by element (see :func:`kept_bounds`): in train mode the
number of kept units must lie in an interval that a correct function misses with
probability below ``false_fail`` (exact binomial tails, split over the cases), kept units
must equal ``x / p``; in test mode the output must equal ``x``; the backward must equal
``dout`` times the mask and scale of the student's own forward call.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from grader.checks.base import CheckContext, CheckSpec, register, result
from grader.checks.statistical import binomial_interval
from grader.checks.tolerance import within
from grader.models import Call, CallResult, CheckResult, CheckStatus, Stored
from grader.normalize import FloatArray, NotNumeric, to_array

Grading = Literal["values", "dropout_forward", "dropout_backward"]


class FunctionSpec(CheckSpec):
    """A module function compared with the reference on every case, all or nothing."""

    type: Literal["function"]
    function: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    reference: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    cases: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    points: float = Field(ge=0)
    forward: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    cache_index: int = Field(default=1, ge=0)
    outputs: list[int] | None = None  # elements of a returned tuple compared; None: all
    output_names: list[str] = Field(default_factory=list)  # "dx", "dw", … for messages
    rel_error: float | None = Field(default=None, gt=0)
    rtol: float | None = Field(default=None, ge=0)
    atol: float | None = Field(default=None, ge=0)
    squeeze_size1: bool = False
    # Off unless the handout forbids changing the inputs: a check enforces only what its
    # handout states (HW2 says nothing of it; HW1's dropout and HW4 do).
    check_inplace: bool = False
    return_args: list[int] = Field(default_factory=list)
    grading: Grading = "values"
    false_fail: float = Field(default=1e-6, gt=0, lt=0.5)

    needs_module: ClassVar[bool] = True

    @model_validator(mode="after")
    def _consistent(self) -> FunctionSpec:
        if self.rel_error is not None and (self.rtol is not None or self.atol is not None):
            raise ValueError("give either rel_error or rtol/atol, not both")
        if self.grading == "dropout_backward" and self.forward is None:
            raise ValueError("grading: dropout_backward needs `forward:` (its dropout_forward)")
        if self.grading == "values" and self.reference is None:
            raise ValueError("`reference:` names the reference function to compare with")
        return self

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
        if self.grading == "values":
            found.append(
                "outputs must have the reference's shapes"
                + (
                    " (size-1 axes may be added or dropped: squeeze_size1)"
                    if self.squeeze_size1
                    else ""
                )
            )
        for pos in self.return_args:
            found.append(
                f"argument {pos + 1} must hold the reference's values after the call, "
                "e.g. running statistics written back (return_args)"
            )
        if self.grading == "dropout_forward":
            found.append(
                "train mode: the kept fraction lies in the exact binomial interval for p "
                "(false_fail) and kept units equal x / p; test mode returns x"
            )
        if self.grading == "dropout_backward":
            found.append(
                f"dx equals dout times the multiplier the student's own {self.forward} "
                "applied to x (out / x), whatever its mask and scale"
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
    out_cases = []
    for case in generated:
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
            if "dout" not in case and spec.grading != "dropout_backward":
                raise ValueError(f"case {case['name']!r} of {spec.cases} has no dout")
            if "dout" in case:
                entry["dout"] = case["dout"]
        if ref_fn is not None:
            call_args = copy.deepcopy(args)
            call_kwargs = copy.deepcopy(kwargs)
            if spec.forward is not None:
                returned = ref_fn(case["dout"], *call_args, **call_kwargs)
            else:
                returned = ref_fn(*call_args, **call_kwargs)
            entry["tuple"] = isinstance(returned, tuple | list)
            entry["returned"] = (
                [_plain(v) for v in returned] if entry["tuple"] else _plain(returned)
            )
            entry["args_after"] = {str(i): _plain(call_args[i]) for i in spec.return_args}
        out_cases.append(entry)
    if not out_cases:
        raise ValueError(f"{spec.cases} generated no cases")
    names = _arg_names(ref_fn, spec)
    given = generated[0].get("arg_names") or ()
    inputs = _input_names(ref_fn, spec) or [str(n) for n in given]
    return {"cases": out_cases, "arg_names": names, "input_names": inputs}


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


# ------------------------------------------------------------------ comparison


def rel_error(expected: FloatArray, got: FloatArray) -> float:
    """The handout's relative error: max over elements of |a − b| / max(1e-8, |a| + |b|)."""
    if expected.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))
    if not np.all(np.isfinite(got)):
        return math.inf
    return float(np.max(err))


@dataclass(frozen=True)
class Problem:
    """Why one case failed: what the message says, the status, and the size of the error."""

    case: str
    message: str
    status: CheckStatus = "fail"
    error: float | str | None = None
    expected: Any = None
    got: Any = None


def _close(spec: FunctionSpec, expected: FloatArray, got: FloatArray) -> tuple[bool, float]:
    """(within tolerance, the error shown): relative error, or max |a − b| for rtol/atol."""
    if spec.rtol is not None or spec.atol is not None:
        rtol, atol = spec.rtol or 0.0, spec.atol if spec.atol is not None else 0.0
        if not np.all(np.isfinite(got)):
            return False, math.inf
        ok = bool(np.all(within(got, expected, atol=atol, rtol=rtol)))
        diff = np.abs(got - expected)
        return ok, float(diff.max()) if diff.size else 0.0
    limit = spec.rel_error if spec.rel_error is not None else 1e-6
    err = rel_error(expected, got)
    return err <= limit, err


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def compare_value(
    spec: FunctionSpec, name: str, expected: Any, got: Any, case: str, shape_hint: str = ""
) -> Problem | None:
    """Compare one output (an array, a number) with the reference's; None when right."""
    try:
        exp = to_array(expected)
    except NotNumeric:
        if _plain_equal(got, expected):
            return None
        return Problem(case, f"{name} is {_short(got)}, not {_short(expected)}")
    if got is None:
        return Problem(case, f"{name} is missing from what the function returned", got=None)
    try:
        arr = to_array(got)
    except NotNumeric as exc:
        return Problem(case, f"{name} could not be read as numbers: {exc}")
    if arr.shape != exp.shape:
        if exp.ndim == 0 and arr.size == 1:
            arr = arr.reshape(())
        elif spec.squeeze_size1 and _squeezed(arr.shape) == _squeezed(exp.shape):
            arr = arr.reshape(exp.shape)
        else:
            hint = shape_hint if arr.size == exp.size else ""
            return Problem(
                case,
                f"{name} has shape {_shape_text(arr.shape)} but should have shape "
                f"{_shape_text(exp.shape)}{hint}",
                error="shape",
                expected=list(exp.shape),
                got=list(arr.shape),
            )
    if not np.all(np.isfinite(arr)):
        return Problem(
            case,
            f"{name} contains inf or nan (an overflow? with large inputs, subtract the "
            "maximum before exponentiating)",
            error="not finite",
        )
    ok, err = _close(spec, exp, arr)
    if ok:
        return None
    what = "max |a − b|" if spec.rtol is not None or spec.atol is not None else "relative error"
    return Problem(
        case,
        f"{name} differs ({what} {err:.2g})",
        error=round(err, 6),
        expected=exp if exp.size <= 64 else None,
        got=arr if arr.size <= 64 else None,
    )


def _unusable(spec: FunctionSpec, res: CallResult | None, case: str) -> Problem | None:
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


def _forward_unusable(spec: FunctionSpec, res: CallResult | None, case: str) -> Problem | None:
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


def _output_name(spec: FunctionSpec, k: int, n: int) -> str:
    if k < len(spec.output_names):
        return spec.output_names[k]
    return "the result" if n == 1 else f"output {k}"


def grade_case(
    spec: FunctionSpec,
    case: Mapping[str, Any],
    res: CallResult,
    arg_names: Sequence[str],
) -> Problem | None:
    """Everything the handout requires of one ``values`` case."""
    name = str(case["name"])
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
                f"{fn} should return a tuple of {len(expected_list)} values, got {_kind(got)}",
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


def _kind(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {_shape_text(value.shape)}"
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


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------ dropout


def kept_bounds(n: int, p: float, tail: float) -> tuple[int, int]:
    """The narrowest ``[low, high]`` with P(K < low) ≤ tail and P(K > high) ≤ tail for
    K ~ Binomial(n, p): the statistical check's exact interval, shared."""
    low, high, _ = binomial_interval(n, p, tail)
    return low, high


def _dropout_param(case: Mapping[str, Any]) -> tuple[FloatArray, float, str]:
    x = to_array(case["args"][0])
    param = case["args"][1]
    return x, float(param["p"]), str(param.get("mode", "train"))


def grade_dropout_forward(
    spec: FunctionSpec, case: Mapping[str, Any], res: CallResult, tail: float
) -> Problem | None:
    """Train mode: kept fraction within the binomial bound, kept units exactly x / p;
    test mode: the output is x."""
    name = str(case["name"])
    fn = spec.student_function
    if spec.check_inplace and res.mutated:
        return Problem(name, f"{fn} modified its input x in place: work on a copy")
    x, p, mode = _dropout_param(case)
    got = res.value[0] if type(res.value) is list and res.value else None
    if type(res.value) is not list:
        return Problem(name, f"{fn} should return a tuple (out, cache), got {_kind(res.value)}")
    if mode != "train":
        return compare_value(spec, "out in test mode (it should be x unchanged)", x, got, name)
    try:
        out = to_array(got)
    except NotNumeric as exc:
        return Problem(name, f"out could not be read as numbers: {exc}")
    if out.shape != x.shape:
        return Problem(
            name,
            f"out has shape {_shape_text(out.shape)} but should have x's shape "
            f"{_shape_text(x.shape)}",
            error="shape",
        )
    kept = out != 0
    n, count = x.size, int(kept.sum())
    low, high = kept_bounds(n, p, tail)
    if not low <= count <= high:
        return Problem(
            name,
            f"out keeps {count / n:.3f} of the units with p = {p:g}; p is the probability of "
            f"KEEPING a unit, so about {p:g} should survive (accepted: {low / n:.3f} to "
            f"{high / n:.3f})",
            error=round(count / n, 6),
        )
    problem = compare_value(spec, "the kept units", x[kept] / p, out[kept], name)
    if problem is not None:
        ratio = float(np.median(out[kept] / x[kept])) if count else math.nan
        return Problem(
            name,
            f"kept units are not x / p (inverted dropout divides survivors by p = {p:g}, i.e. "
            f"multiplies by {1 / p:.3g}; yours are multiplied by {ratio:.3g})",
            error=problem.error,
        )
    return None


def grade_dropout_backward(
    spec: FunctionSpec,
    case: Mapping[str, Any],
    res: CallResult,
    forward: CallResult,
) -> Problem | None:
    """dx must be dout times the multiplier the student's own forward applied to x.

    The handout asks for "a working forward, not a correct one": a backward that reuses
    its forward's mask (``dx = dout * mask`` where ``out = x * mask``) is right whatever
    that mask's scale, so the truth is ``dout * out / x`` element by element (the cases
    have no exact zeros in x), not the handout's ``1 / p``.
    """
    name = str(case["name"])
    x, _, mode = _dropout_param(case)
    fw_out = forward.value[0] if type(forward.value) is list and forward.value else None
    try:
        out = to_array(fw_out)
    except NotNumeric:
        return Problem(name, f"the output of {spec.forward} could not be read", "fail")
    if out.shape != x.shape:
        return Problem(
            name, f"{spec.forward} returned out of the wrong shape, so no mask to compare", "fail"
        )
    if not np.all(np.isfinite(out)):
        return Problem(name, f"{spec.forward} returned inf or nan, so no mask to compare", "fail")
    dout = to_array(case["dout"])
    expected = dout * (out / x) if mode == "train" else dout
    return compare_value(
        spec,
        f"dx (it should be dout times what your {spec.forward} multiplied x by: its mask "
        "and scale)",
        expected,
        res.value,
        name,
    )


# ------------------------------------------------------------------ the check


@register("function", FunctionSpec)
def grade_function(spec: FunctionSpec, ctx: CheckContext) -> CheckResult:
    """Every case must pass. The message names the first failing case in words, or, when
    the failing cases are exactly one family's (:func:`separating_family`), that family
    and its smallest failing case with the inputs to rebuild it; the status is that of
    the case shown."""
    top = spec.points
    fn = spec.student_function
    if ctx.module_problem is not None:
        imported = ctx.execution is not None and ctx.execution.module is not None
        return result(
            spec,
            top,
            0,
            "error" if imported else "fail",
            f"{fn} could not be graded: {ctx.module_problem}",
        )
    data = ctx.expected[spec.reference_key]
    cases: list[Mapping[str, Any]] = data["cases"]
    arg_names: list[str] = list(data.get("arg_names") or [])
    tail = spec.false_fail / (2 * max(1, len(cases)))
    problems: list[tuple[int, Problem]] = []
    for i, case in enumerate(cases):
        name = str(case["name"])
        problem = None
        if spec.forward is not None:
            problem = _forward_unusable(spec, ctx.calls.get(forward_id(spec, i)), name)
        if problem is None:
            res = ctx.calls.get(call_id(spec, i))
            problem = _unusable(spec, res, name)
            if problem is None and res is not None:
                if spec.grading == "dropout_forward":
                    problem = grade_dropout_forward(spec, case, res, tail)
                elif spec.grading == "dropout_backward":
                    fw = ctx.calls[forward_id(spec, i)]
                    problem = grade_dropout_backward(spec, case, res, fw)
                else:
                    problem = grade_case(spec, case, res, arg_names)
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
            details={"cases": [str(c["name"]) for c in cases]},
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
            others = [p.case for _, p in problems[1:] if p.case != shown.case]
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
    details: dict[str, Any] = {
        "case": shown.case,
        "error": shown.error if shown.error is not None else shown.message,
        "failing_cases": [p.case for _, p in problems],
        "inputs": describe_inputs(cases[index], input_names),
    }
    if family is not None:
        details["family"] = family
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
        return f"{name} {_shape_text(value.shape)}" if value.ndim else f"{name} {value.item():g}"
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
            return f"{name} {_shape_text(to_array(value).shape)}"
        except NotNumeric:
            return f"{name} {_short(value)}"
    return f"{name} {_short(value)}"


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
