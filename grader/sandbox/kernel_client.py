"""The Jupyter side of a kernel: its manager, its client, its environment, its set-up code.

The kernel's argv is wrapped by a ``launcher`` (the session's: ``bwrap ...`` cold, the
warm client warm); the connection file and the ZeroMQ transport are configurable so
that a sandbox can bind one directory. The harness arrives in the kernel as source text
(:func:`setup_code`): the sandbox binds nothing of the grader's tree.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from grader.harness import encoding as _encoding
from grader.harness import keras_adapter as _keras_adapter
from grader.harness import kernel as _harness
from grader.harness import recorders as _recorders
from grader.harness import shims as _shims
from grader.harness import worker as _worker

Launcher = Callable[[list[str]], list[str]]
"""Wraps the kernel's argv, e.g. to run it inside ``bwrap``; identity by default."""

HARNESS_MODULE = "__grader_harness__"
_HARNESS_SOURCE = Path(_harness.__file__).read_text(encoding="utf-8")
_ENCODING_MODULE = "__grader_encoding__"
_ENCODING_SOURCE = Path(_encoding.__file__).read_text(encoding="utf-8")
WORKER_MODULE = "__grader_worker__"
_WORKER_SOURCE = Path(_worker.__file__).read_text(encoding="utf-8")
_RECORDERS_SOURCE = Path(_recorders.__file__).read_text(encoding="utf-8")
_KERAS_SOURCE = Path(_keras_adapter.__file__).read_text(encoding="utf-8")
_SHIMS_SOURCE = Path(_shims.__file__).read_text(encoding="utf-8")
# The largest Jupyter message the grader accepts from a kernel. A larger one (a cell
# printing hundreds of MB at once, an exception message of that size) would be read and
# decoded whole in the grader's process; ZeroMQ drops the connection instead, which
# only loses that kernel's output (the grader never keeps output anyway).
MAX_MESSAGE_BYTES = 16 * 2**20
_IOPUB_QUIET_S = 0.02  # a new kernel's IOPub is drained until this long without messages
# Variables passed through from the grader's environment: OpenBLAS needs these on CPUs
# it cannot detect, and would otherwise crash at import.
_PASSTHROUGH_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# Runs in the kernel inside ``exec(..., {fresh dict})``, so nothing is bound in the
# student's namespace. The harness arrives as source text (the sandbox binds nothing of
# the grader's tree) and runs with the notebook folder removed from sys.path, so a
# student's ``numpy.py`` cannot shadow what it imports.
_SETUP_SOURCE = """
import os, sys
_cwd = os.getcwd()
_saved = list(sys.path)
sys.path[:] = [p for p in _saved if p not in ("", ".") and os.path.abspath(p) != _cwd]
try:
    _enc = type(sys)(ARGS["encoding_module"])
    _enc.__file__ = "<grader encoding>"
    sys.modules[ARGS["encoding_module"]] = _enc
    exec(compile(ARGS["encoding_source"], "<grader encoding>", "exec"), _enc.__dict__)
    _rec = type(sys)("__grader_recorders__")
    _rec.__file__ = "<grader recorders>"
    sys.modules["__grader_recorders__"] = _rec
    exec(compile(ARGS["recorders_source"], "<grader recorders>", "exec"), _rec.__dict__)
    _shm = type(sys)("__grader_shims__")
    _shm.__file__ = "<grader shims>"
    sys.modules["__grader_shims__"] = _shm
    exec(compile(ARGS["shims_source"], "<grader shims>", "exec"), _shm.__dict__)
    _mod = type(sys)(ARGS["module"])
    _mod.__file__ = "<grader harness>"
    sys.modules[ARGS["module"]] = _mod
    exec(compile(ARGS["source"], "<grader harness>", "exec"), _mod.__dict__)
    _mod._keras_source = ARGS["keras_source"]  # compiled only if Keras is imported
    if ARGS["worker_source"]:
        _wrk = type(sys)(ARGS["worker_module"])
        _wrk.__file__ = "<grader worker>"
        sys.modules[ARGS["worker_module"]] = _wrk
        exec(compile(ARGS["worker_source"], "<grader worker>", "exec"), _wrk.__dict__)
    _mod.setup(
        ARGS["outbox"],
        ARGS["seed"],
        seed_torch=ARGS["seed_torch"],
        max_answer_bytes=ARGS["max_answer_bytes"],
        harvest_timeout_s=ARGS["harvest_timeout_s"],
        shims=True,
        cuda_on_cpu=ARGS["cuda_on_cpu"],
    )
finally:
    sys.path[:] = _saved
"""


def setup_code(
    outbox: Path,
    seed: int,
    *,
    seed_torch: bool,
    keras: bool = True,
    max_answer_bytes: int,
    harvest_timeout: float,
    calls: bool = False,
    cuda_on_cpu: bool = True,
) -> str:
    """The silent code that installs the harness in a new kernel (see ``_SETUP_SOURCE``);
    with ``calls``, also the call machinery of :mod:`grader.harness.worker`, before any
    student cell runs (it keeps private references to what it uses); with ``keras``,
    the Keras adapter's source (:mod:`grader.harness.keras_adapter`), compiled by the
    harness only once the student's code imports Keras or Keras Tuner. The shims of
    :mod:`grader.harness.shims` (Colab, ``!pip``, ``%cd``, offline data sets) are always
    installed; ``cuda_on_cpu`` False (a rubric's ``devices: strict``) leaves CUDA
    requests failing as on a CPU-only torch."""
    args = {
        "worker_module": WORKER_MODULE,
        "worker_source": _WORKER_SOURCE if calls else "",
        "module": HARNESS_MODULE,
        "source": _HARNESS_SOURCE,
        "encoding_module": _ENCODING_MODULE,
        "encoding_source": _ENCODING_SOURCE,
        "recorders_source": _RECORDERS_SOURCE,
        "shims_source": _SHIMS_SOURCE,
        "cuda_on_cpu": cuda_on_cpu,
        "keras_source": _KERAS_SOURCE if keras else "",
        "outbox": str(outbox),
        "seed": seed,
        "seed_torch": seed_torch,
        "max_answer_bytes": max_answer_bytes,
        "harvest_timeout_s": harvest_timeout,
    }
    return f"__import__('builtins').exec({_SETUP_SOURCE!r}, {{'ARGS': {args!r}}})"


def describe_exit(what: str, code: int | None) -> str:
    """How a sandboxed process ended, in words (``what`` names it: "the kernel process")."""
    if code is None:
        return f"{what} stopped"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (often: out of memory)" if name == "SIGKILL" else ""
        return f"{what} was killed by {name}{hint}"
    return f"{what} exited with code {code}"


class GraderKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse messages above :data:`MAX_MESSAGE_BYTES`."""

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """jupyter_client's wait (a kernel_info reply, with IOPub seen connected), except
        that the IOPub drain at the end needs :data:`_IOPUB_QUIET_S` of quiet instead of
        0.2 s: that wait was a fixed 0.2 s of every kernel start. The runner matches
        every reply and output by its request's msg_id, so a late status message is
        ignored."""
        deadline = time.monotonic() + (math.inf if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                msg = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                pass
            else:
                if msg["msg_type"] == "kernel_info_reply":
                    try:  # IOPub connected? (the reply's busy/idle status arrives there)
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(msg)
                        break
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")
        while True:
            try:
                await self.iopub_channel.get_msg(timeout=_IOPUB_QUIET_S)
            except Empty:
                break


class GraderKernelManager(AsyncKernelManager):
    """A kernel manager that launches this interpreter's ipykernel through a launcher."""

    def __init__(self, launcher: Launcher, **kwargs: Any) -> None:
        kwargs.setdefault("client_factory", GraderKernelClient)
        super().__init__(**kwargs)
        self._grader_launcher = launcher
        # Signals do not cross a sandbox's PID namespace; ipykernel also accepts an
        # interrupt_request on its control channel, which works in both cases.
        spec = self.kernel_spec
        if spec is not None:
            spec.interrupt_mode = "message"

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        # After a kill, jupyter_client polls every 0.1 s for the process to end; the
        # first poll always finds it alive, so every kernel stop cost 0.1 s.
        await super()._async_wait(pollinterval=min(pollinterval, 0.01))

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        """The kernel argv, ignoring any kernelspec found on the machine."""
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(self.connection_file)]
        return list(self._grader_launcher([*argv, *(extra_arguments or [])]))


class QuietClient(NotebookClient):
    """A NotebookClient that keeps no cell outputs (a cell may print gigabytes)."""

    def output(
        self, outs: list[Any], msg: dict[str, Any], display_id: Any, cell_index: int
    ) -> None:
        """Drop the output, noting only whether it displayed an image (figure checks)."""
        images: set[int] | None = getattr(self, "grader_image_cells", None)
        if images is not None and msg.get("msg_type") in ("display_data", "execute_result"):
            data = msg.get("content", {}).get("data", {})
            if isinstance(data, dict) and IMAGE_TYPES.intersection(data):
                images.add(cell_index + 1)
        return None


IMAGE_TYPES = frozenset({"image/png", "image/svg+xml"})


def kernel_env(
    workdir: Path, runtime_dir: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The kernel's environment: minimal and deterministic, never the grader's own."""
    env = {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",  # TensorFlow's pools, like torch's OpenMP one
        "TF_NUM_INTEROP_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MPLBACKEND": "Agg",
        # Keep IPython's and Jupyter's profile/config dirs out of the student's folder,
        # so nothing there (a copied .ipython/startup script) runs before the harness.
        "IPYTHONDIR": str(runtime_dir / "ipython"),
        "JUPYTER_CONFIG_DIR": str(runtime_dir / "jupyter"),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    for name in _PASSTHROUGH_ENV:
        if name in os.environ:
            env[name] = os.environ[name]
    env.update(extra or {})
    return env


_MAX_NOTES_BYTES = 64 * 2**10


def habit_notes(outbox: Path) -> tuple[str, ...]:
    """The warnings for what the in-kernel shims did (:mod:`grader.harness.shims`): once,
    "this notebook asked for a GPU (...); it ran on the CPU", and a line per shell note
    (``!pip install`` of a missing package, ``%cd`` into a missing folder). The notes
    file is written by the kernel, so it is read as untrusted plain JSON, size-capped,
    and anything malformed is ignored."""
    data = read_habit_notes(outbox)
    out: list[str] = []
    cuda = data.get("cuda_requested_on_cpu")
    if cuda:
        out.append(
            f"this notebook asked for a GPU ({', '.join(cuda['examples'])}); "
            "it ran on the CPU (the grading machine has none)"
        )
    out += [f"while grading: {line}" for line in data.get("shell", ())]
    return tuple(out)


def read_habit_notes(outbox: Path) -> dict[str, Any]:
    """The shims' notes as checked plain data: ``cuda_requested_on_cpu`` ({count: int,
    examples: [str]}) and ``shell`` ([str]), each only when present and well formed."""
    import json

    path = outbox / _shims.NOTES_FILE
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_NOTES_BYTES:
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    cuda = raw.get("cuda_requested_on_cpu")
    if (
        isinstance(cuda, dict)
        and type(cuda.get("count")) is int
        and isinstance(cuda.get("examples"), list)
        and all(isinstance(e, str) for e in cuda["examples"])
    ):
        out["cuda_requested_on_cpu"] = {
            "count": cuda["count"],
            "examples": [e[:80] for e in cuda["examples"][: _shims.MAX_EXAMPLES]],
        }
    shell = raw.get("shell")
    if isinstance(shell, list) and all(isinstance(s, str) for s in shell):
        out["shell"] = [s[:200] for s in shell[:20]]
    return out
