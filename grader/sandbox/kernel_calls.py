"""Call the functions a notebook defines, in its own kernel, after its last cell.

The grader half of :func:`grader.harness.worker.call_in_kernel`: the same call machinery
as the module worker (arguments, ``store``, ``return_args``, in-place mutation, seeds, the
per-call time limit, the record read back as untrusted data by
:func:`grader.sandbox.module.read_call`), run against the notebook's globals.

Hidden cases enter the sandbox one call at a time: each call's arguments are written to
the kernel's :class:`~grader.sandbox.module_inbox.CallInbox` just before the call and
removed after it; expected values never enter.

A call the kernel's own ``SIGALRM`` cannot stop (a loop in C, a student catching the
interrupt) is given ``call_timeout`` plus a grace period, then the kernel is killed; a
call that kills the kernel (``os._exit``, a segfault, the memory limit) ends it too.
Either way the other calls of that function are "not run", the kernel is started again,
the notebook's cells run once more (no harvest), and the remaining calls go on (with the
earlier calls whose stored values they need, run again). A second stop costs the
remaining calls only: they are "not run", saying why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from grader.harness.worker import result_stem
from grader.models import Call, CallResult, CallStatus, Stored
from grader.sandbox.cells import KernelDied, Runner, RunState
from grader.sandbox.errors import KernelStartError
from grader.sandbox.kernel_client import WORKER_MODULE
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.module import needed_calls, read_call
from grader.sandbox.module_inbox import CallInbox
from grader.sandbox.nbfile import Cell, assigns

_GRACE_S = 2.0  # after a call's limit, how long the kernel may take to report it itself
MAX_KERNEL_STOPS = 2  # the second stop of a kernel during the calls ends them

Restart = Callable[[], Awaitable[tuple[Runner, RunState]]]
"""Starts a new kernel and runs the notebook's cells in it (no harvest): the runner, its
kernel still up, and what happened to the cells."""


class KernelCalls:
    """The calls of one notebook, made in its kernel (and, after a stop, in a new one)."""

    def __init__(
        self,
        calls: Sequence[Call],
        notebook: str,
        inbox: CallInbox,
        outbox: Path,
        limits: ExecutionLimits,
        restart: Restart,
        limit_hit: Callable[[], str | None] = lambda: None,
    ) -> None:
        ids = [c.id for c in calls]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"call id {dup!r} is used twice")
        self.calls = list(calls)
        self.notebook = notebook
        self.inbox = inbox
        self.outbox = outbox
        self.limits = limits
        self.restart = restart
        self.limit_hit = limit_hit
        self.results: dict[int, CallResult] = {}
        self.warnings: list[str] = []
        self.stops: list[str] = []  # why each kernel stopped during the calls
        self.deadline = time.monotonic() + limits.module_timeout
        self.storer = {c.store: c.id for c in reversed(self.calls) if c.store}

    async def make(self, first: Runner) -> dict[str, CallResult]:
        """Make every call, starting in ``first`` (whose notebook ran, kernel alive),
        restarting as the module docstring says. The caller stops ``first``; kernels
        started here are stopped here. Every call gets a result."""
        pending = list(range(len(self.calls)))
        runner: Runner | None = first
        try:
            while pending:
                if runner is None:
                    runner = await self._fresh_kernel(pending)
                    if runner is None:
                        break
                pending = await self._calls(runner, pending)
                if pending:
                    if runner is not first:
                        await runner.stop()
                    runner = None
                    if len(self.stops) >= MAX_KERNEL_STOPS or self._past_deadline(pending):
                        if len(self.stops) >= MAX_KERNEL_STOPS:
                            self._give_up(
                                pending,
                                "the kernel stopped twice while the notebook's functions "
                                f"were called ({' and '.join(self.stops)}), so the grader "
                                "gave up on the remaining calls",
                            )
                        break
        finally:
            if runner is not None and runner is not first:
                await runner.stop()
            with contextlib.suppress(OSError):
                self.inbox.clear()
        return {c.id: self.results[i] for i, c in enumerate(self.calls)}

    # ---------------------------------------------------------------- kernels

    async def _fresh_kernel(self, pending: list[int]) -> Runner | None:
        """A new kernel that ran the notebook again, or None (the calls left marked)."""
        try:
            runner, state = await self.restart()
        except KernelStartError as exc:
            self._give_up(pending, f"the kernel could not be started again ({exc})")
            return None
        if not state.alive:
            await runner.stop()
            self._give_up(
                pending,
                f"after {self.stops[-1]}, the notebook was run again in a new kernel, "
                "which stopped before the notebook's end",
            )
            return None
        return runner

    def _past_deadline(self, pending: list[int]) -> bool:
        if time.monotonic() < self.deadline:
            return False
        why = (
            f"the calls of the notebook's functions may take at most "
            f"{self.limits.module_timeout:g} s in all"
        )
        self._give_up(pending, why)
        return True

    def _give_up(self, pending: list[int], why: str) -> None:
        self.warnings.append(why)
        for i in pending:
            self.results.setdefault(i, _not_run(self.calls[i], why))

    # ---------------------------------------------------------------- calls

    async def _calls(self, runner: Runner, pending: list[int]) -> list[int]:
        """Make ``pending`` (and the earlier calls they need) in ``runner``'s kernel; the
        indices still to make when the kernel stopped (empty: all made)."""
        left = list(pending)
        for index in needed_calls(self.calls, pending, self.results):
            if self._past_deadline(left):
                return []
            call = self.calls[index]
            outcome = await self._call(runner, index, call)
            rerun = index not in left  # a stored value needed again: keep the first result
            if outcome is None:
                if not rerun:
                    self.results[index] = read_call(
                        self.outbox, index, call, self.limits.max_call_bytes
                    )
                    left.remove(index)
                self._remove_record(index)  # read: free the outbox's quota for the others
                continue
            status, message = outcome
            if status == "error_in_harness":
                if not rerun:
                    self.results[index] = CallResult(call.id, "error", message=message)
                    left.remove(index)
                continue
            # The kernel stopped: this call failed, the rest wait for a new kernel.
            result_status: CallStatus = "timeout" if status == "timeout" else "error"
            if not rerun:
                self.results[index] = CallResult(call.id, result_status, message=message)
                left.remove(index)
            # All-or-nothing grading needs no more of that function, and each of its
            # calls might cost a new kernel and a run of the notebook.
            if status == "timeout":
                why = f"did not finish within {self.limits.call_timeout:g} s"
            else:
                why = "stopped the kernel"
            for j in list(left):
                if self.calls[j].function == call.function:
                    left.remove(j)
                    self.results[j] = _not_run(
                        self.calls[j], f"an earlier call of {call.function} {why}"
                    )
            self.stops.append(
                f"{call.function} did not finish"
                if status == "timeout"
                else f"the kernel died in {call.function}"
            )
            return left
        return []

    def _remove_record(self, index: int) -> None:
        """Remove call ``index``'s files from the outbox (its record and arrays)."""
        stem = result_stem(index)
        for path in (*self.outbox.glob(f"{stem}.*"), *self.outbox.glob(f".{stem}.*")):
            with contextlib.suppress(OSError):
                path.unlink()

    async def _call(self, runner: Runner, index: int, call: Call) -> tuple[str, str] | None:
        """Make one call; None when the kernel wrote its record, else ``(what, message)``:
        ``timeout`` or ``died`` (the kernel is gone), ``error_in_harness``."""
        self._remove_record(index)  # nothing the student's code left there is read
        storers = {
            arg.key: self.storer[arg.key]
            for arg in (*call.args, *call.kwargs.values())
            if isinstance(arg, Stored) and arg.key in self.storer
        }
        lim = self.limits
        try:
            call_json = self.inbox.write(call, storers)
        except (TypeError, OSError) as exc:
            return "error_in_harness", f"the grader could not send {call.function}'s inputs: {exc}"
        code = (
            f"__import__('sys').modules[{WORKER_MODULE!r}].call_in_kernel(globals(), "
            f"{str(self.inbox.path)!r}, {str(self.outbox)!r}, {index}, {call_json!r}, "
            f"{self.notebook!r}, {lim.call_timeout!r}, {lim.max_call_bytes!r})"
        )
        wait = min(lim.call_timeout + _GRACE_S, max(0.0, self.deadline - time.monotonic()))
        try:
            reply = await runner.silent(code, wait)
        except KernelDied:
            hit = self.limit_hit()
            how = f"it hit {hit}" if hit else runner.exit_description()
            return "died", f"{call.function} stopped the kernel ({how})"
        finally:
            with contextlib.suppress(OSError):
                self.inbox.clear()
        if reply is None:
            await runner.kill()
            return "timeout", (
                f"{call.function} did not finish within {lim.call_timeout:g} s and could not "
                "be interrupted, so its kernel was stopped"
            )
        content = reply.get("content", {})
        if content.get("status") != "ok":
            what = f"{str(content.get('ename', ''))[:200]}: {str(content.get('evalue', ''))[:500]}"
            return "error_in_harness", (
                f"the grader could not call {call.function} in the notebook's kernel ({what})"
            )
        return None


def _not_run(call: Call, why: str) -> CallResult:
    return CallResult(id=call.id, status="not_run", message=f"not run: {why}")


def not_made(calls: Sequence[Call], why: str) -> dict[str, CallResult]:
    """Every call "not run", saying ``why`` (the notebook's kernel stopped before its end)."""
    return {c.id: _not_run(c, why) for c in calls}


def explain_missing(
    results: dict[str, CallResult],
    calls: Sequence[Call],
    code: Sequence[Cell],
    fates: dict[int, str],
) -> dict[str, CallResult]:
    """A function "not defined in hw5.ipynb" that a cell defines: say which cell, and
    what became of it (``fates``: the reason by cell position, "which raised …")."""
    by_id = {c.id: c for c in calls}
    out = dict(results)
    for cid, res in results.items():
        if res.status != "missing_function" or " is not defined in " not in res.message:
            continue
        name = by_id[cid].function
        cells = [c.position for c in code if assigns(c.source, name)]
        for position in cells:
            if position in fates:
                out[cid] = CallResult(
                    id=cid,
                    status="missing_function",
                    message=f"{res.message}: it is defined in cell {position}, {fates[position]}",
                )
                break
    return out
