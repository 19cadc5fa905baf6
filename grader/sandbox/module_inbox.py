"""What the sandbox reads to make calls: a module worker's sources and calls, and each
call's arguments, written one call at a time (:class:`CallInbox`, also a notebook
kernel's).

The worker (:mod:`grader.harness.worker`) and the shared encoder are written as source
text into a directory the sandbox can read (it binds nothing of the grader's tree), with
the calls as JSON and their array arguments as ``.npy`` files (never pickles).
:data:`BOOTSTRAP` is the ``python -c`` program that loads them.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grader.harness import encoding as _encoding
from grader.harness import recorders as _recorders
from grader.harness import worker as _worker
from grader.harness.worker import NEXT_FIFO
from grader.models import Call, Stored
from grader.sandbox.limits import ExecutionLimits

_ENCODING_SOURCE = Path(_encoding.__file__).read_text(encoding="utf-8")
_WORKER_SOURCE = Path(_worker.__file__).read_text(encoding="utf-8")
_RECORDERS_SOURCE = Path(_recorders.__file__).read_text(encoding="utf-8")
# ``python -c`` puts nothing on sys.path; the inbox is argv[1].
BOOTSTRAP = """
import sys
def _load(name, fname):
    mod = type(sys)(name)
    mod.__file__ = "<grader " + fname + ">"
    sys.modules[name] = mod
    with open(sys.argv[1] + "/" + fname, encoding="utf-8") as fh:
        code = compile(fh.read(), "<grader " + fname + ">", "exec")
    exec(code, mod.__dict__)
    return mod
_load("__grader_encoding__", "encoding.py")
_load("__grader_recorders__", "recorders.py")
_load("__grader_worker__", "worker.py").main(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def encode_arg(value: Any, inbox: Path | int, counter: list[int]) -> Any:
    """An argument as the worker's JSON tree; arrays become ``.npy`` files in ``inbox``
    (a path, or an open directory descriptor: see :class:`CallInbox`)."""
    if isinstance(value, Stored):
        return {"__stored__": [value.key, value.index]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot send an array of dtype {value.dtype} to the worker")
        fname = f"a{counter[0]}.npy"
        counter[0] += 1
        if isinstance(inbox, int):
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fh = os.fdopen(os.open(fname, flags, 0o644, dir_fd=inbox), "wb")
        else:
            fh = (inbox / fname).open("wb")
        with fh:
            np.save(fh, np.ascontiguousarray(value), allow_pickle=False)
            os.fchmod(fh.fileno(), 0o644)
        return {"__ndarray__": fname}
    if isinstance(value, np.generic):
        return encode_arg(value.item(), inbox, counter)
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode_arg(v, inbox, counter) for v in value]}
    if isinstance(value, list):
        return [encode_arg(v, inbox, counter) for v in value]
    if isinstance(value, Mapping):
        out = {str(k): encode_arg(v, inbox, counter) for k, v in value.items()}
        if len(out) == 1 and next(iter(out)) in {
            "__ndarray__",
            "__float__",
            "__dict__",
            "__tuple__",
            "__stored__",
        }:
            return {"__dict__": out}
        return out
    raise TypeError(f"cannot send a {type(value).__name__} to the worker")


def encode_call(call: Call, inbox: Path | int, counter: list[int]) -> dict[str, Any]:
    """One call as the worker reads it (:class:`grader.harness.worker.Caller`), its
    arrays written into ``inbox``."""
    return {
        "id": call.id,
        "function": call.function,
        "args": [encode_arg(a, inbox, counter) for a in call.args],
        "kwargs": {str(k): encode_arg(v, inbox, counter) for k, v in call.kwargs.items()},
        "store": call.store,
        "return_args": list(call.return_args),
        "seed": call.seed,
        "record_structure": call.record_structure,
    }


class CallInbox:
    """The folder the sandbox reads one call's arguments from: a notebook's kernel's, or
    a module worker's (which also holds the worker's sources and ``calls.json``).

    Made before the sandboxed code starts, owned by the grader and read-only to the
    sandbox. Of the hidden cases it holds the inputs of the call being made and nothing
    else (:meth:`write` removes the previous call's files first, :meth:`clear` after the
    call), so no case is in the sandbox before its call. Files are written through a
    descriptor of the folder opened at creation, never by path: the sandboxed code may
    own the folder's parent (the runtime directory), but whatever it renames or plants
    there, the grader writes only into this folder.
    """

    def __init__(self, path: Path) -> None:
        path.mkdir(mode=0o755, parents=True)
        os.chmod(path, 0o755)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        self.written: list[str] = []  # the current call's files

    def write(self, call: Call, storers: Mapping[str, str]) -> str:
        """Put ``call``'s arrays in the folder; its JSON (with ``storers``: the ids of the
        calls whose stored values it takes), for :func:`~grader.harness.worker.call_in_kernel`
        or :data:`CALL_FILE`."""
        self.clear()
        counter = [0]
        tree = encode_call(call, self.fd, counter)
        self.written = [f"a{i}.npy" for i in range(counter[0])]
        tree["storers"] = dict(storers)
        return json.dumps(tree)

    def put_text(self, name: str, text: str, *, call_file: bool = False) -> None:
        """Write the file ``name`` (replacing it), readable by the sandbox; with
        ``call_file`` it is one of the current call's files, removed by :meth:`clear`."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        with os.fdopen(os.open(name, flags, 0o644, dir_fd=self.fd), "w", encoding="utf-8") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(text)
        if call_file:
            self.written.append(name)

    def make_fifo(self, name: str) -> int:
        """A named pipe ``name`` the sandbox may read, and the grader's end of it (opened
        read-write and non-blocking, so neither side waits for the other to open it)."""
        os.mkfifo(name, 0o600, dir_fd=self.fd)
        os.chmod(name, 0o644, dir_fd=self.fd)
        return os.open(name, os.O_RDWR | os.O_NONBLOCK, dir_fd=self.fd)

    def clear(self) -> None:
        """Remove the current call's files."""
        for name in self.written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=self.fd)
        self.written = []

    def close(self) -> None:
        """Remove the current call's files and close the folder's descriptor."""
        with contextlib.suppress(OSError):
            self.clear()
        os.close(self.fd)


def write_inbox(
    inbox: CallInbox, module_file: str, calls: Sequence[Call], limits: ExecutionLimits
) -> int:
    """The worker's sources and ``calls.json`` (no call's inputs: :meth:`CallInbox.write`
    and :data:`CALL_FILE` give each just before its call), readable by the sandbox uid;
    the grader's end of the :data:`NEXT_FIFO` pipe.

    ``module_file``: the module's path relative to the worker's cwd; it is imported under
    its file name's stem. ``calls.json`` names each call (id, function, store) and none of
    its arguments.
    """
    config = {
        "module": module_file,
        "module_name": Path(module_file).stem,
        "import_timeout": limits.import_timeout,
        "call_timeout": limits.call_timeout,
        "max_bytes": limits.max_call_bytes,
        "calls": [{"id": c.id, "function": c.function, "store": c.store} for c in calls],
    }
    for name, text in (
        ("encoding.py", _ENCODING_SOURCE),
        ("recorders.py", _RECORDERS_SOURCE),
        ("worker.py", _WORKER_SOURCE),
        ("calls.json", json.dumps(config)),
    ):
        inbox.put_text(name, text)
    return inbox.make_fifo(NEXT_FIFO)
