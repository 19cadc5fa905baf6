"""The students' self-check: public checks only, run on the student's own machine.

``grade assign`` writes this module's source, after the source of
:mod:`grader.checks.compare` (the comparison grading uses), as ``check.py`` in the student
version, with the public checks in ``selfcheck/checks.json`` and their arrays in
``selfcheck/arrays.npz`` beside it. It needs NumPy, the handout's own packages and, for a
notebook, nbclient and ipykernel: no grader, no reference, no sandbox, no root.

The lines marked ``# selfcheck: vendored`` are dropped when the script is written (their
names are defined by the vendored comparison code above them). Nothing here may import
the grader otherwise.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import re
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from grader.checks.compare import Tolerance, compare_arrays  # selfcheck: vendored

#: The folder beside the script holding the public checks.
DATA_DIR = "selfcheck"
#: Printed before the kernel's JSON verdicts, so that student output cannot be mistaken
#: for them.
MARK = "@@selfcheck-verdicts@@"
HIDDEN_NOTE = (
    "Hidden checks are not included: passing these does not mean full marks "
    "(grading runs other cases, compares your answers' values and reads your written answers)."
)

Verdict = dict[str, Any]


# ------------------------------------------------------------------ plain data


def decode(node: Any, arrays: Mapping[str, Any]) -> Any:
    """The checks' JSON with arrays (``{"__array__": key}``) and tuples restored."""
    if isinstance(node, dict):
        if set(node) == {"__array__"}:
            return np.array(arrays[node["__array__"]])
        if set(node) == {"__tuple__"}:
            return tuple(decode(v, arrays) for v in node["__tuple__"])
        if set(node) == {"__float__"}:
            return float(node["__float__"])
        return {k: decode(v, arrays) for k, v in node.items()}
    if isinstance(node, list):
        return [decode(v, arrays) for v in node]
    return node


def as_floats(value: Any) -> Any:
    """An answer as a float64 array (torch tensors and nested lists included), or None
    when it is not numbers."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    if isinstance(value, str) or value is None:
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError):
        return None
    if arr.dtype.kind not in "biuf":
        if arr.dtype == object and arr.size and all(hasattr(v, "detach") for v in arr.reshape(-1)):
            return as_floats([as_floats(v) for v in arr.reshape(-1)])
        return None
    return arr.astype(np.float64)


def readable(value: Any, depth: int = 0) -> bool:
    """Plain data the grader can read back: numbers, strings, arrays, tensors, and
    lists, tuples and dicts of them."""
    if depth > 20 or value is None:
        return False
    if isinstance(value, bool | int | float | str | np.generic | np.ndarray):
        return True
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return True
    if isinstance(value, list | tuple):
        return all(readable(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and readable(v, depth + 1) for k, v in value.items())
    return False


# ------------------------------------------------------------------ form checks


def run_form(check: Mapping[str, Any], namespace: Mapping[str, Any]) -> Verdict:
    """The answer exists, is readable, and has the handout's form (never its value)."""
    name = check["name"]
    verdict: Verdict = {"check": check["id"], "what": check["what"], "ok": False}
    if name not in namespace:
        verdict["message"] = f"{name} is not defined after your notebook ran"
        return verdict
    value = namespace[name]
    form = check.get("form", "plain")
    if form == "model":
        ok = callable(value) or hasattr(value, "forward")
        verdict.update(ok=ok, message="" if ok else f"{name} is not a model (not callable)")
        return verdict
    if not readable(value):
        verdict["message"] = (
            f"{name} is a {type(value).__name__}, which the grader cannot read: use numbers, "
            "strings, lists, dicts, NumPy arrays or tensors"
        )
        return verdict
    if form == "number":
        arr = as_floats(value)
        ok = isinstance(value, str) or (arr is not None and arr.size == 1)
        verdict.update(ok=ok, message="" if ok else f"{name} should be a single number")
    elif form == "array":
        arr = as_floats(value)
        shape = tuple(check["shape"])
        if arr is None:
            verdict["message"] = f"{name} could not be read as numbers"
        elif arr.shape != shape:
            verdict["message"] = f"{name} has shape {arr.shape}; the handout asks for {shape}"
        else:
            verdict.update(ok=True, message="")
    else:
        verdict.update(ok=True, message="")
    return verdict


# ------------------------------------------------------------------ time limits


class TimeLimit:
    """Raise TimeoutError in the main thread after ``seconds`` (SIGALRM; where there is
    none, as on Windows, no limit). Set by ``main``; 0 means no limit."""

    seconds = 0

    def __init__(self, what: str) -> None:
        self.what = what

    def _expired(self, signum: int, frame: Any) -> None:
        raise TimeoutError(f"{self.what} took more than {self.seconds} s")

    def __enter__(self) -> TimeLimit:
        if self.seconds and hasattr(signal, "SIGALRM"):
            signal.signal(signal.SIGALRM, self._expired)
            signal.alarm(int(self.seconds))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.seconds and hasattr(signal, "SIGALRM"):
            signal.alarm(0)


# ------------------------------------------------------------------ function checks


def _changed(before: Any, after: Any) -> bool:
    a, b = as_floats(before), as_floats(after)
    if a is not None and b is not None:
        return a.shape != b.shape or not bool(np.array_equal(a, b, equal_nan=True))
    if isinstance(before, dict) and isinstance(after, dict):
        return set(before) != set(after) or any(_changed(before[k], after[k]) for k in before)
    return False


def compare_output(tol: Tolerance, label: str, expected: Any, got: Any) -> str | None:
    """Why one output differs from the reference's, or None: the grader's comparison."""
    exp = as_floats(expected)
    if exp is None:
        return None if got == expected else f"{label} is {got!r}, not {expected!r}"
    if got is None:
        return f"{label} is missing from what the function returned"
    arr = as_floats(got)
    if arr is None:
        return f"{label} could not be read as numbers"
    verdict = compare_arrays(tol, exp, arr)
    if verdict.reason == "shape":
        return f"{label} has shape {verdict.got_shape} but should have shape {exp.shape}"
    if verdict.reason == "not finite":
        return f"{label} contains inf or nan"
    if verdict.reason is not None:
        what = "max |a - b|" if tol.absolute else "relative error"
        return f"{label} differs ({what} {verdict.error:.2g})"
    return None


_NO_FORWARD = object()


def _call(
    check: Mapping[str, Any],
    case: Mapping[str, Any],
    fn: Any,
    args: list[Any],
    kwargs: dict[str, Any],
    lookup: Callable[[str], Any],
) -> Any:
    """The student's function on the case (a backward on its own forward's cache)."""
    if not check.get("forward"):
        return fn(*args, **kwargs)
    forward = lookup(check["forward"])
    if forward is None:
        return _NO_FORWARD
    cache = forward(*args, **kwargs)[check["cache_index"]]
    return fn(copy.deepcopy(case["dout"]), cache)


def run_case(
    check: Mapping[str, Any], case: Mapping[str, Any], lookup: Callable[[str], Any]
) -> str | None:
    """Why the student's function fails one public case, or None when it passes."""
    fn_name = check["function"]
    tol = Tolerance(**check["tolerance"])
    fn = lookup(fn_name)
    if fn is None:
        return f"{fn_name} is not defined"
    args = copy.deepcopy(list(case["args"]))
    kwargs = copy.deepcopy(dict(case.get("kwargs") or {}))
    before = copy.deepcopy(args)
    try:
        with TimeLimit(f"calling {fn_name}"):
            got = _call(check, case, fn, args, kwargs, lookup)
    except Exception as exc:
        return f"{fn_name} raised {type(exc).__name__}: {exc}"
    if got is _NO_FORWARD:
        return f"{fn_name} needs the cache of {check['forward']}, which is not defined"

    if check.get("check_inplace") and not check.get("forward"):
        for pos, (a, b) in enumerate(zip(before, args, strict=True)):
            if _changed(a, b):
                return f"{fn_name} modified its input {pos + 1} in place: work on a copy"
    names = list(check.get("output_names") or [])
    if case["tuple"]:
        expected = list(case["returned"])
        if not isinstance(got, tuple | list):
            return f"{fn_name} should return a tuple of {len(expected)} values"
        wanted = check.get("outputs")
        wanted = list(range(len(expected))) if wanted is None else wanted
        if len(got) < max(wanted, default=-1) + 1:
            return f"{fn_name} returned {len(got)} values; it should return {len(expected)}"
        for k in wanted:
            label = names[k] if k < len(names) else f"output {k}"
            problem = compare_output(tol, label, expected[k], got[k])
            if problem:
                return problem
    else:
        label = names[0] if names else "the result"
        problem = compare_output(tol, label, case["returned"], got)
        if problem:
            return problem
    for key, after in (case.get("args_after") or {}).items():
        pos = int(key)
        items = after.items() if isinstance(after, dict) else [("", after)]
        for entry, value in items:
            held = args[pos].get(entry) if isinstance(after, dict) else args[pos]
            label = f"argument {pos + 1}" + (f"[{entry!r}]" if entry else "")
            if held is None:
                return f"{label} was not written back by {fn_name}"
            label += " after the call"
            problem = compare_output(tol, label, value, held)
            if problem:
                return problem
    return None


def run_function(check: Mapping[str, Any], lookup: Callable[[str], Any]) -> list[Verdict]:
    """One verdict per public case of a function check."""
    verdicts = []
    for case in check["cases"]:
        problem = run_case(check, case, lookup)
        verdicts.append(
            {
                "check": check["id"],
                "what": f"{check['function']} on the public case '{case['name']}'",
                "ok": problem is None,
                "message": problem or "",
                "case": case["name"],
            }
        )
    return verdicts


def run_checks(
    checks: list[Mapping[str, Any]], namespace: Mapping[str, Any], data_dir: str
) -> list[Verdict]:
    """Every check of ``checks`` against the names of ``namespace`` (a notebook's
    globals, or a module's)."""
    with np.load(Path(data_dir) / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    verdicts: list[Verdict] = []
    for check in checks:
        if check["kind"] == "form":
            verdicts.append(run_form(check, namespace))
        else:
            verdicts += run_function(decode(check, arrays), namespace.get)
    return verdicts


# ------------------------------------------------------------------ the command


def _module_namespace(folder: Path, module: str) -> tuple[dict[str, Any], str | None]:
    """The student's module imported from ``folder``, or why it could not be."""
    sys.dont_write_bytecode = True  # leave no __pycache__ in the student's folder
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(module[:-3], folder / module)
    if spec is None or spec.loader is None or not (folder / module).is_file():
        return {}, f"{module} was not found in {folder}"
    mod = importlib.util.module_from_spec(spec)
    sys.modules[module[:-3]] = mod
    try:
        with TimeLimit(f"importing {module}"):
            spec.loader.exec_module(mod)
    except BaseException as exc:
        return {}, f"importing {module} raised {type(exc).__name__}: {exc}"
    return vars(mod), None


def _headings(notebook: Path) -> list[str]:
    """The text of every Markdown heading of the notebook, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    found = []
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else source
        for line in text.splitlines():
            match = re.match(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$", line.strip())
            if match:
                found.append(match.group(2))
    return found


def _run_notebook(
    folder: Path, notebook: str, checks: list[Mapping[str, Any]], data_dir: Path, timeout: int
) -> tuple[list[Verdict], list[str]]:
    """Run the notebook in a kernel, then the checks in that kernel; (verdicts, notes)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(folder / notebook, as_version=4)  # type: ignore[no-untyped-call]
    script = Path(__file__).resolve().read_text(encoding="utf-8")
    probe = (
        "import json as __j, sys as __s, types as __t\n"
        "__m = __t.ModuleType('__selfcheck__')\n"
        "__m.__file__ = " + repr(str(__file__)) + "\n"
        "__s.modules['__selfcheck__'] = __m  # dataclasses look their module up\n"
        "__selfcheck = __m.__dict__\n"
        f"exec(compile({script!r}, 'check.py', 'exec'), __selfcheck)\n"
        f"print({MARK!r} + __j.dumps(__selfcheck['run_checks']("
        f"__j.loads({json.dumps(checks)!r}), globals(), {str(data_dir)!r})))\n"
    )
    nb.cells.append(nbformat.v4.new_code_cell(probe))  # type: ignore[no-untyped-call]
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    notes: list[str] = []
    try:
        client.execute()
    except Exception as exc:
        reason = f"your notebook did not finish: {type(exc).__name__}: {exc}".splitlines()[0]
        return [
            {"check": c["id"], "what": c.get("what", c["id"]), "ok": False, "message": reason}
            for c in checks
        ], notes
    for index, cell in enumerate(nb.cells[:-1], start=1):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                notes.append(f"cell {index} raised {out.get('ename')}: {out.get('evalue')}")
    for out in nb.cells[-1].get("outputs", []):
        text = out.get("text", "")
        for line in text.splitlines():
            if line.startswith(MARK):
                return list(json.loads(line[len(MARK) :])), notes
    outputs: list[dict[str, Any]] = nb.cells[-1].get("outputs", [])
    error: dict[str, Any] = next((o for o in outputs if o.get("output_type") == "error"), {})
    reason = (
        f"the self-check could not run in your kernel: {error.get('ename')}: {error.get('evalue')}"
    )
    return [
        {"check": c["id"], "what": c.get("what", c["id"]), "ok": False, "message": reason}
        for c in checks
    ], notes


def main(argv: list[str] | None = None) -> int:
    """Run the public checks on the student's folder; 0 when every one passes."""
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="Public self-check of your assignment.")
    parser.add_argument(
        "folder", nargs="?", type=Path, default=here, help="your assignment folder (default: here)"
    )
    parser.add_argument(
        "--timeout",
        type=int,
        default=None,
        help="seconds a notebook cell may run (default: the assignment's time for the "
        "whole notebook, so a slow machine is not failed)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the verdicts to this JSON file"
    )
    args = parser.parse_args(argv)
    folder = args.folder.resolve()
    data_dir = here / DATA_DIR
    spec = json.loads((data_dir / "checks.json").read_text(encoding="utf-8"))
    timeout = args.timeout or int(spec["notebook_timeout"])
    # A module's import and calls get the grader's limits, three times over (another
    # machine may be slower); --timeout sets them all.
    TimeLimit.seconds = args.timeout or 3 * int(spec["call_timeout"])
    print(f"Self-check of {spec['title']} in {folder}: public checks only.")
    verdicts: list[Verdict] = []
    notes: list[str] = []
    module_checks = [c for c in spec["checks"] if c.get("target") == "module"]
    if module_checks:
        namespace, problem = _module_namespace(folder, spec["module"])
        if problem is not None:
            verdicts += [
                {"check": c["id"], "what": c["what"], "ok": False, "message": problem}
                for c in module_checks
            ]
        else:
            verdicts += run_checks(module_checks, namespace, str(data_dir))
    if spec.get("notebook"):
        notebook = folder / spec["notebook"]
        heading_checks = [c for c in spec["checks"] if c["kind"] == "heading"]
        kernel_checks = [c for c in spec["checks"] if c.get("target") == "notebook"]
        if not notebook.is_file():
            verdicts += [
                {
                    "check": c["id"],
                    "what": c["what"],
                    "ok": False,
                    "message": f"{spec['notebook']} was not found in {folder}",
                }
                for c in heading_checks + kernel_checks
            ]
        else:
            found = _headings(notebook)
            for c in heading_checks:
                pattern = re.compile(c["pattern"], re.IGNORECASE)
                ok = any(pattern.match(h) for h in found)
                verdicts.append(
                    {
                        "check": c["id"],
                        "what": c["what"],
                        "ok": ok,
                        "message": "" if ok else f"no Markdown heading '{c['heading']}'",
                    }
                )
            if kernel_checks:
                got, notes = _run_notebook(
                    folder, spec["notebook"], kernel_checks, data_dir, timeout
                )
                verdicts += got
    for note in notes:
        print(f"  note: {note}")
    for v in verdicts:
        line = f"{'PASS' if v['ok'] else 'FAIL'}  {v['check']}: {v['what']}"
        print(line + ("" if v["ok"] else f"\n        {v['message']}"))
    if args.json is not None:
        args.json.write_text(json.dumps(verdicts, indent=1), encoding="utf-8")
    failed = sum(1 for v in verdicts if not v["ok"])
    print(
        f"\n{len(verdicts) - failed} of {len(verdicts)} public checks passed"
        f"{'' if not failed else f', {failed} failed'}."
    )
    print(HIDDEN_NOTE)
    return 1 if failed or not verdicts else 0


if __name__ == "__main__":
    sys.exit(main())
