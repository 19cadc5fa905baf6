"""The module worker: imports a student's module inside the sandbox and calls its functions.

The call machinery (:class:`Caller`: arguments, ``store``, ``return_args``, in-place
mutation, seeds, the time limit, the record written back) serves both the module worker
and the functions a notebook defines: the notebook runner loads this file into the
student's kernel too (as ``__grader_worker__``) and makes each call there with
:func:`call_in_kernel`, after the notebook's last cell.

This file runs INSIDE the sandbox as a plain Python process. It never imports
``grader``: the grader (:mod:`grader.sandbox.module`) writes this file and
:mod:`grader.harness.encoding` as source text into the inbox directory, and a short
bootstrap executes the encoder into a module named ``__grader_encoding__`` and then this
file, calling :func:`main`.

Inbox (written by the grader, read-only here):

* ``calls.json``: ``{"module": "layers.py", "import_timeout": s, "call_timeout": s,
  "max_bytes": n, "calls": [{"id", "function", "store"}, ...]}``: which calls there are,
  none of their inputs;
* ``next``: a named pipe on which the grader writes ``<i>`` when call ``i``'s inputs are
  in ``call.json`` (``{"id", "function", "args", "kwargs", "store", "return_args",
  "seed", "storers"}``) and its arrays beside it; it removes them after the call, so a
  hidden case is in the sandbox only during its own call. Argument trees use the tags
  of the encoder plus
  ``{"__tuple__": [...]}``, ``{"__stored__": [key, index]}`` and
  ``{"__torch_model__": {"layers", "state"}}`` (a small torch model built here from plain
  data, see :func:`_torch_model`); arrays are ``.npy`` files beside it, loaded with
  ``allow_pickle=False``.

Outbox (read back by the grader as untrusted data):

* ``import.json``: ``{"status": "ok" | "error" | "timeout", "message", "traceback"}``;
* ``call-<i>.json`` per call ``i``: ``{"index", "id", "status", "value", "args_after",
  "mutated", "message", "traceback"}``, arrays in ``call-<i>.<n>.npy``.

Progress goes to the grader on a private duplicate of the original stdout, one line per
event (``import`` after ``import.json``, then ``<i>`` after each ``call-<i>.json``); the
student's own output goes to ``/dev/null``. A call that runs too long is interrupted by
``SIGALRM`` (the worker then goes on); one that cannot be interrupted is killed by the
grader, which restarts a worker for the calls left.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.util
import json
import os
import random
import signal
import sys
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from grader.harness import encoding as _encoding
    from grader.harness import recorders as _recorders
else:  # in the sandbox the bootstrap registered it; in the grader (tests) the package
    _encoding = sys.modules.get("__grader_encoding__") or importlib.import_module(
        "grader.harness.encoding"
    )
    _recorders = sys.modules.get("__grader_recorders__") or importlib.import_module(
        "grader.harness.recorders"
    )


# Private references taken before the student's module is imported.
_open = builtins.open
_np_load = np.load
_np_array_equal = np.array_equal
_ndarray = np.ndarray
_path_join = os.path.join
_os_write = os.write
_os_exit = os._exit
_setitimer = signal.setitimer
_extract_tb = traceback.extract_tb
_format_list = traceback.format_list
_format_exception_only = traceback.format_exception_only

WORKER_FILE = "<grader worker>"
MAX_TRACEBACK_CHARS = 4000


def _seed_tensorflow(seed: int) -> None:
    """Seed TensorFlow's global generator (and Keras's) when the student's code imported
    them: never imported here, so a torch-only call pays nothing."""
    keras = sys.modules.get("keras")
    tf = sys.modules.get("tensorflow")
    try:
        if keras is not None and hasattr(keras, "utils"):
            keras.utils.set_random_seed(seed % 2**32)  # random, NumPy, TF/torch, Keras
        elif tf is not None and hasattr(tf, "random"):
            tf.random.set_seed(seed)
    except Exception:
        pass  # a half-imported framework: its generators are not ours to fix


class _TimeLimit(BaseException):
    """Raised by SIGALRM: a BaseException, so a student's ``except Exception`` lets it by."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _TimeLimit


def _student_traceback(exc: BaseException) -> str:
    """The traceback from the first frame outside this worker, trimmed."""
    try:
        frames = [f for f in _extract_tb(exc.__traceback__) if not f.filename.startswith("<grader")]
        text = "Traceback (most recent call last):\n" if frames else ""
        text += "".join(_format_list(frames))
        text += "".join(_format_exception_only(type(exc), exc))
    except Exception:
        return _encoding.describe(exc)
    if len(text) > MAX_TRACEBACK_CHARS:
        text = "...\n" + text[-MAX_TRACEBACK_CHARS:]
    return text


def _where(exc: BaseException, module_file: str) -> str:
    """`` (line N of layers.py)`` for the deepest frame in the student's file."""
    try:
        lines = [
            f.lineno
            for f in _extract_tb(exc.__traceback__)
            if os.path.basename(f.filename) == module_file
        ]
    except Exception:
        return ""
    return f" (line {lines[-1]} of {module_file})" if lines else ""


# Layers a ``{"__torch_model__": …}`` argument may use (plain data in, a module out).
_TORCH_LAYERS = ("Conv2d", "ReLU", "MaxPool2d", "AdaptiveAvgPool2d", "Flatten", "Linear")


def _torch_model(spec: Any) -> Any:
    """A float64 ``torch.nn.Sequential`` in eval mode built from plain data:
    ``{"layers": [[name, kind, kwargs], ...], "state": {parameter name: array}}``.

    Lets a check hand the student's function a small model (HW4's Grad-CAM) while only
    data crosses into the sandbox: the architecture from an allow-list of torch layers,
    the weights as arrays. No grader or reference code is sent.
    """
    from collections import OrderedDict

    try:
        torch = importlib.import_module("torch")
        layers: OrderedDict[str, Any] = OrderedDict()
        for name, kind, kwargs in spec["layers"]:
            if kind not in _TORCH_LAYERS:
                raise ValueError(f"layer type {kind!r} is not allowed in a grader-made model")
            layers[str(name)] = getattr(torch.nn, kind)(**dict(kwargs))
        model = torch.nn.Sequential(layers).double()
        state = {
            k: torch.from_numpy(np.array(v, dtype=np.float64)) for k, v in spec["state"].items()
        }
        model.load_state_dict(state)
        return model.eval()
    except Exception as exc:
        raise _BadModel(_encoding.describe(exc)) from None


class _BadModel(Exception):
    """A ``__torch_model__`` argument could not be built (torch missing, a bad spec)."""

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


class _Inputs:
    """Decodes the grader's argument trees (trusted data) into Python values."""

    def __init__(self, inbox: str, stored: dict[str, object]) -> None:
        self.inbox = inbox
        self.stored = stored

    def decode(self, node: Any) -> Any:
        if type(node) is list:
            return [self.decode(v) for v in node]
        if type(node) is not dict:
            return node
        if len(node) == 1:
            ((key, inner),) = node.items()
            if key == "__ndarray__":
                with _open(_path_join(self.inbox, inner), "rb") as fh:
                    return _np_load(fh, allow_pickle=False)
            if key == "__float__":
                return float(inner)
            if key == "__tuple__":
                return tuple(self.decode(v) for v in inner)
            if key == "__dict__":
                return {k: self.decode(v) for k, v in inner.items()}
            if key == "__stored__":
                return self._stored(inner[0], inner[1])
            if key == "__torch_model__":
                return _torch_model(self.decode(inner))
        return {k: self.decode(v) for k, v in node.items()}

    def _stored(self, key: str, index: int | None) -> object:
        if key not in self.stored:
            raise _NotRun(key)
        value = self.stored[key]
        if index is None:
            return value
        items = _encoding.sequence_items(value)  # named tuples too, never their methods
        if items is None:
            raise _BadStored(key, f"returned a {_encoding.type_name(type(value))}, not a tuple")
        if not -len(items) <= index < len(items):
            raise _BadStored(key, f"returned a tuple of {len(items)} values, not {index + 1}")
        return items[index]


class _NotRun(Exception):
    """A stored value this call needs is not available."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _BadStored(Exception):
    """A stored value has no element ``index`` (the forward returned no tuple)."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key = key
        self.what = what


class Caller:
    """Makes the grader's calls on the functions and classes of one namespace: a student
    module's (the module worker) or a notebook's globals (a kernel, :func:`call_in_kernel`).

    ``where`` names the file the functions come from, for messages; ``kind`` says which of
    the two it is. Values kept by ``store`` stay here between calls (a forward's cache).
    """

    def __init__(
        self,
        namespace: dict[str, Any],
        where: str,
        kind: str,
        inbox: str,
        outbox: str,
        call_timeout: float,
        max_bytes: int,
    ) -> None:
        self.namespace = namespace
        self.where = where
        self.kind = kind  # "module" or "notebook"
        self.inbox = inbox
        self.outbox = outbox
        self.call_timeout = float(call_timeout)
        self.max_bytes = int(max_bytes)
        self.stored: dict[str, object] = {}
        self.failed: dict[str, str] = {}  # store key -> why its call gave no value
        self.storer: dict[str, str] = {}  # store key -> id of the call that stores it

    def run_one(self, index: int, call: dict[str, Any]) -> None:
        """Make call ``index`` and write its record and arrays to the outbox."""
        record, arrays = self.call(index, call)
        _encoding.save_arrays(self.outbox, arrays)
        _encoding.write_json(self.outbox, result_name(index), record)

    def _missing(self, function: str, fn: object) -> str:
        if fn is not None:
            return (
                f"{function} in {self.where} is a {_encoding.type_name(type(fn))}, not a function"
            )
        if self.kind == "notebook":
            return f"{function} is not defined in {self.where}"
        return f"{self.where} defines no function {function}"

    def call(
        self, index: int, call: dict[str, Any]
    ) -> tuple[dict[str, object], list[tuple[str, Any]]]:
        record: dict[str, object] = {
            "index": index,
            "id": call["id"],
            "status": "ok",
            "value": None,
            "args_after": {},
            "mutated": [],
            "message": "",
            "traceback": "",
        }
        function = call["function"]
        store = call.get("store")
        # Which call stores each value this one needs (for messages), when the grader
        # sends the calls one at a time (a kernel) rather than all in calls.json.
        self.storer.update(call.get("storers") or {})
        fn = dict.get(self.namespace, function)
        if fn is None or not callable(fn):
            record["status"] = "missing_function"
            record["message"] = self._missing(function, fn)
            self._failed(store, "is missing")
            return record, []
        inputs = _Inputs(self.inbox, self.stored)
        try:
            args = list(inputs.decode(call["args"]))
            kwargs = inputs.decode(call["kwargs"])
        except _NotRun as exc:
            record["status"] = "not_run"
            why = self.failed.get(exc.key, "gave no value")
            record["message"] = (
                f"not run: it needs what {self.storer.get(exc.key, exc.key)} returned, "
                f"and that call {why}"
            )
            self._failed(store, "was not run")
            return record, []
        except _BadStored as exc:
            record["status"] = "not_run"
            record["message"] = (
                f"not run: it needs the cache of {self.storer.get(exc.key, exc.key)}, "
                f"which {exc.what}"
            )
            self._failed(store, "was not run")
            return record, []
        except _BadModel as exc:
            record["status"] = "error"
            record["message"] = (
                f"not run: the grader's model argument could not be built: {exc.what}"
            )
            self._failed(store, "was not run")
            return record, []
        copies = {pos: arg.copy() for pos, arg in enumerate(args) if type(arg) is _ndarray}
        for pos, node in enumerate(call["args"]):
            if type(node) is dict and "__stored__" in node:
                copies.pop(pos, None)  # the student's own cache: theirs to change
        seed = call.get("seed")
        if seed is not None:
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch = sys.modules.get("torch")
            if torch is not None:
                torch.manual_seed(seed)
            _seed_tensorflow(seed)
        limit = self.call_timeout
        recorder = _recorders.for_call(call.get("record_structure"))
        try:
            try:
                with recorder:
                    value = invoke(fn, args, kwargs, limit)
            finally:
                structure = recorder.record()
                if structure is not None:  # also when the call raised or timed out
                    record["structure"] = structure
        except _TimeLimit:
            record["status"] = "timeout"
            record["message"] = f"{function} did not finish within {limit:g} s and was stopped"
            self._failed(store, f"did not finish within {limit:g} s")
            return record, []
        except BaseException as exc:
            record["status"] = "error"
            record["message"] = (
                f"{function} raised {_encoding.describe(exc)}{_where(exc, self.where)}"
            )
            record["traceback"] = _student_traceback(exc)
            self._failed(store, f"raised {_encoding.type_name(type(exc))}")
            return record, []
        if store:
            self.stored[store] = value
        record["mutated"] = [pos for pos, copy in copies.items() if _changed(copy, args[pos])]
        encoder = _encoding.Encoder(function, self.max_bytes, result_stem(index))
        notes: list[str] = []
        try:
            items = _encoding.sequence_items(value)
            if items is not None:
                parts: list[object] = []
                for k, item in enumerate(items):
                    try:
                        parts.append(encoder.encode(item, f"(…)[{k}]", 1))
                    except _encoding.Reject as rej:
                        parts.append(None)
                        notes.append(rej.message)
                record["value"] = parts
            else:
                record["value"] = encoder.encode(value, "(…)", 0)
            after: dict[str, object] = {}
            for pos in call.get("return_args", []):
                if 0 <= pos < len(args):
                    try:
                        after[str(pos)] = encoder.encode(args[pos], f" argument {pos}", 1)
                    except _encoding.Reject as rej:
                        notes.append(rej.message)
            record["args_after"] = after
            encoder.check_size([record["value"], after])
        except _encoding.Reject as rej:
            record["status"] = "unsupported"
            record["value"] = None
            record["args_after"] = {}
            record["message"] = rej.message
            return record, []
        record["message"] = "; ".join(notes)
        return record, encoder.arrays

    def _failed(self, store: str | None, why: str) -> None:
        if store:
            self.failed[store] = why
            self.stored.pop(store, None)


def invoke(fn: Any, args: list[Any], kwargs: dict[str, Any], limit: float) -> Any:
    """The one place where a student's function is called: under ``limit`` seconds of
    ``SIGALRM`` (a :class:`_TimeLimit` stops it), with the grader-made arguments."""
    _setitimer(signal.ITIMER_REAL, limit)
    try:
        return fn(*args, **kwargs)
    finally:
        _setitimer(signal.ITIMER_REAL, 0)


def result_stem(index: int) -> str:
    """The stem of call ``index``'s files in the outbox (``call-3``: no identifier, so no
    harvested answer's file, ``<name>.json``, can share it)."""
    return f"call-{index}"


#: The inbox file holding the call being made (module worker).
CALL_FILE = "call.json"
#: The inbox's named pipe on which the grader says "make call <i> now" (module worker).
NEXT_FIFO = "next"


def result_name(index: int) -> str:
    """The JSON record of call ``index`` in the outbox."""
    return f"{result_stem(index)}.json"


class Worker:
    """One worker process: import, then the calls the grader listed, in order."""

    def __init__(self, inbox: str, outbox: str, progress_fd: int) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.progress_fd = progress_fd
        with _open(_path_join(inbox, "calls.json"), encoding="utf-8") as fh:
            self.config: dict[str, Any] = json.load(fh)
        self.calls: list[dict[str, Any]] = self.config["calls"]
        self.module_file: str = self.config["module"]
        self.max_bytes = int(self.config["max_bytes"])
        self.module: Any = None

    def progress(self, event: str) -> None:
        _os_write(self.progress_fd, (event + "\n").encode("ascii"))

    # ------------------------------------------------------------------ import

    def import_module(self) -> bool:
        name = self.config.get("module_name") or self.module_file.removesuffix(".py")
        path = os.path.abspath(self.module_file)
        limit = float(self.config["import_timeout"])
        sys.path.append(os.path.dirname(path))  # helpers beside it; never before numpy's
        record: dict[str, object] = {"status": "ok", "message": "", "traceback": ""}
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"{self.module_file} cannot be imported")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            _setitimer(signal.ITIMER_REAL, limit)
            try:
                spec.loader.exec_module(module)
            finally:
                _setitimer(signal.ITIMER_REAL, 0)
            self.module = module
        except _TimeLimit:
            record = {
                "status": "timeout",
                "message": f"importing {self.module_file} took longer than {limit:g} s: "
                "does it train at import?",
                "traceback": "",
            }
        except SyntaxError as exc:
            where = f" on line {exc.lineno}" if exc.lineno else ""
            record = {
                "status": "error",
                "message": f"{self.module_file} has a syntax error{where}: {exc.msg} "
                "(it could not be imported, so none of its functions could be graded)",
                "traceback": _student_traceback(exc),
            }
        except BaseException as exc:
            record = {
                "status": "error",
                "message": f"importing {self.module_file} raised {_encoding.describe(exc)}"
                f"{_where(exc, self.module_file)}; importing it must only define functions",
                "traceback": _student_traceback(exc),
            }
        _encoding.write_json(self.outbox, "import.json", record)
        self.progress("import")
        return record["status"] == "ok"

    # ------------------------------------------------------------------ calls

    def run(self, indices: list[int]) -> None:
        """Make the calls ``indices``, each when the grader says so on the ``next`` pipe,
        from the ``call.json`` it has just written (no call's inputs are here before)."""
        caller = Caller(
            self.module.__dict__,
            self.module_file,
            "module",
            self.inbox,
            self.outbox,
            float(self.config["call_timeout"]),
            self.max_bytes,
        )
        caller.storer.update({c["store"]: c["id"] for c in reversed(self.calls) if c.get("store")})
        with _open(_path_join(self.inbox, NEXT_FIFO), "rb", buffering=0) as nxt:
            for index in indices:
                if nxt.readline().strip() != str(index).encode("ascii"):
                    return  # the grader lost track of this worker: it reports the rest
                with _open(_path_join(self.inbox, CALL_FILE), encoding="utf-8") as fh:
                    call = json.load(fh)
                caller.run_one(index, call)
                self.progress(str(index))


def _changed(before: Any, after: Any) -> bool:
    try:
        return bool(
            before.shape != after.shape
            or before.dtype != after.dtype
            or not _np_array_equal(before, after, equal_nan=before.dtype.kind in "fc")
        )
    except Exception:
        return True


class _Kernel:
    """The caller of the notebook's functions in this kernel, made at its first call."""

    caller: Caller | None = None


def call_in_kernel(
    namespace: dict[str, Any],
    inbox: str,
    outbox: str,
    index: int,
    call_json: str,
    notebook: str,
    call_timeout: float,
    max_bytes: int,
) -> None:
    """Make one call of a function the notebook defines, in the notebook's kernel.

    The grader runs this as silent code after the notebook's last cell, once per call,
    with ``namespace`` the notebook's globals; ``call_json`` is one call of
    ``calls.json``'s list (plus ``storers``), its arrays already in ``inbox``. The record
    goes to ``<outbox>/call-<index>.json`` exactly as the module worker writes it; values
    kept by ``store`` stay in this kernel for the next calls.
    """
    signal.signal(signal.SIGALRM, _on_alarm)  # the student's cells may have replaced it
    caller = _Kernel.caller
    if caller is None or caller.namespace is not namespace:
        caller = _Kernel.caller = Caller(
            namespace, notebook, "notebook", inbox, outbox, call_timeout, max_bytes
        )
    caller.run_one(int(index), json.loads(call_json))


def main(inbox: str, outbox: str, indices_json: str) -> None:
    """Import the module, run the listed calls, exit without running student hooks."""
    progress_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.dont_write_bytecode = True
    signal.signal(signal.SIGALRM, _on_alarm)
    worker = Worker(inbox, outbox, progress_fd)
    if worker.import_module():
        worker.run([int(i) for i in json.loads(indices_json)])
        worker.progress("done")
    _os_exit(0)
