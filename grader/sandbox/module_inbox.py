"""What a module worker reads: its sources, the calls, their arrays, in an ``inbox``.

The worker (:mod:`grader.harness.worker`) and the shared encoder are written as source
text into a directory the sandbox can read (it binds nothing of the grader's tree), with
the calls as JSON and their array arguments as ``.npy`` files (never pickles).
:data:`BOOTSTRAP` is the ``python -c`` program that loads them.
"""

from __future__ import annotations

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


def encode_arg(value: Any, inbox: Path, counter: list[int]) -> Any:
    """An argument as the worker's JSON tree; arrays become ``.npy`` files in ``inbox``."""
    if isinstance(value, Stored):
        return {"__stored__": [value.key, value.index]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise TypeError(f"cannot send an array of dtype {value.dtype} to the worker")
        fname = f"a{counter[0]}.npy"
        counter[0] += 1
        with (inbox / fname).open("wb") as fh:
            np.save(fh, np.ascontiguousarray(value), allow_pickle=False)
        os.chmod(inbox / fname, 0o644)
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


def write_inbox(
    inbox: Path, module_file: str, calls: Sequence[Call], limits: ExecutionLimits
) -> None:
    """The worker's sources, the calls and their arrays, readable by the sandbox uid.

    ``module_file``: the module's path relative to the worker's cwd; it is imported under
    its file name's stem.
    """
    inbox.mkdir(parents=True, exist_ok=True)
    os.chmod(inbox, 0o755)
    counter = [0]
    config = {
        "module": module_file,
        "module_name": Path(module_file).stem,
        "import_timeout": limits.import_timeout,
        "call_timeout": limits.call_timeout,
        "max_bytes": limits.max_call_bytes,
        "calls": [
            {
                "id": c.id,
                "function": c.function,
                "args": [encode_arg(a, inbox, counter) for a in c.args],
                "kwargs": {str(k): encode_arg(v, inbox, counter) for k, v in c.kwargs.items()},
                "store": c.store,
                "return_args": list(c.return_args),
                "seed": c.seed,
                "record_structure": c.record_structure,
            }
            for c in calls
        ],
    }
    for name, text in (
        ("encoding.py", _ENCODING_SOURCE),
        ("recorders.py", _RECORDERS_SOURCE),
        ("worker.py", _WORKER_SOURCE),
        ("calls.json", json.dumps(config)),
    ):
        (inbox / name).write_text(text, encoding="utf-8")
        os.chmod(inbox / name, 0o644)
