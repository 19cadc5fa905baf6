"""Is this machine ready to run student code: what the sandbox cannot protect, one kernel."""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.sandbox.errors import KernelStartError, SandboxError, SandboxUnavailable
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.protections import detect_protections
from grader.sandbox.records import Mode
from grader.sandbox.stages import notebook_in_session

_SETUP_HINT = "run ./setup.sh as root, or pass --sandbox=permissive to grade with less protection"


def sandbox_warnings(mode: Mode) -> tuple[str, ...]:
    """What the sandbox cannot protect here, in words, for the console and every result.

    Raises :class:`SandboxUnavailable` when ``mode`` is strict and something is missing.
    """
    if mode == "off":
        return ("the sandbox is off (--sandbox=off): student code ran with the grader's rights",)
    missing = detect_protections().missing()
    if missing and mode == "strict":
        raise SandboxUnavailable(missing, hint=_SETUP_HINT)
    return tuple(f"sandbox protection off: {m}" for m in missing)


def preflight(mode: Mode, limits: ExecutionLimits | None = None) -> None:
    """Start one sandboxed kernel on a one-cell notebook before a batch.

    When no kernel can start here (a broken install, a sandbox that cannot bind the
    interpreter), every student would get the same useless result: raise
    :class:`~grader.errors.SandboxError` instead. ``limits``: the batch's (its memory and
    process limits apply to this kernel too). The kernel starts cold: a warm template
    belongs to a grading worker thread.
    """
    import nbformat

    limits = limits or ExecutionLimits()
    with tempfile.TemporaryDirectory(prefix="grade-preflight-") as tmp:
        work, outbox = Path(tmp) / "work", Path(tmp) / "outbox"
        work.mkdir()
        outbox.mkdir()
        notebook = work / "preflight.ipynb"
        nb = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
        nb.cells = [nbformat.v4.new_code_cell("pass")]  # type: ignore[no-untyped-call]
        nbformat.write(nb, notebook)  # type: ignore[no-untyped-call]
        try:
            run, _ = notebook_in_session(notebook, work, outbox, (), limits, mode, warm=False)
        except (KernelStartError, SandboxUnavailable, OSError) as exc:
            raise SandboxError(f"cannot start a sandboxed Python kernel here: {exc}") from exc
        if run.execution.failures:
            failure = run.execution.failures[0]
            raise SandboxError(
                f"a sandboxed kernel could not run an empty cell: {failure.ename}: {failure.evalue}"
            )
