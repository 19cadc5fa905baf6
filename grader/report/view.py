"""Turn a results record (plain JSON data) into the plain view the templates draw.

Everything a template needs is computed here (matrices with their differing cells,
trimmed tracebacks, status words, percentages), so the templates stay declarative and
only ever see data the record holds: expected values are shown only where the record
carries them and the check allows it (``show_expected``).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup, escape

from grader.report.figures import score_bar_svg

STATUS_WORDS: dict[str, str] = {
    "pass": "Passed",
    "partial": "Partial credit",
    "fail": "Failed",
    "error": "Error",
    "manual": "Awaiting instructor review",
}

FAILURE_WORDS: dict[str, str] = {
    "error": "raised an error",
    "timeout": "timed out (it ran longer than the time limit)",
    "kernel_died": "stopped the Python kernel (it crashed, often from running out of memory)",
    "limit": "hit a resource limit",
}

TYPE_WORDS: dict[str, str] = {
    "value": "value",
    "shape_table": "shape table",
    "model": "model",
    "text": "written answer",
    "function": "function",
}

MAX_MATRIX_ROWS = 12
MAX_MATRIX_COLS = 10
SIDE_BY_SIDE_MAX_CHARS = 96
TRACEBACK_HEAD = 6
TRACEBACK_TAIL = 24
LINE_WIDTH = 108
LINE_CAP = 400
ANSWER_CHARS = 1500
PROMPT_CHARS = 400
SHAPE_ROW_CHARS = 30


def fmt_points(value: Any) -> str:
    """Points as short text: 12, 12.5, 12.33."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    text = f"{float(value):.2f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def fmt_number(value: Any) -> str:
    """A matrix entry or probe value as compact text (4 significant digits)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    if value is None:
        return "—"
    return shorten(str(value), 24)


def fmt_shape(value: Any) -> str:
    """A shape such as ``[498, 16]`` as ``(498, 16)``; other values as text."""
    if value is None:
        return "—"
    if isinstance(value, list | tuple):
        inner = ", ".join(fmt_number(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return shorten(str(value), 40)


def fmt_compact(value: Any, limit: int = 120) -> str:
    """Any JSON value as one short line of text."""
    if isinstance(value, list | tuple):
        text = "[" + ", ".join(fmt_compact(v, limit) for v in value[:20])
        text += ", …]" if len(value) > 20 else "]"
    elif isinstance(value, dict):
        items = list(value.items())[:10]
        text = "{" + ", ".join(f"{k}: {fmt_compact(v, limit)}" for k, v in items) + "}"
    elif isinstance(value, str):
        text = repr(value)
    else:
        text = fmt_number(value)
    return shorten(text, limit)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def percent(score: Any, max_score: Any) -> float:
    """Score as a percentage of max (0 when max is 0)."""
    try:
        top = float(max_score)
        return 100.0 * float(score) / top if top > 0 else 0.0
    except (TypeError, ValueError):
        return 0.0


def level(score: Any, max_score: Any) -> str:
    """A colour class for a score: ``full``, ``some`` or ``none``."""
    frac = percent(score, max_score) / 100.0
    if frac >= 0.999:
        return "full"
    return "some" if frac > 0 else "none"


def text_direction(text: str) -> str:
    """``rtl`` when the first strongly directional character is right-to-left."""
    for char in text:
        bidi = unicodedata.bidirectional(char)
        if bidi in ("R", "AL"):
            return "rtl"
        if bidi == "L":
            return "ltr"
    return "ltr"


def trim_traceback(
    text: str, head: int = TRACEBACK_HEAD, tail: int = TRACEBACK_TAIL, width: int = LINE_WIDTH
) -> str:
    """The first ``head`` and last ``tail`` lines of a traceback, long lines folded.

    Lines are cut to ``LINE_CAP`` characters and folded at ``width`` so the block can be
    laid out as preformatted text without running off the page.
    """
    lines = text.strip("\n").splitlines()
    if len(lines) > head + tail + 1:
        omitted = len(lines) - head - tail
        lines = [*lines[:head], f"    … {omitted} lines omitted …", *lines[-tail:]]
    out: list[str] = []
    for line in lines:
        line = shorten(line.rstrip().expandtabs(4), LINE_CAP)
        while len(line) > width:
            out.append(line[:width])
            line = "  " + line[width:]
        out.append(line)
    return "\n".join(out)


def cell_ranges(cells: Iterable[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3–5, 9``."""
    nums = sorted(set(cells))
    parts: list[str] = []
    start = prev = None
    for n in [*nums, None]:
        if start is None:
            start = prev = n
        elif n is not None and prev is not None and n == prev + 1:
            prev = n
        else:
            parts.append(str(start) if start == prev else f"{start}–{prev}")
            start = prev = n
    return ", ".join(parts)


# ---------------------------------------------------------------- matrices


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, list):
        depth += 1
        if not value:
            break
        value = value[0]
    return depth


def _as_grid(value: Any) -> tuple[list[list[Any]], list[int]] | None:
    """A scalar, vector, matrix or higher array as rows of cells plus its shape."""
    depth = _depth(value)
    if depth == 0:
        return [[value]], []
    if depth == 1:
        return [list(value)], [len(value)]
    if depth == 2:
        if not all(isinstance(r, list) for r in value):
            return None
        width = max((len(r) for r in value), default=0)
        return [list(r) for r in value], [len(value), width]
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        probe = probe[0] if probe else None
    rows: list[list[Any]] = []

    def walk(node: Any, level_: int) -> None:
        if level_ == len(shape) - 1:
            rows.append(list(node) if isinstance(node, list) else [node])
        elif isinstance(node, list):
            for child in node:
                walk(child, level_ + 1)

    walk(value, 0)
    return rows, shape


def matrix_view(value: Any, mismatch: Any = None) -> dict[str, Any] | None:
    """A matrix as preformatted HTML lines with the differing cells highlighted, or None.

    Each row becomes one line of right-aligned, space-separated cells (cheap to lay out
    compared with a table cell per entry); cells marked in ``mismatch`` are wrapped in
    ``<span class="d">``. Large arrays are cut to ``MAX_MATRIX_ROWS`` × ``MAX_MATRIX_COLS``.
    """
    grid = _as_grid(value)
    if grid is None:
        return None
    rows, shape = grid
    mask = _as_grid(mismatch) if mismatch is not None else None
    mask_grid = mask[0] if mask is not None and len(mask[0]) == len(rows) else None
    n_rows = len(rows)
    n_cols = max((len(r) for r in rows), default=0)
    texts = [[fmt_number(c) for c in r[:MAX_MATRIX_COLS]] for r in rows[:MAX_MATRIX_ROWS]]
    width = max((len(t) for r in texts for t in r), default=1)
    lines: list[str] = []
    shown_diffs = 0
    for i, row in enumerate(texts):
        mask_row = mask_grid[i] if mask_grid is not None and isinstance(mask_grid[i], list) else []
        parts = []
        for j, text in enumerate(row):
            cell = str(escape(text.rjust(width)))
            if j < len(mask_row) and mask_row[j] is True:
                shown_diffs += 1
                cell = f'<span class="d">{cell}</span>'
            parts.append(cell)
        if n_cols > MAX_MATRIX_COLS:
            parts.append("…")
        lines.append("  ".join(parts))
    if n_rows > MAX_MATRIX_ROWS:
        lines.append(
            f"… {n_rows - MAX_MATRIX_ROWS} more row{'s' if n_rows - MAX_MATRIX_ROWS != 1 else ''}"
        )
    chars = max(len(texts[0]) if texts else 0, 1) * (width + 2) + (
        2 if n_cols > MAX_MATRIX_COLS else 0
    )
    return {
        "html": Markup("\n".join(lines)),
        "chars": chars,
        "shape": shape,
        "shape_text": fmt_shape(shape) if shape else "scalar",
        "more_cols": max(n_cols - MAX_MATRIX_COLS, 0),
        "shown_diffs": shown_diffs,
        "flattened": len(shape) > 2,
    }


def _count_true(mask: Any) -> int:
    if isinstance(mask, list):
        return sum(_count_true(m) for m in mask)
    return 1 if mask is True else 0


def _count_cells(value: Any) -> int:
    if isinstance(value, list):
        return sum(_count_cells(v) for v in value)
    return 1


# ---------------------------------------------------------------- checks


def _expected_of(check: dict[str, Any]) -> tuple[bool, Any]:
    """Whether an expected value may be shown, and the value."""
    if check.get("show_expected", True) is False:
        return False, None
    if "expected" not in check or check["expected"] is None:
        return False, None
    return True, check["expected"]


def _value_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    has_exp, expected = _expected_of(check)
    has_got = "got" in check and check["got"] is not None
    got = check.get("got")
    mismatch = details.get("mismatch")
    view: dict[str, Any] = {
        "kind": "value",
        "has_expected": has_exp,
        "has_got": has_got,
        "expected_shape": details.get("expected_shape"),
        "got_shape": details.get("got_shape"),
        "scalar": False,
    }
    if has_exp and has_got and _depth(expected) == 0 and _depth(got) == 0:
        view.update(scalar=True, expected_text=fmt_number(expected), got_text=fmt_number(got))
        return view
    view["expected"] = matrix_view(expected, mismatch) if has_exp else None
    view["got"] = matrix_view(got, mismatch) if has_got else None
    if mismatch is not None:
        view["n_diff"] = _count_true(mismatch)
        view["n_cells"] = _count_cells(mismatch)
        shown = max((m["shown_diffs"] for m in (view["expected"], view["got"]) if m), default=0)
        view["n_hidden_diff"] = view["n_diff"] - shown
    chars = sum(m["chars"] for m in (view["expected"], view["got"]) if m is not None)
    view["side_by_side"] = chars <= SIDE_BY_SIDE_MAX_CHARS
    return view


def _shape_table_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    show = check.get("show_expected", True) is not False
    rows = []
    for row in details.get("rows", []):
        if not isinstance(row, dict):
            continue
        has_exp = show and ("expected_shape" in row or "expected_params" in row)
        rows.append(
            {
                "row": row.get("row", ""),
                "layer": str(row.get("layer", "")),
                "expected_shape": fmt_shape(row.get("expected_shape")) if has_exp else None,
                "got_shape": fmt_shape(row.get("got_shape")),
                "expected_params": fmt_number(row.get("expected_params")) if has_exp else None,
                "got_params": fmt_number(row.get("got_params")),
                "shape_ok": bool(row.get("shape_ok")),
                "params_ok": bool(row.get("params_ok")),
                "ok": bool(row.get("shape_ok")) and bool(row.get("params_ok")),
                "points": fmt_points(row.get("points", 0)),
                "max_points": fmt_points(row.get("max_points", 0)),
            }
        )
    has_expected = any(r["expected_shape"] is not None for r in rows)
    return {
        "kind": "shape_table",
        "rows": rows,
        "has_expected": has_expected,
        "n_wrong": sum(1 for r in rows if not r["ok"]),
        "html": shape_table_text(rows, has_expected),
    }


def shape_table_text(rows: Sequence[dict[str, Any]], has_expected: bool) -> Markup:
    """A shape table as preformatted lines: aligned columns, a ✓/✗ mark per row.

    Wrong rows are wrapped in ``<span class="w">`` and their wrong entries in
    ``<span class="bad">``. One text block lays out many times faster than a table with
    a cell per entry (each cell is a box with its own line breaking and borders).
    """
    head = ["Row · layer", "Your shape"]
    head += ["Expected shape"] if has_expected else []
    head += ["Your params"]
    head += ["Expected params"] if has_expected else []
    head += ["Points"]
    table: list[list[str]] = []
    for r in rows:
        line = [shorten(f"{r['row']} · {r['layer']}", SHAPE_ROW_CHARS), str(r["got_shape"])]
        line += [str(r["expected_shape"] or "")] if has_expected else []
        line += [str(r["got_params"])]
        line += [str(r["expected_params"] or "")] if has_expected else []
        line += [f"{r['points']} / {r['max_points']}"]
        table.append(line)
    widths = [max(len(x) for x in col) for col in zip(head, *table, strict=True)]
    bad_cols = (1, 3 if has_expected else 2)  # your shape, your params

    def fmt(cells: Sequence[str], bad: Sequence[bool] = ()) -> str:
        out = []
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True)):
            text = cell.rjust(width) if i == len(cells) - 1 else cell.ljust(width)
            text = str(escape(text))
            if i in bad_cols and bad and bad[bad_cols.index(i)]:
                text = f'<span class="bad">{text}</span>'
            out.append(text)
        return "  ".join(out)

    lines = [f'<span class="h">  {fmt(head)}</span>']
    for r, cells in zip(rows, table, strict=True):
        if r["ok"]:
            lines.append(f"✓ {fmt(cells)}")
        else:
            bad = (not r["shape_ok"], not r["params_ok"])
            lines.append(f'<span class="w">✗ {fmt(cells, bad)}</span>')
    return Markup("\n".join(lines))


def _model_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    has_exp, expected = _expected_of(check)
    expected = expected if isinstance(expected, dict) else {}
    parts = [
        {
            "name": str(p.get("name", "")).replace("_", " "),
            "points": fmt_points(p.get("points", 0)),
            "max_points": fmt_points(p.get("max_points", 0)),
            "ok": bool(p.get("ok")),
            "message": str(p.get("message", "")),
        }
        for p in details.get("parts", [])
        if isinstance(p, dict)
    ]
    probe = details.get("probe") if isinstance(details.get("probe"), dict) else None
    probe_rows: list[dict[str, str]] = []
    probe_error = None
    ran = None
    if probe is not None:
        ran = bool(probe.get("ran"))
        if probe.get("error"):
            probe_error = trim_traceback(str(probe["error"]), head=4, tail=12)
        if "output_shape" in probe or "output_shape" in expected:
            probe_rows.append(
                {
                    "what": "Output shape",
                    "got": fmt_shape(probe.get("output_shape")),
                    "expected": fmt_shape(expected["output_shape"])
                    if has_exp and "output_shape" in expected
                    else "",
                }
            )
        if "output_min" in probe or "output_max" in probe:
            probe_rows.append(
                {
                    "what": "Output range",
                    "got": f"{fmt_number(probe.get('output_min'))} … "
                    f"{fmt_number(probe.get('output_max'))}",
                    "expected": "",
                }
            )
        if "trainable_params" in probe or "trainable_params" in expected:
            probe_rows.append(
                {
                    "what": "Trainable parameters",
                    "got": _thousands(probe.get("trainable_params")),
                    "expected": _thousands(expected["trainable_params"])
                    if has_exp and "trainable_params" in expected
                    else "",
                }
            )
        cats = probe.get("cat_calls")
        if isinstance(cats, list):
            if cats:
                text = "; ".join(
                    f"{c.get('n_inputs', '?')} tensors on dim {c.get('dim', '?')}"
                    for c in cats[:4]
                    if isinstance(c, dict)
                )
                text += f" (+{len(cats) - 4} more)" if len(cats) > 4 else ""
            else:
                text = "none observed"
            probe_rows.append({"what": "torch.cat calls", "got": text, "expected": ""})
    return {
        "kind": "model",
        "parts": parts,
        "probe_rows": probe_rows,
        "probe_error": probe_error,
        "ran": ran,
        "has_expected": any(r["expected"] for r in probe_rows),
    }


def _thousands(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return fmt_number(value)


def _text_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    concepts = [
        {
            "name": str(c.get("name", "")),
            "found": bool(c.get("found")),
            "matched": str(c["matched"]) if c.get("matched") else "",
        }
        for c in details.get("concepts", [])
        if isinstance(c, dict)
    ]
    answer = str(details.get("answer") or "")
    truncated = len(answer) > ANSWER_CHARS
    answer = answer[:ANSWER_CHARS]
    return {
        "kind": "text",
        "concepts": concepts,
        "word_count": details.get("word_count"),
        "min_words": details.get("min_words"),
        "answer": answer,
        "answer_truncated": truncated,
        "answer_dir": text_direction(answer),
        "awaiting": check.get("status") == "manual",
    }


def _function_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    has_exp, expected = _expected_of(check)
    got = check.get("got")
    error = details.get("error")
    return {
        "kind": "function",
        "case": shorten(str(details.get("case") or ""), 600),
        "case_dir": text_direction(str(details.get("case") or "")),
        "error": trim_traceback(str(error), head=4, tail=12) if error else "",
        "expected_text": fmt_compact(expected, 300) if has_exp else "",
        "got_text": fmt_compact(got, 300) if got is not None else "",
    }


def _generic_view(check: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    has_exp, expected = _expected_of(check)
    got = check.get("got")
    return {
        "kind": "generic",
        "expected_text": fmt_compact(expected, 300) if has_exp else "",
        "got_text": fmt_compact(got, 300) if got is not None else "",
    }


def check_view(check: dict[str, Any]) -> dict[str, Any]:
    """Everything the report shows for one check."""
    details = check.get("details")
    details = details if isinstance(details, dict) else {}
    ctype = str(check.get("type", ""))
    status = str(check.get("status", "error"))
    body: dict[str, Any]
    if ctype == "value":
        body = _value_view(check, details)
    elif ctype == "shape_table":
        body = _shape_table_view(check, details)
    elif ctype == "model":
        body = _model_view(check, details)
    elif ctype == "text":
        body = _text_view(check, details)
    elif ctype == "function" or "case" in details:
        body = _function_view(check, details)
    else:
        body = _generic_view(check, details)
    traceback = details.get("traceback")
    override = details.get("override") if isinstance(details.get("override"), dict) else None
    message = str(check.get("message", ""))
    prompt = str(check.get("prompt") or "")
    return {
        # a passed check without an instructor override is one row of its question's
        # "passed" table; only the others get a block with their details
        "compact": status == "pass" and override is None,
        "id": str(check.get("id", "")),
        "type": ctype,
        "type_word": TYPE_WORDS.get(ctype, ctype.replace("_", " ")),
        "status": status,
        "status_word": STATUS_WORDS.get(status, status),
        "score": fmt_points(check.get("score", 0)),
        "max_score": fmt_points(check.get("max_score", 0)),
        "message": message,
        "message_dir": text_direction(message),
        "prompt": shorten(prompt, PROMPT_CHARS),
        "body": body,
        "traceback": trim_traceback(str(traceback)) if traceback else "",
        "override": None
        if override is None
        else {
            "comment": str(override.get("comment") or ""),
            "comment_dir": text_direction(str(override.get("comment") or "")),
            "original_score": fmt_points(override.get("original_score", 0)),
            "original_status": STATUS_WORDS.get(
                str(override.get("original_status")), str(override.get("original_status"))
            ),
        },
    }


def _question_status(checks: Sequence[dict[str, Any]], score: Any, top: Any) -> str:
    statuses = {c.get("status") for c in checks}
    if "manual" in statuses:
        return "manual"
    if "error" in statuses and percent(score, top) < 99.9:
        return "error"
    lv = level(score, top)
    return {"full": "pass", "some": "partial", "none": "fail"}[lv]


def question_view(question: dict[str, Any]) -> dict[str, Any]:
    """A question's header data and its checks."""
    checks = [c for c in question.get("checks", []) if isinstance(c, dict)]
    score, top = question.get("score", 0), question.get("max_score", 0)
    status = _question_status(checks, score, top)
    views = [check_view(c) for c in checks]
    return {
        "id": str(question.get("id", "")),
        "title": str(question.get("title", "")),
        "score": fmt_points(score),
        "max_score": fmt_points(top),
        "percent": percent(score, top),
        "level": level(score, top),
        "status": status,
        "status_word": STATUS_WORDS.get(status, status),
        "checks": views,
        "passed": [c for c in views if c["compact"]],
        "detailed": [c for c in views if not c["compact"]],
        "weight": float(top) if isinstance(top, int | float) else 0.0,
    }


def execution_view(execution: dict[str, Any]) -> dict[str, Any]:
    """Execution problems in words, with short tracebacks."""
    failures = []
    for f in execution.get("failures", []):
        if not isinstance(f, dict):
            continue
        kind = str(f.get("kind", "error"))
        words = FAILURE_WORDS.get(kind, kind)
        if kind == "limit" and execution.get("limit_hit"):
            words = f"hit a resource limit ({execution['limit_hit']})"
        ename, evalue = str(f.get("ename") or ""), str(f.get("evalue") or "")
        line = f"{ename}: {evalue}" if ename and evalue else ename or evalue
        failures.append(
            {
                "cell": f.get("cell", "?"),
                "kind": kind,
                "words": words,
                "line": shorten(line, 300),
                "traceback": trim_traceback(str(f.get("traceback") or "")),
            }
        )
    flags = []
    if execution.get("timed_out"):
        flags.append("The notebook timed out: it ran longer than the time limit.")
    if execution.get("kernel_died"):
        flags.append("The Python kernel died while running the notebook (often out of memory).")
    if execution.get("limit_hit"):
        flags.append(f"A resource limit was hit: {execution['limit_hit']}.")
    not_run = [c for c in execution.get("cells_not_run", []) if isinstance(c, int)]
    warnings = [shorten(str(w), 300) for w in execution.get("warnings", [])][:10]
    total = execution.get("cells_total", 0)
    ran = execution.get("cells_run", 0)
    return {
        "notebook": execution.get("notebook"),
        "cells_total": total,
        "cells_run": ran,
        "duration": f"{float(execution.get('duration_s') or 0):.1f}",
        "failures": failures,
        "flags": flags,
        "not_run": cell_ranges(not_run),
        "n_not_run": len(not_run),
        "warnings": warnings,
        "module": execution.get("module"),
        "module_problem": execution.get("module_problem"),
        "problems": bool(
            failures
            or flags
            or not_run
            or execution.get("module_problem")
            or (execution.get("notebook") is None and not execution.get("module"))
        ),
    }


def _provenance_text(prov: dict[str, Any], graded_at: str) -> str:
    """The reproducibility appendix as aligned ``label  value`` lines."""
    seeds = ", ".join(f"{k}={v}" for k, v in sorted((prov.get("seeds") or {}).items()))
    rows = [
        ("Submission SHA-256", prov.get("submission_sha256", "")),
        ("Rubric SHA-256", prov.get("rubric_sha256", "")),
        ("Reference SHA-256", prov.get("reference_sha256", "")),
        ("Grader version", prov.get("grader_version", "")),
        ("Python", prov.get("python", "")),
        ("PyTorch", prov.get("torch", "")),
        ("NumPy", prov.get("numpy", "")),
        ("Seeds", seeds or "none"),
        ("Graded at", graded_at),
    ]
    return "\n".join(f"{label:<20}{shorten(str(value), 90)}" for label, value in rows)


def report_view(record: dict[str, Any], sandbox_warning: str | None = None) -> dict[str, Any]:
    """The whole report's view of one student's record."""
    questions = [question_view(q) for q in record.get("questions", []) if isinstance(q, dict)]
    total_weight = sum(q["weight"] for q in questions) or 1.0
    for q in questions:
        q["bar_width"] = round(100.0 * q["weight"] / total_weight, 2) if q["weight"] else 0
    score_bar = (
        score_bar_svg(
            [
                (
                    q["id"],
                    f"{q['score']}/{q['max_score']}",
                    q["weight"] / total_weight,
                    q["percent"] / 100,
                    q["level"],
                )
                for q in questions
            ]
        )
        if questions
        else ""
    )
    prov = record.get("provenance", {}) or {}
    graded_at = str(prov.get("graded_at") or "")
    manual = [c for q in questions for c in q["checks"] if c["status"] == "manual"]
    student = str(record.get("student", ""))
    return {
        "student": student,
        "student_dir": text_direction(student),
        "assignment": str(record.get("assignment", "")),
        "title": str(record.get("title") or record.get("assignment", "")),
        "course": str(record.get("course", "")),
        "score": fmt_points(record.get("score", 0)),
        "max_score": fmt_points(record.get("max_score", 0)),
        "percent": f"{percent(record.get('score', 0), record.get('max_score', 0)):.1f}",
        "level": level(record.get("score", 0), record.get("max_score", 0)),
        "date": graded_at[:10] if graded_at else "",
        "questions": questions,
        "score_bar": score_bar,
        "execution": execution_view(record.get("execution", {}) or {}),
        "n_manual": len(manual),
        "manual_points": fmt_points(sum(float(c["max_score"]) for c in manual if c["max_score"])),
        "provenance_text": _provenance_text(prov, graded_at),
        "sandbox_warning": sandbox_warning,
        "has_overrides": any(c["override"] for q in questions for c in q["checks"]),
    }
