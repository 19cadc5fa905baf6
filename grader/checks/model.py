"""``type: model`` — a student's ``torch.nn.Module`` or Keras model, graded from its
probe results.

The model is probed inside the student's kernel (forward in eval mode on a grader-made
batch, concatenations recorded during that forward, parameters counted); only the
probe's plain results reach this module, which compares them with what the reference
model gives. A Keras model (Keras 3 on any backend, ``tf.keras``) is probed by the Keras
adapter (:mod:`grader.harness.keras_adapter`) into the same data: a channels-last model
gets the batch channels last and its output is compared in the handout's layout, its
concatenation axis is read in the handout's layout (the model's own channel axis is
dim 1), and the trainable count is Keras's (``model.trainable_weights``), which for
BatchNormalization equals torch's (its moving statistics are non-trainable in Keras and
buffers in torch; ``param_count`` grades the trainable count).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field

from grader.checks.base import (
    MACROS,
    CheckContext,
    CheckSpec,
    Details,
    StrictModel,
    register,
    result,
    status_for,
    unavailable,
    view,
)
from grader.models import AnswerRequest, CheckResult, ProbeSpec
from grader.normalize import to_plain
from grader.report.format import (
    expected_of,
    fmt_number,
    fmt_points,
    fmt_shape,
    shorten,
    trim_traceback,
)


class Probe(StrictModel):
    """The grader-made input batch: its full shape (batch first) and value range."""

    input_shape: list[int] = Field(min_length=1)
    """The full shape of the input batch, batch axis first ([8, 3, 32, 32])."""
    low: float = 0.0
    """Inputs are drawn uniformly from [low, high)."""
    high: float = 1.0
    """See low."""
    seed: int = 0
    """Seed of the input batch, so every student's model sees the same inputs."""


class RangePart(StrictModel):
    """Points for every output value lying in [min, max]."""

    points: float = Field(ge=0)
    """Points when every output value lies in [min, max]."""
    min: float
    """The smallest output value allowed."""
    max: float
    """The largest output value allowed."""


class ConcatPart(StrictModel):
    """Points for a ``torch.cat`` of at least ``min_inputs`` tensors along ``dim``."""

    points: float = Field(ge=0)
    """Points when the forward pass concatenates tensors with torch.cat as described."""
    min_inputs: int = Field(default=2, ge=2)
    """How many tensors one torch.cat call must join, at least."""
    dim: int = 1
    """The axis they are joined along (1: channels, batch first)."""


class Parts(StrictModel):
    """The graded parts of a model and their points."""

    runs: float = Field(default=0, ge=0)
    """Points when a forward pass on the probe batch runs (in eval mode)."""
    output_shape: float = Field(default=0, ge=0)
    """Points when the output's shape is the reference model's."""
    output_range: RangePart | None = None
    """Points when every output value lies in a range (probabilities in [0, 1], say)."""
    param_count: float = Field(default=0, ge=0)
    """Points when the trainable parameter count is the reference model's."""
    concat: ConcatPart | None = None
    """Points for parallel branches joined by torch.cat, observed during the forward pass."""


class ModelSpec(CheckSpec):
    """A module probed on a grader-made batch."""

    type: Literal["model"]
    answer: str = Field(min_length=1)
    """The name of the student's model in the notebook: a torch.nn.Module or a Keras model."""
    probe: Probe
    """The input batch the grader makes and runs the model on."""
    parts: Parts
    """The graded parts and their points."""

    def max_points(self, expected: Mapping[str, Any]) -> float:
        """The sum of the parts' points."""
        p = self.parts
        return (
            p.runs
            + p.output_shape
            + p.param_count
            + (p.output_range.points if p.output_range else 0)
            + (p.concat.points if p.concat else 0)
        )

    def requests(self) -> list[AnswerRequest]:
        """The module's name, with the probe to run on it."""
        probe = ProbeSpec(
            input_shape=tuple(self.probe.input_shape),
            low=self.probe.low,
            high=self.probe.high,
            seed=self.probe.seed,
        )
        return [AnswerRequest(name=self.answer, kind="model", probe=probe)]


class ModelPart(StrictModel):
    """One graded part of the model and its verdict."""

    name: str
    points: float
    max_points: float
    ok: bool
    message: str


class ModelDetails(Details):
    """Every part's verdict and what the probe observed (the harness's plain data:
    ``ran``, ``error``, ``output_shape``, ``output_min``/``max``, ``trainable_params``,
    ``cat_calls``, ``modules``, …)."""

    parts: list[ModelPart] = Field(default_factory=list)
    probe: dict[str, Any] | None = None


def _part(name: str, points: float, ok: bool, message: str) -> ModelPart:
    return ModelPart(
        name=name, points=points if ok else 0.0, max_points=points, ok=bool(ok), message=message
    )


@register("model", ModelSpec, details=ModelDetails)
def grade_model(spec: ModelSpec, ctx: CheckContext) -> CheckResult:
    """Score each declared part from the probe's observations."""
    top = spec.max_points(ctx.expected)
    missing = unavailable(spec, ctx, spec.answer, top)
    if missing is not None:
        return missing
    probe = ctx.answers[spec.answer].value
    if not isinstance(probe, dict):
        return result(spec, top, 0, "error", f"probing {spec.answer} produced no usable result")
    expected: dict[str, Any] = ctx.expected[spec.reference_key]
    batch = spec.probe.input_shape[0]
    ran = bool(probe.get("ran"))
    parts: list[ModelPart] = []
    p = spec.parts
    error = probe.get("error") or "the forward pass failed"
    if p.runs:
        shape = tuple(spec.probe.input_shape)
        msg = (
            "the forward pass runs in eval mode"
            if ran
            else f"the forward pass on a batch of shape {shape} raised {error}"
        )
        parts.append(_part("runs", p.runs, ran, msg))
    if p.output_shape:
        want = [batch, *expected["output_shape"]]
        got = probe.get("output_shape")
        ok = ran and got == want
        msg = (
            f"the output has shape {tuple(want)}"
            if ok
            else "no output (the forward pass failed)"
            if not ran
            else f"the output has shape {tuple(got) if got else got}, expected {tuple(want)}"
        )
        parts.append(_part("output_shape", p.output_shape, ok, msg))
    if p.output_range is not None:
        lo, hi = probe.get("output_min"), probe.get("output_max")
        rng = p.output_range
        ok = (
            ran
            and bool(probe.get("output_finite"))
            and lo is not None
            and hi is not None
            and rng.min <= lo
            and hi <= rng.max
        )
        msg = (
            f"all outputs lie in [{rng.min:g}, {rng.max:g}]"
            if ok
            else "no output (the forward pass failed)"
            if not ran
            else f"outputs range over [{_fmt(lo)}, {_fmt(hi)}], outside [{rng.min:g}, {rng.max:g}]"
            " (is the final activation missing?)"
        )
        parts.append(_part("output_range", rng.points, ok, msg))
    if p.param_count:
        got_params = probe.get("trainable_params")
        want_params = expected["trainable_params"]
        ok = got_params == want_params
        msg = (
            f"{want_params:,} trainable parameters"
            if ok
            else f"{got_params:,} trainable parameters; the architecture in the handout has "
            f"{want_params:,}"
            if isinstance(got_params, int)
            else "parameters could not be counted"
        )
        if not spec.show_expected and not ok:
            msg = f"{got_params} trainable parameters is not the architecture's count"
        parts.append(_part("param_count", p.param_count, ok, msg))
    if p.concat is not None:
        parts.append(_concat_part(p.concat, probe, ran))
    score = sum(part.points for part in parts)
    status = status_for(score, top)
    failed = [part.message for part in parts if not part.ok]
    message = "all parts correct" if not failed else "; ".join(failed)
    # the student's traceback when the forward pass failed; absent (not null) otherwise
    failed_run = {"traceback": probe["traceback"]} if not ran and probe.get("traceback") else {}
    details = ModelDetails(parts=parts, probe=_probe_summary(probe), **failed_run)
    return result(spec, top, score, status, message, expected=to_plain(expected), details=details)


def _concat_part(rule: ConcatPart, probe: dict[str, Any], ran: bool) -> ModelPart:
    calls = probe.get("cat_calls") or []
    hits = [
        c for c in calls if c.get("n_inputs", 0) >= rule.min_inputs and c.get("dim") == rule.dim
    ]
    ok = ran and bool(hits)
    if ok:
        msg = f"{hits[0]['n_inputs']} tensors are concatenated along dim {rule.dim}"
    elif not ran:
        msg = "no concatenation observed (the forward pass failed)"
    elif calls:
        seen = ", ".join(f"{c.get('n_inputs')} tensors on dim {c.get('dim')}" for c in calls[:3])
        msg = f"expected ≥{rule.min_inputs} tensors concatenated on dim {rule.dim}; saw {seen}"
    elif probe.get("framework") == "keras":
        msg = (
            "no concatenation (a Concatenate layer, keras.ops.concatenate or tf.concat) "
            f"during the forward pass: the {rule.min_inputs} branches must be concatenated "
            "on the channel axis"
        )
    else:
        msg = (
            f"no torch.cat call during the forward pass: the {rule.min_inputs} branches "
            f"must be concatenated along dim {rule.dim}"
        )
    return _part("concat", rule.points, ok, msg)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else str(value)


def _probe_summary(probe: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "ran",
        "error",
        "output_shape",
        "output_dtype",
        "output_min",
        "output_max",
        "output_finite",
        "trainable_params",
        "total_params",
        "non_trainable_params",
        "cat_calls",
        "framework",
        "channels_last",
    )
    summary = {k: to_plain(probe.get(k)) for k in keep if k in probe}
    modules = probe.get("modules") or []
    summary["modules"] = to_plain(modules[:60])
    return summary


# ------------------------------------------------------------------ the report's view


def wrong_parts(check: CheckResult, details: ModelDetails) -> list[tuple[str, bool]] | None:
    """The class summary's keys of a wrong model: each failed part and why."""
    if not details.parts:
        return None
    return [(f"{p.name}: {shorten(p.message, 70)}", False) for p in details.parts if not p.ok]


@view("model", macros=MACROS / "model.html.j2", wrong=wrong_parts)
def model_view(check: CheckResult, details: ModelDetails) -> dict[str, Any]:
    """Every part with its mark, and what the probe observed beside what the reference
    model gives (where the record may show it)."""
    has_exp, expected = expected_of(check)
    expected = expected if isinstance(expected, dict) else {}
    parts = [
        {
            "name": p.name.replace("_", " "),
            "points": fmt_points(p.points),
            "max_points": fmt_points(p.max_points),
            "ok": p.ok,
            "message": p.message,
        }
        for p in details.parts
    ]
    rows: list[dict[str, str]] = []
    if details.probe is None:  # the answer was missing or could not be probed
        return {"parts": parts, "probe_rows": rows, "probe_error": None, "ran": None}
    probe = details.probe
    error = trim_traceback(str(probe["error"]), head=4, tail=12) if probe.get("error") else None

    def row(
        what: str, got: str, key: str | None = None, shown: Callable[[Any], str] = fmt_shape
    ) -> None:
        exp = shown(expected[key]) if key and has_exp and key in expected else ""
        rows.append({"what": what, "got": got, "expected": exp})

    if "output_shape" in probe or "output_shape" in expected:
        row("Output shape", fmt_shape(probe.get("output_shape")), "output_shape")
    if "output_min" in probe or "output_max" in probe:
        low, high = fmt_number(probe.get("output_min")), fmt_number(probe.get("output_max"))
        row("Output range", f"{low} … {high}")
    if "trainable_params" in probe or "trainable_params" in expected:
        got = _thousands(probe.get("trainable_params"))
        row("Trainable parameters", got, "trainable_params", _thousands)
    cats = probe.get("cat_calls")
    if isinstance(cats, list):
        text = "none observed"
        if cats:
            text = "; ".join(
                f"{c.get('n_inputs', '?')} tensors on dim {c.get('dim', '?')}"
                for c in cats[:4]
                if isinstance(c, dict)
            )
            text += f" (+{len(cats) - 4} more)" if len(cats) > 4 else ""
        row("Concatenations" if probe.get("framework") == "keras" else "torch.cat calls", text)
    return {
        "parts": parts,
        "probe_rows": rows,
        "probe_error": error,
        "ran": bool(probe.get("ran")),
    }


def _thousands(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return fmt_number(value)
