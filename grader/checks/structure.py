"""``type: structure`` — what a model or function is built from, observed while it runs.

Deep-learning handouts say "use ``nn.MultiheadAttention``" or "implement attention
yourself, without ``F.scaled_dot_product_attention``"; the ``model`` and ``function``
checks compare only what comes out. This check looks at what ran, recorded by
:mod:`grader.harness.recorders` while the student's code runs in the sandbox (never read
from names or source):

* a **model answer** (``answer:`` a notebook name, ``probe:`` its input batch) is probed
  as the ``model`` check probes it, one forward pass in eval mode;
* a **function** (``function:`` the student's function, ``cases:`` a case generator of
  the reference module, as a ``function`` check's) is called on every case, each call
  recorded; ``source:`` says where it is defined.

Rules (each a list of names; every key optional, at least one given):
``requires_modules`` / ``forbids_modules`` (module types whose forward must / must not
run, subclasses included), ``requires_functions`` / ``forbids_functions`` (torch
functions that must / must not be called, every spelling of one function matching:
``F.softmax``, ``torch.softmax`` and ``x.softmax`` are the same), ``params`` (a model's
parameter count inside modules of a type). Points are all or nothing for the whole
check: every rule must hold (write two checks to give two rules their own points). The
message names each rule that failed and what was observed.

The recorders run in the student's own process, which can tamper with them: the check
catches mistakes and shortcuts, not a determined attacker (who cannot reach other
students or the answers either way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from grader.checks.base import (
    MACROS,
    CallingSpec,
    CheckContext,
    Details,
    StrictModel,
    register,
    result,
    unavailable,
    view,
)
from grader.checks.model import Probe
from grader.harness.recorders import clean_record
from grader.models import AnswerRequest, Call, CallResult, CheckResult, ProbeSpec
from grader.report.format import fmt_shape, shorten, trim_traceback

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
# Short spellings a rubric may use, expanded before matching.
_ABBREVIATIONS = (
    ("F.", "torch.nn.functional."),
    ("nn.", "torch.nn."),
    ("Tensor.", "torch.Tensor."),
)
# Namespaces whose functions are one function under several spellings: torch.softmax,
# torch.Tensor.softmax, torch.nn.functional.softmax and torch.special.softmax.
_SPELLINGS = (
    "torch.Tensor.",
    "torch.nn.functional.",
    "torch.special.",
    "torch.linalg.",
    "torch.",
)
# Operators as they reach the recorder (x @ y is torch.Tensor.matmul already; some
# arrive as dunders): the function each one is.
_DUNDERS = {
    "__matmul__": "matmul",
    "__rmatmul__": "matmul",
    "__imatmul__": "matmul",
    "__add__": "add",
    "__radd__": "add",
    "__iadd__": "add",
    "__sub__": "sub",
    "__rsub__": "sub",
    "__isub__": "sub",
    "__mul__": "mul",
    "__rmul__": "mul",
    "__imul__": "mul",
    "__truediv__": "div",
    "__rtruediv__": "div",
    "__itruediv__": "div",
    "__div__": "div",
    "__pow__": "pow",
    "__rpow__": "pow",
    "__ipow__": "pow",
    "__neg__": "neg",
}
# Functions that are one under different names.
_SAME = {"torch.autograd.backward": "torch.Tensor.backward"}
LAYERS_SHOWN = 120  # rows of the layer list a result keeps


def expand(name: str) -> str:
    """A rubric's name with its short prefix written out (``F.softmax`` →
    ``torch.nn.functional.softmax``, ``nn.Linear`` → ``torch.nn.Linear``)."""
    for short, full in _ABBREVIATIONS:
        if name.startswith(short):
            return full + name[len(short) :]
    return name


def function_key(name: str) -> str:
    """What makes two spellings of a torch function the same: ``torch.softmax``,
    ``torch.Tensor.softmax``, ``torch.nn.functional.softmax`` and
    ``torch.special.softmax`` all give ``torch.softmax``; an in-place ``relu_`` is
    ``relu``; ``torch.Tensor.__matmul__`` is ``torch.matmul``; other namespaces
    (``torch.autograd.grad``, ``torch.nn.init.uniform_``) keep their full name."""
    name = _SAME.get(expand(name), expand(name))
    for prefix in _SPELLINGS:
        if name.startswith(prefix):
            op = name[len(prefix) :]
            break
    else:
        return name
    if "." in op:
        return name
    op = _DUNDERS.get(op, op)
    if op.endswith("_") and not op.endswith("__"):
        op = op[:-1]
    return f"torch.{op}"


def _names(value: list[str]) -> list[str]:
    out = []
    for raw in value:
        name = expand(raw.strip())
        if not _DOTTED.match(name):
            raise ValueError(
                f"{raw!r} is not a qualified name: write it as torch.nn.MultiheadAttention, "
                "torch.nn.functional.softmax, torch.Tensor.backward or module.ClassName"
            )
        out.append(name)
    return out


class StructureSpec(CallingSpec):
    """Rules on what ran while a model's forward pass or a function call ran; all or
    nothing. Give ``answer`` and ``probe`` (a model), or ``function`` and ``cases``."""

    type: Literal["structure"]
    #: Points for the whole check, earned only when every rule holds.
    points: float = Field(ge=0)
    #: A model answer: the notebook name bound to the ``torch.nn.Module`` probed.
    answer: str | None = Field(default=None, pattern=_IDENT)
    #: The model's input batch (shape batch first, value range, seed), as ``model`` checks.
    probe: Probe | None = None
    #: A function answer: the student's function called on every case.
    function: str | None = Field(default=None, pattern=_IDENT)
    #: The reference module's case generator (a list of ``{"name", "args", "kwargs"?,
    #: "seed"?}``, as a ``function`` check's ``cases:``).
    cases: str | None = Field(default=None, pattern=_IDENT)
    #: Module types at least one of which must run (``torch.nn.MultiheadAttention``; a
    #: subclass counts; only modules called as ``layer(x)`` are seen).
    requires_modules: list[str] = Field(default_factory=list)
    #: Module types none of which may run (subclasses included).
    forbids_modules: list[str] = Field(default_factory=list)
    #: Torch functions each of which must be called at least once (any spelling).
    requires_functions: list[str] = Field(default_factory=list)
    #: Torch functions none of which may be called (any spelling, in place too).
    forbids_functions: list[str] = Field(default_factory=list)
    #: A model's parameter count inside modules of each type (sub-modules and subclasses
    #: included, each parameter once), e.g. ``{torch.nn.MultiheadAttention: 1088}``.
    params: dict[str, int] = Field(default_factory=dict)

    # A model's rules are the rubric's own; a function's cases come from compute_expected.
    needs_expected: ClassVar[bool] = False

    @field_validator(
        "requires_modules", "forbids_modules", "requires_functions", "forbids_functions"
    )
    @classmethod
    def _qualified(cls, value: list[str]) -> list[str]:
        return _names(value)

    @field_validator("params")
    @classmethod
    def _params(cls, value: dict[str, int]) -> dict[str, int]:
        names = _names(list(value))
        if any(n < 0 for n in value.values()):
            raise ValueError("parameter counts must not be negative")
        return dict(zip(names, value.values(), strict=True))

    @model_validator(mode="after")
    def _one_subject(self) -> StructureSpec:
        if (self.answer is None) == (self.function is None):
            raise ValueError("give either answer (a model) or function (a function), not both")
        if self.answer is not None:
            if self.probe is None:
                raise ValueError("a model answer needs probe: {input_shape: [...]}")
            if self.cases is not None or self.source is not None:
                raise ValueError("cases and source belong to a function, not a model answer")
        else:
            if self.cases is None:
                raise ValueError("a function needs cases: a case generator of the reference")
            if self.probe is not None:
                raise ValueError("probe belongs to a model answer, not a function")
            if self.params:
                raise ValueError("params counts a model's parameters: give answer, not function")
        if not (
            self.requires_modules
            or self.forbids_modules
            or self.requires_functions
            or self.forbids_functions
            or self.params
        ):
            raise ValueError(
                "give at least one rule: requires_modules, forbids_modules, "
                "requires_functions, forbids_functions or params"
            )
        return self

    def for_rubric(self, *, module: str | None) -> StructureSpec:
        """A function's ``source`` defaulted from the rubric; a model answer has none."""
        return self if self.function is None else super().for_rubric(module=module)

    def call_source(self) -> Literal["module", "notebook"] | None:  # type: ignore[override]
        """Where the calls are made: a function's ``source`` (``module`` by default), None
        for a model answer, which makes no calls."""
        if self.function is None:
            return None
        return self.source or "module"

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """All or nothing."""
        return self.points

    def rules(self) -> list[str]:
        """Each rule in words, for ``grade validate``."""
        where = self.where()
        found = [f"{t} must run {where}" for t in self.requires_modules]
        found += [f"{t} must not run {where}" for t in self.forbids_modules]
        found += [f"{f} must be called {where}" for f in self.requires_functions]
        found += [
            f"{f} must not be called {where} (in any spelling)" for f in self.forbids_functions
        ]
        found += [f"modules of type {t} hold {n:,} parameters" for t, n in self.params.items()]
        return found

    def where(self) -> str:
        """Where the rules apply, in words."""
        if self.answer is not None:
            return f"in the forward pass of {self.answer}"
        return f"inside {self.function}"

    def requests(self) -> list[AnswerRequest]:
        """A model answer is probed (the probe always records its structure)."""
        if self.answer is None or self.probe is None:
            return []
        probe = ProbeSpec(
            input_shape=tuple(self.probe.input_shape),
            low=self.probe.low,
            high=self.probe.high,
            seed=self.probe.seed,
        )
        return [AnswerRequest(name=self.answer, kind="model", probe=probe)]

    def compute_expected(self, reference: ModuleType) -> Any:
        """A function's cases from the reference's generator (run in the grader)."""
        if self.cases is None:
            return None
        generator = getattr(reference, self.cases, None)
        if not callable(generator):
            raise ValueError(f"the reference module has no case generator {self.cases!r}")
        cases = []
        for case in generator():
            entry: dict[str, Any] = {
                "name": str(case["name"]),
                "args": tuple(case["args"]),
                "kwargs": dict(case.get("kwargs") or {}),
            }
            if case.get("seed") is not None:
                entry["seed"] = int(case["seed"])
            cases.append(entry)
        if not cases:
            raise ValueError(f"{self.cases} generated no cases")
        return {"cases": cases}

    def calls(self, expected: Mapping[str, Any]) -> list[Call]:
        """One recorded call of the function per case."""
        if self.function is None:
            return []
        cases = (expected.get(self.reference_key) or {}).get("cases", [])
        return [
            Call(
                id=call_id(self, i),
                function=self.function,
                args=tuple(case["args"]),
                kwargs=dict(case.get("kwargs") or {}),
                seed=case.get("seed"),
                record_structure=True,
            )
            for i, case in enumerate(cases)
        ]


def call_id(spec: StructureSpec, index: int) -> str:
    """The id of the recorded call of case ``index``."""
    return f"{spec.id}/case{index}"


class RuleResult(StrictModel):
    """One rule and its verdict: ``rule`` is its rubric key, ``name`` what it names."""

    rule: str
    name: str
    ok: bool
    message: str


class LayerRow(StrictModel):
    """A module whose forward ran: its type, its name in the model (None outside it), its
    nesting depth and its output's shape (a list per tensor of a tuple output)."""

    type: str
    name: str | None = None
    depth: int = 0
    output_shape: Any = None


class StructureDetails(Details):
    """Every rule's verdict and what was observed: the layer list (of the forward pass,
    or of the first recorded call, ``layers_case``), the torch functions called (summed
    over the calls), a model's parameters by type, and how many cases were recorded."""

    where: str | None = None
    rules: list[RuleResult] = Field(default_factory=list)
    layers: list[LayerRow] = Field(default_factory=list)
    layers_case: str | None = None
    layers_dropped: int = 0
    functions: dict[str, int] = Field(default_factory=dict)
    functions_dropped: int = 0
    params: dict[str, int] | None = None
    cases_recorded: int | None = None
    cases_total: int | None = None


@dataclass
class _Observed:
    """Records merged over the calls (or the one forward pass)."""

    modules: dict[str, int] = field(default_factory=dict)
    types: dict[str, list[str]] = field(default_factory=dict)
    functions: dict[str, int] = field(default_factory=dict)
    functions_dropped: int = 0
    layers: list[dict[str, Any]] = field(default_factory=list)
    layers_dropped: int = 0
    layers_case: str | None = None
    params: dict[str, int] | None = None

    def add(self, record: Mapping[str, Any], case: str | None = None) -> None:
        for name, n in record["modules"].items():
            self.modules[name] = self.modules.get(name, 0) + n
        for name, names in record["types"].items():
            self.types.setdefault(name, names)
        for name, n in record["functions"].items():
            self.functions[name] = self.functions.get(name, 0) + n
        self.functions_dropped += record["functions_dropped"]
        if not self.layers and record["layers"]:
            self.layers = list(record["layers"])
            self.layers_dropped = record["layers_dropped"]
            self.layers_case = case
        if record["params"] is not None:
            self.params = dict(record["params"])

    def ran(self, name: str) -> list[str]:
        """The types that ran and are ``name`` or a subclass of it."""
        return [t for t in self.modules if t == name or name in self.types.get(t, ())]

    def called(self, name: str) -> list[str]:
        """The functions called that are a spelling of ``name``."""
        key = function_key(name)
        return [f for f in self.functions if function_key(f) == key]


@register("structure", StructureSpec, details=StructureDetails)
def grade_structure(spec: StructureSpec, ctx: CheckContext) -> CheckResult:
    """Observe, then judge every rule; all or nothing."""
    top = spec.points
    got = _observe_model(spec, ctx) if spec.answer is not None else _observe_calls(spec, ctx)
    if isinstance(got, CheckResult):
        return got
    observed, details, note = got
    rules = _judge(spec, observed)
    details = details.model_copy(update={"rules": rules})
    failed = [r.message for r in rules if not r.ok]
    if failed:
        message = "; ".join(failed)
    else:
        message = "the structure rule holds"
        if len(rules) > 1:
            message = f"all {len(rules)} structure rules hold"
    message += note
    score = 0.0 if failed else top
    return result(spec, top, score, "fail" if failed else "pass", message, details=details)


def _observe_model(
    spec: StructureSpec, ctx: CheckContext
) -> CheckResult | tuple[_Observed, StructureDetails, str]:
    assert spec.answer is not None and spec.probe is not None
    top = spec.points
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    probe = ctx.answers[spec.answer].value
    record = clean_record(probe.get("structure")) if isinstance(probe, dict) else None
    if record is None:
        return result(
            spec, top, 0, "error", f"probing {spec.answer} recorded nothing about its structure"
        )
    observed = _Observed()
    observed.add(record)
    details = _details(spec, observed)
    if not probe.get("ran"):
        shape = tuple(spec.probe.input_shape)
        error = probe.get("error") or "an error"
        tb = probe.get("traceback")
        return result(
            spec,
            top,
            0,
            "error",
            f"the forward pass of {spec.answer} on a batch of shape {shape} raised {error}, "
            "so its structure could not be observed",
            details=details.model_copy(update={"traceback": tb} if isinstance(tb, str) else {}),
        )
    if record["error"]:
        return result(spec, top, 0, "error", f"the structure was not recorded: {record['error']}")
    return observed, details, ""


def _observe_calls(
    spec: StructureSpec, ctx: CheckContext
) -> CheckResult | tuple[_Observed, StructureDetails, str]:
    assert spec.function is not None
    top = spec.points
    fn = spec.function
    missing_calls = spec.calls_unavailable(ctx, fn)
    if missing_calls is not None:
        return missing_calls
    made = spec.call_results(ctx)
    cases = (ctx.expected.get(spec.reference_key) or {}).get("cases")
    if not cases:
        return result(spec, top, 0, "error", f"the reference gave no cases for {fn}")
    names = [str(c.get("name", f"case {i + 1}")) for i, c in enumerate(cases)]
    results: list[tuple[str, CallResult]] = []
    for i, name in enumerate(names):
        found = made.get(call_id(spec, i))
        if found is not None:
            results.append((name, found))
    if not results:
        return result(spec, top, 0, "error", f"{fn} was not called (no module was run)")
    for _, res in results:
        if res.status == "missing_function":
            return result(spec, top, 0, "fail", res.message or f"{fn} is not defined")
    observed = _Observed()
    recorded = 0
    for name, res in results:
        record = clean_record(res.structure)
        if record is not None:
            observed.add(record, name)
            recorded += 1
    completed = [(n, r) for n, r in results if r.status == "ok" and r.structure is not None]
    details = _details(spec, observed).model_copy(
        update={"cases_recorded": len(completed), "cases_total": len(names)}
    )
    if not completed:
        name, first = results[0]
        why = first.message or first.status
        return result(
            spec,
            top,
            0,
            "error",
            f"{fn} did not complete on any case ({name}: {why}), so its structure could not "
            "be observed",
            details=details.model_copy(
                update={"traceback": first.traceback} if first.traceback else {}
            ),
        )
    note = ""
    if len(completed) < len(names):
        done = {n for n, _ in completed}
        by_name = dict(results)
        gap = next(n for n in names if n not in done)
        why = by_name[gap].message or by_name[gap].status if gap in by_name else "not run"
        note = (
            f" (observed on the {len(completed)} of {len(names)} cases that ran to the end; "
            f"{gap}: {shorten(why, 120)})"
        )
    return observed, details, note


def _details(spec: StructureSpec, observed: _Observed) -> StructureDetails:
    layers = [LayerRow.model_validate(row) for row in observed.layers[:LAYERS_SHOWN]]
    dropped = observed.layers_dropped + max(len(observed.layers) - LAYERS_SHOWN, 0)
    return StructureDetails(
        where=spec.where(),
        layers=layers,
        layers_case=observed.layers_case,
        layers_dropped=dropped,
        functions=observed.functions,
        functions_dropped=observed.functions_dropped,
        params=observed.params,
    )


def _judge(spec: StructureSpec, seen: _Observed) -> list[RuleResult]:
    where = spec.where()
    rules: list[RuleResult] = []
    for name in spec.requires_modules:
        ran = seen.ran(name)
        if ran:
            msg = f"{_as(name, ran)} ran {where}"
        else:
            msg = (
                f"no {name} ran {where}; the handout asks you to use one "
                f"(modules that ran: {_tally(seen.modules) or 'none'})"
            )
        rules.append(RuleResult(rule="requires_modules", name=name, ok=bool(ran), message=msg))
    for name in spec.forbids_modules:
        ran = seen.ran(name)
        msg = (
            f"{_as(name, ran)} ran {where}; the handout asks you to implement it yourself"
            if ran
            else f"no {name} ran {where}"
        )
        rules.append(RuleResult(rule="forbids_modules", name=name, ok=not ran, message=msg))
    for name in spec.requires_functions:
        called = seen.called(name)
        msg = (
            f"{_as(name, called)} was called {where}"
            if called
            else f"{name} was never called {where}; the handout asks you to use it"
        )
        rules.append(RuleResult(rule="requires_functions", name=name, ok=bool(called), message=msg))
    for name in spec.forbids_functions:
        called = seen.called(name)
        if called:
            times = sum(seen.functions[f] for f in called)
            msg = (
                f"{_as(name, called)} was called {where}"
                f"{f' ({times} times)' if times > 1 else ''}; "
                "the handout asks you to implement it yourself"
            )
        else:
            msg = f"{name} was not called {where}"
        rules.append(RuleResult(rule="forbids_functions", name=name, ok=not called, message=msg))
    for name, want in spec.params.items():
        got = (seen.params or {}).get(name)
        ok = got == want
        if ok:
            msg = f"modules of type {name} hold {want:,} parameters"
        elif got is None:
            msg = f"the model has no module of type {name}; the handout's architecture has one"
        elif spec.show_expected:
            msg = (
                f"modules of type {name} hold {got:,} parameters; the handout's architecture "
                f"has {want:,}"
            )
        else:
            msg = f"modules of type {name} hold {got:,} parameters, not the handout's count"
        rules.append(RuleResult(rule="params", name=name, ok=ok, message=msg))
    return rules


def _as(name: str, seen: list[str]) -> str:
    """``name``, or what was seen under it (``torch.Tensor.softmax`` for torch.softmax)."""
    others = [s for s in seen if s != name]
    if not others:
        return name
    return f"{', '.join(others[:3])} (a form of {name})"


def _tally(counts: Mapping[str, int], limit: int = 6) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} ×{n}" for k, n in items[:limit])
    return text + (f", … ({len(items) - limit} more types)" if len(items) > limit else "")


# ------------------------------------------------------------------ the report's view


def wrong_rules(check: CheckResult, details: StructureDetails) -> list[tuple[str, bool]] | None:
    """The class summary's keys of a wrong structure: each failed rule and its name."""
    if not details.rules:
        return None
    return [(f"{r.rule}: {r.name}", True) for r in details.rules if not r.ok]


FUNCTIONS_SHOWN = 24


@view("structure", macros=MACROS / "structure.html.j2", wrong=wrong_rules)
def structure_view(check: CheckResult, details: StructureDetails) -> dict[str, Any]:
    """Every rule with its mark, the layer list (every module that ran, indented by
    nesting, with its output shape), the torch functions called and the parameters by
    type."""
    rules = [
        {"ok": r.ok, "rule": r.rule.replace("_", " "), "message": r.message} for r in details.rules
    ]
    layers = [
        {
            "indent": min(row.depth, 8),
            "type": row.type,
            "name": row.name if row.name else ("(the model)" if row.name == "" else ""),
            "shape": _shapes(row.output_shape),
        }
        for row in details.layers
    ]
    functions = sorted(details.functions.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = [{"name": k, "count": f"{n:,}"} for k, n in functions[:FUNCTIONS_SHOWN]]
    more = len(functions) - len(shown)
    params = [
        {"type": k, "count": f"{n:,}"}
        for k, n in sorted((details.params or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    ]
    return {
        "rules": rules,
        "where": details.where or "",
        "layers": layers,
        "layers_case": details.layers_case,
        "layers_dropped": details.layers_dropped,
        "functions": shown,
        "functions_more": more,
        "functions_dropped": details.functions_dropped,
        "params": params[:12],
        "cases": (
            f"{details.cases_recorded} of {details.cases_total}"
            if details.cases_total is not None
            else None
        ),
        "traceback": trim_traceback(details.traceback, head=4, tail=12)
        if details.traceback
        else None,
    }


def _shapes(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, list) or v is None for v in value):
        return ", ".join(fmt_shape(v) for v in value)
    return fmt_shape(value)
