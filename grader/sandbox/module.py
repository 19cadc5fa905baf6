"""Import a student's module in a sandboxed worker process and call its functions.

The grader half of :mod:`grader.harness.worker`. The worker reads its sources and the
list of calls from an ``inbox`` (:mod:`grader.sandbox.module_inbox`), and each call's
inputs from there too, written just before that call (the grader then says "make call
i" on a named pipe) and removed after it; its outbox is decoded here as untrusted data
with :mod:`grader.answers` (:func:`read_call`, which a notebook's calls share).

Time limits: the import has ``import_timeout`` (a module that trains at import is
stopped with a message saying so) and each call ``call_timeout``. The worker
interrupts a slow call itself and goes on; when it does not report within the limit plus
a grace period (a loop in C, a student who catches the interrupt) the grader kills it and
starts a new worker for the calls left, after marking the other calls of the function
that hung "not run" (all-or-nothing grading needs no more of them). The values the
new worker needs from earlier calls (a forward's cache) are recomputed by running those
calls again. After ``max_restarts`` new workers, or past ``module_timeout``, the calls
left are "not run".
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast, get_args

from grader.answers import DamagedOutput, decode_value, read_json_file
from grader.harness.recorders import clean_record
from grader.harness.worker import CALL_FILE, result_name
from grader.models import Call, CallResult, CallStatus, ModuleRun, Stored
from grader.sandbox.kernel_client import Launcher, describe_exit
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.module_inbox import BOOTSTRAP, CallInbox, write_inbox

_STATUSES: frozenset[str] = frozenset(get_args(CallStatus))
_GRACE_S = 2.0  # after a limit, how long the worker may take to report it itself
_MAX_MESSAGE_CHARS = 4000
_MAX_TRACEBACK_CHARS = 5000


class _Proc:
    """One worker process and the progress lines it writes."""

    def __init__(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        self.fd = self.proc.stdout.fileno()
        self.buffer = b""
        self.eof = False

    def next_line(self, deadline: float) -> str | None:
        """The next progress line; None at EOF or when ``deadline`` passes."""
        while b"\n" not in self.buffer:
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
                continue
            self.buffer += chunk
            if len(self.buffer) > 2**20:  # nobody writes that much progress honestly
                self.buffer = self.buffer[-4096:]
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode("ascii", "replace").strip()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.reap()

    def reap(self) -> None:
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                self.proc.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def how_it_ended(self) -> str:
        code = self.proc.poll()
        if code is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.proc.wait(timeout=2)
        return describe_exit("the worker process", code)


def run_module(
    module: Path,
    workdir: Path,
    outbox: Path,
    inbox: Path,
    calls: Sequence[Call],
    limits: ExecutionLimits | None = None,
    launcher: Launcher | None = None,
    env: Mapping[str, str] | None = None,
    limit_hit: Callable[[], str | None] = lambda: None,
) -> ModuleRun:
    """Import ``module`` (a file in ``workdir``, the worker's cwd, or in a sub-folder of
    it) and run ``calls``.

    ``inbox`` is made here, a directory the worker can read (it must not exist); each
    call's inputs are written into it just before the call and removed after it.
    ``outbox`` must be an empty directory the worker can write. Every failure of the
    student's code is reported in the returned :class:`ModuleRun`; nothing here waits
    without a deadline.
    """
    started = time.monotonic()
    limits = limits or ExecutionLimits()
    ids = [c.id for c in calls]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"call id {dup!r} is used twice")
    # Relative to the worker's cwd: a module found in a sub-folder (an unzipped archive)
    # is imported from there, under its own name, with its folder on sys.path.
    box = CallInbox(inbox)
    try:
        fifo = write_inbox(box, module.relative_to(workdir).as_posix(), calls, limits)
        try:
            run = _Run(module.name, workdir, outbox, box, fifo, calls, limits, launcher, env)
            run.limit_hit = limit_hit
            run.go()
        finally:
            os.close(fifo)
    finally:
        box.close()
    results = {c.id: run.results.get(i) or _not_run(c, run.left_why) for i, c in enumerate(calls)}
    return ModuleRun(
        module=module.name,
        import_error=run.import_error,
        results=results,
        duration_s=round(time.monotonic() - started, 3),
        warnings=tuple(run.warnings),
    )


def _not_run(call: Call, why: str) -> CallResult:
    return CallResult(id=call.id, status="not_run", message=f"not run: {why}")


class _Run:
    def __init__(
        self,
        module_file: str,
        workdir: Path,
        outbox: Path,
        box: CallInbox,
        fifo: int,
        calls: Sequence[Call],
        limits: ExecutionLimits,
        launcher: Launcher | None,
        env: Mapping[str, str] | None,
    ) -> None:
        self.module_file = module_file
        self.workdir = workdir
        self.outbox = outbox
        self.box = box
        self.fifo = fifo  # the grader's end of the worker's "next call" pipe
        self.inbox = box.path
        self.calls = calls
        self.limits = limits
        self.launcher: Launcher = launcher or (lambda argv: argv)
        self.env = dict(env) if env is not None else _plain_env()
        self.limit_hit: Callable[[], str | None] = lambda: None
        self.results: dict[int, CallResult] = {}
        self.import_error: str | None = None
        self.warnings: list[str] = []
        self.left_why = "the module's calls ended early"
        self.deadline = time.monotonic() + limits.module_timeout

    def go(self) -> None:
        pending = list(range(len(self.calls)))
        restarts = 0
        while pending:
            pending = self._worker(pending)
            if not pending:
                return
            if self.import_error is not None:
                self.left_why = f"{self.module_file} could not be imported"
                return
            if time.monotonic() >= self.deadline:
                self.left_why = (
                    f"the calls of {self.module_file} may take at most "
                    f"{self.limits.module_timeout:g} s in all"
                )
                self.warnings.append(self.left_why)
                return
            if restarts >= self.limits.max_restarts:
                self.left_why = (
                    f"the worker running {self.module_file} was stopped "
                    f"{restarts + 1} times, so the grader gave up on the remaining calls"
                )
                self.warnings.append(self.left_why)
                return
            restarts += 1

    def _needed(self, pending: list[int]) -> list[int]:
        return needed_calls(self.calls, pending, self.results)

    def _worker(self, pending: list[int]) -> list[int]:
        """Start one worker on ``pending``; the indices still to run when it stopped."""
        run = self._needed(pending)
        argv = self.launcher(
            [
                sys.executable,
                "-s",
                "-P",
                "-c",
                BOOTSTRAP,
                str(self.inbox),
                str(self.outbox),
                json.dumps(run),
            ]
        )
        with contextlib.suppress(BlockingIOError):  # what an earlier worker left unread
            while os.read(self.fifo, 4096):
                pass
        proc = _Proc(argv, self.workdir, self.env)
        try:
            return self._drive(proc, run, pending)
        finally:
            proc.kill()
            self.box.clear()

    def _send(self, index: int) -> None:
        """Write call ``index``'s inputs into the inbox and tell the worker to make it."""
        self.box.clear()
        self.box.put_text(CALL_FILE, self.box.write(self.calls[index], {}), call_file=True)
        os.write(self.fifo, f"{index}\n".encode("ascii"))

    def _drive(self, proc: _Proc, run: list[int], pending: list[int]) -> list[int]:
        lim = self.limits
        deadline = min(
            self.deadline, time.monotonic() + lim.worker_start_timeout + lim.import_timeout
        )
        line = proc.next_line(deadline)
        if line != "import":
            if line is None and not proc.eof:
                self.import_error = (
                    f"importing {self.module_file} took longer than {lim.import_timeout:g} s: "
                    "does it train at import?"
                )
            else:
                self.import_error = self._import_record() or (
                    f"{proc.how_it_ended()} while importing {self.module_file}"
                    + self._limit_words()
                )
            return pending
        problem = self._import_record()
        if problem is not None:
            self.import_error = problem
            return pending
        left = list(pending)
        for index in run:
            call = self.calls[index]
            self._send(index)
            deadline = min(self.deadline, time.monotonic() + lim.call_timeout + _GRACE_S)
            line = proc.next_line(deadline)
            self.box.clear()
            if line == str(index):
                self.results[index] = self._read_call(index, call)
                if index in left:
                    left.remove(index)
                continue
            # The worker hung, died or wrote nonsense: this call failed, the rest wait.
            if line is None and not proc.eof:
                if time.monotonic() >= self.deadline:
                    return left
                status: CallStatus = "timeout"
                message = (
                    f"{call.function} did not finish within {lim.call_timeout:g} s and "
                    "could not be interrupted, so its worker was stopped"
                )
            elif line is not None:
                status = "error"
                message = (
                    f"the grader lost track of the worker while {call.function} was running "
                    f"(it reported {line[:40]!r})"
                )
            else:
                proc.kill()
                status = "error"
                message = (
                    f"{proc.how_it_ended()} while {call.function} was running" + self._limit_words()
                )
            self.results[index] = CallResult(id=call.id, status=status, message=message)
            if index in left:
                left.remove(index)
            if status == "timeout":
                for j in list(left):
                    if self.calls[j].function == call.function:
                        left.remove(j)
                        self.results[j] = CallResult(
                            id=self.calls[j].id,
                            status="not_run",
                            message=f"not run: an earlier call of {call.function} did not "
                            f"finish within {lim.call_timeout:g} s",
                        )
            return left
        return left

    def _limit_words(self) -> str:
        hit = self.limit_hit()
        return f" (it hit {hit})" if hit else ""

    def _import_record(self) -> str | None:
        """The import's failure message from ``import.json``, None when it succeeded."""
        try:
            record, _ = read_json_file(self.outbox, "import.json", 2**20)
        except FileNotFoundError:
            return None
        except DamagedOutput as exc:
            return f"the grader could not read how importing {self.module_file} went: {exc}"
        if type(record) is not dict or record.get("status") not in ("ok", "error", "timeout"):
            return f"the grader could not read how importing {self.module_file} went"
        if record["status"] == "ok":
            return None
        message = record.get("message")
        return _cut(message if type(message) is str else "", _MAX_MESSAGE_CHARS) or (
            f"{self.module_file} could not be imported"
        )

    def _read_call(self, index: int, call: Call) -> CallResult:
        return read_call(self.outbox, index, call, self.limits.max_call_bytes)


def needed_calls(
    calls: Sequence[Call], pending: Sequence[int], results: Mapping[int, CallResult]
) -> list[int]:
    """``pending`` plus the earlier calls whose stored values they need (a forward whose
    cache a backward takes), in order: what a new worker or a restarted kernel must run
    again to have those values. Only earlier calls that succeeded are run again."""
    storer = {c.store: i for i, c in reversed(list(enumerate(calls))) if c.store}
    need = set(pending)
    for i in pending:
        call = calls[i]
        for arg in (*call.args, *call.kwargs.values()):
            if isinstance(arg, Stored) and arg.key in storer:
                j = storer[arg.key]
                done = results.get(j)
                if j < i and done is not None and done.status == "ok":
                    need.add(j)
    return sorted(need)


def read_call(outbox: Path, index: int, call: Call, max_bytes: int) -> CallResult:
    """Decode call ``index``'s record from ``outbox`` (the module worker's or a notebook
    kernel's); damage of any kind is an error result, never a raise."""
    try:
        return _decode_call(outbox, index, call, max_bytes)
    except FileNotFoundError:
        why = "the sandbox wrote no result"
    except DamagedOutput as exc:
        why = str(exc)
    except (RecursionError, ValueError, TypeError, KeyError, OSError) as exc:
        why = f"{type(exc).__name__}: {exc}"
    return CallResult(
        id=call.id,
        status="error",
        message=f"the grader could not read back what {call.function} returned: {why}",
    )


def _decode_call(outbox: Path, index: int, call: Call, max_bytes: int) -> CallResult:
    record, budget = read_json_file(outbox, result_name(index), max_bytes)
    if type(record) is not dict:
        raise DamagedOutput("the result file does not hold a JSON object")
    status = record.get("status")
    if status not in _STATUSES or record.get("id") != call.id:
        raise DamagedOutput(f"unexpected status {status!r} or id")
    message, tb = record.get("message", ""), record.get("traceback", "")
    if type(message) is not str or type(tb) is not str:
        raise DamagedOutput("bad message or traceback")
    mutated = record.get("mutated", [])
    if type(mutated) is not list or any(
        type(m) is not int or not 0 <= m < len(call.args) for m in mutated
    ):
        raise DamagedOutput("bad list of mutated arguments")
    value: Any = None
    after: dict[int, Any] = {}
    if status == "ok":
        value, budget = decode_value(outbox, record.get("value"), budget)
        raw_after = record.get("args_after", {})
        if type(raw_after) is not dict:
            raise DamagedOutput("bad args_after")
        for key, node in raw_after.items():
            if not key.isdigit() or int(key) not in call.return_args:
                raise DamagedOutput(f"unexpected argument {key!r} in args_after")
            after[int(key)], budget = decode_value(outbox, node, budget)
    return CallResult(
        id=call.id,
        status=cast(CallStatus, status),
        value=value,
        args_after=after,
        mutated=tuple(sorted(set(mutated))),
        message=_cut(message, _MAX_MESSAGE_CHARS),
        traceback=_cut(tb, _MAX_TRACEBACK_CHARS),
        structure=clean_record(record.get("structure")),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... (cut)"


def _plain_env() -> dict[str, str]:
    """A minimal environment for an unsandboxed worker (tests, ``--sandbox=off``)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "MPLBACKEND": "Agg",
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
