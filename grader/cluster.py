"""Grading on a Dask distributed cluster: ``grade SUBMISSIONS --cluster tcp://scheduler:8786``.

The batch (discovery, the cache, result files, the gradebook, progress) stays on the
client, exactly as in a local run; only EXECUTION + SCORING of a submission that has to
run moves to a worker machine, which runs the sandbox locally. Every worker machine needs
the same grader, rubrics and references installed (checked, see below).

What travels, and how it is serialised:

* client → worker: the task function :func:`grade_remote` (pickled by reference: module
  and name, never by value) with two arguments, ``request`` - a JSON ``str`` naming the
  batch (rubric path and file name, the rubric's SHA-256, the reference hash, the
  execution fingerprint, the sandbox mode) and the submission (student id, folder or file
  name, each entry's relative path in the order the client hashed them, symlink targets as
  text) - and ``files``, a ``dict`` of relative path → the file's ``bytes``;
* worker → client: a ``tuple[bytes, bytes]``: a UTF-8 JSON document (the status, the
  result in the published format of :func:`grader.results.record_to_dict`, and the
  execution as the JSON tree of :func:`grader.cache.encode_executed`, without the
  student's code cells) and an ``.npz`` archive of that execution's arrays written with
  ``allow_pickle=False`` (``b""`` when there are none). The client reads the arrays back
  with ``np.load(allow_pickle=False)``: no student object is ever pickled or unpickled.

Before any student runs, one check task per worker verifies that the worker finds a
rubric file with the client's SHA-256 (at the same path, else under the same name in its
own ``rubrics/``), computes the same reference hash and execution fingerprint (grader,
Python, NumPy and torch versions, the grader's execution code), and reports the sandbox
protections it lacks; any difference stops the batch with a one-line error naming the
worker. When something has to execute, a second round starts one sandboxed kernel per
worker (the local preflight).

Failures: an unreachable scheduler, or one without workers, is a :class:`GraderError`
naming the address. A task whose grading fails inside the grader returns the error as
text and the student gets a crashed result (not marked in the cache: the next run retries
it), as locally. A worker that dies mid-task (machine lost, OOM-killed) is handled by Dask:
the scheduler re-runs the task on another worker - harmless, since a task only writes to
its own temporary folder and the client alone writes results - up to the scheduler's
``distributed.scheduler.allowed-failures`` (default 3); after that the client gets
``KilledWorker`` and that student gets a crashed result while the batch goes on.

Set-up: ``dask scheduler`` on one machine (port 8786); on each grading machine, with the
grader installed as on the client (``./setup.sh`` as root, for the strict sandbox),
``dask worker tcp://scheduler:8786 --nthreads N``: N submissions at once, as ``--jobs N``.

Importing this module imports ``distributed``; :mod:`grader.batch` imports it only
when ``cluster=`` is given, so a local batch never imports Dask.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from distributed import Client, Future, as_completed

from grader.cache import (
    decode_executed,
    encode_executed,
    execution_fingerprint,
)
from grader.errors import GraderError
from grader.models import Submission
from grader.plain import Unencodable
from grader.reference import Expected, load_expected
from grader.rubric import RUBRICS_DIR, Rubric, load_rubric
from grader.sandbox import Executed, Mode

#: Bump when the request or reply layout changes; a worker with another format refuses.
TASK_FORMAT = 1
CONNECT_TIMEOUT_S = 10.0
WORKERS_TIMEOUT_S = 60.0


class RemoteError(Exception):
    """A failure on a worker (or the loss of one), carried back to the client as text."""


class ClusterMismatch(GraderError):
    """A worker's grader, rubric or reference differs from the client's."""


@dataclass(frozen=True)
class BatchIdentity:
    """What the client computed for the batch; every worker must compute the same."""

    rubric_path: str
    rubric_sha256: str
    reference_sha256: str
    fingerprint: str
    sandbox: Mode

    def to_json(self) -> dict[str, str]:
        """The identity as plain JSON data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RemoteOutcome:
    """What came back for one submission: a result, or why there is none."""

    record: dict[str, Any] | None  # the published result format
    executed: Executed | None  # the execution, for the client's cache (None: not cacheable)
    error: str | None  # the grader failed on the worker, or the worker was lost


# ------------------------------------------------------------------ worker side


def _host() -> str:
    return f"{socket.gethostname()} (pid {os.getpid()})"


_CONTEXT_LOCK = threading.Lock()


@functools.cache
def _batch_context(identity_json: str) -> tuple[Rubric, Expected]:
    """The worker's rubric and reference for a batch, verified against the client's
    hashes; computed once per worker process and batch."""
    identity = BatchIdentity(**json.loads(identity_json))
    given = Path(identity.rubric_path)
    # The same path first (the usual install); else the same file name in this worker's
    # own rubrics/ (a checkout at another place). Only a byte-identical file is accepted.
    candidates = [given, RUBRICS_DIR / given.name]
    found = next(
        (
            p
            for p in candidates
            if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == identity.rubric_sha256
        ),
        None,
    )
    if found is None:
        raise ClusterMismatch(
            f"worker {_host()} has no rubric with the client's SHA-256 "
            f"{identity.rubric_sha256[:12]}… at {given} or {RUBRICS_DIR / given.name}: install "
            "the same rubrics on every worker machine"
        )
    rubric = load_rubric(found)
    expected = load_expected(rubric)
    if expected.sha256 != identity.reference_sha256:
        raise ClusterMismatch(
            f"worker {_host()}: the reference of {found.name} hashes differently than on the "
            "client (its source, or the torch/NumPy versions, differ): install the same "
            "grader environment on every worker machine"
        )
    calls = rubric.calls(expected.values)
    if execution_fingerprint(rubric, calls, expected.sha256, identity.sandbox) != (
        identity.fingerprint
    ):
        raise ClusterMismatch(
            f"worker {_host()}: the grader's version, its execution code, or the Python, "
            "NumPy or torch versions differ from the client's: install the same grader "
            "environment on every worker machine"
        )
    return rubric, expected


def _context(identity: Mapping[str, Any]) -> tuple[Rubric, Expected]:
    # One computation per process even when the worker runs several threads.
    with _CONTEXT_LOCK:
        return _batch_context(json.dumps(identity, sort_keys=True))


def _reply(document: Mapping[str, Any], arrays: bytes = b"") -> tuple[bytes, bytes]:
    return json.dumps(document, allow_nan=False, separators=(",", ":")).encode(), arrays


def check_worker(identity_json: str, preflight_kernel: bool) -> bytes:
    """Worker-side set-up check: the batch identity, the sandbox protections this machine
    lacks and (``preflight_kernel``) one sandboxed kernel start. JSON bytes:
    ``{"host", "warnings": [...], "error": str | null}``."""
    from grader.pipeline import execution_limits
    from grader.sandbox import preflight, sandbox_warnings

    identity = json.loads(identity_json)
    answer: dict[str, Any] = {"host": _host(), "warnings": [], "error": None}
    try:
        rubric, _ = _context(identity)
        answer["warnings"] = list(sandbox_warnings(identity["sandbox"]))
        if preflight_kernel:
            preflight(identity["sandbox"], execution_limits(rubric))
    except ClusterMismatch as exc:  # already names this worker
        answer["error"] = " ".join(str(exc).split())
    except Exception as exc:  # a refused sandbox, no kernel, anything: reported, not raised
        answer["error"] = f"worker {_host()}: " + " ".join(str(exc).split())
    return json.dumps(answer).encode()


def _materialise(request: Mapping[str, Any], files: Mapping[str, bytes], root: Path) -> Submission:
    """The submission as files under ``root``, laid out as on the client so its hash, the
    located notebook and every warning are the same."""
    name = request["name"]
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"bad submission name {name!r}")
    base = root if request["single"] else root / name
    base.mkdir(parents=True, exist_ok=True)
    paths = []
    for rel, link in request["entries"]:
        target = (base / rel).resolve()
        if not target.is_relative_to(base.resolve()):
            raise ValueError(f"entry {rel!r} leaves the submission folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        if link is not None:
            # Kept as a symlink so the copy step refuses it exactly as on the client; it
            # is never followed (hashing reads the link text).
            os.symlink(link, target)
        else:
            target.write_bytes(files[rel])
        paths.append(base / rel)
    return Submission(
        student=request["student"],
        path=base / name if request["single"] else base,
        files=tuple(paths),
        is_single_file=request["single"],
    )


def grade_remote(request: str, files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """The task run on a worker: materialise one submission in a temporary folder,
    execute it in this machine's sandbox, score it, and return the reply as bytes (see
    the module docstring). Never raises: every failure is returned as text."""
    from grader.pipeline import execute_submission, for_cache, score_execution
    from grader.results import record_to_dict

    try:
        req = json.loads(request)
        if req.get("format") != TASK_FORMAT:
            raise ClusterMismatch(
                f"worker {_host()} speaks task format {TASK_FORMAT}, the client "
                f"{req.get('format')}: install the same grader everywhere"
            )
        rubric, expected = _context(req["batch"])
    except ClusterMismatch as exc:
        return _reply({"status": "mismatch", "error": str(exc)})
    except Exception as exc:
        return _reply({"status": "mismatch", "error": f"worker {_host()}: {exc!r}"})
    try:
        with tempfile.TemporaryDirectory(prefix="grade-remote-") as tmp:
            sub = _materialise(req, files, Path(tmp))
            started = time.monotonic()
            executed = execute_submission(sub, rubric, expected, sandbox=req["batch"]["sandbox"])
            record = score_execution(sub, rubric, expected, executed, started)
            document: dict[str, Any] = {
                "status": "ok",
                "record": record_to_dict(record),
                "execution": None,
            }
        arrays = b""
        try:
            tree, array_list = encode_executed(for_cache(executed))
        except Unencodable:
            pass  # not cacheable: the client simply does not cache this execution
        else:
            document["execution"] = tree
            if array_list:
                buffer = io.BytesIO()
                np.savez(
                    buffer, allow_pickle=False, **{f"a{i}": a for i, a in enumerate(array_list)}
                )
                arrays = buffer.getvalue()
        return _reply(document, arrays)
    except Exception as exc:  # the batch survives any one submission, as locally
        return _reply({"status": "crashed", "error": f"{type(exc).__name__}: {exc} on {_host()}"})


# ------------------------------------------------------------------ client side


def pack_submission(sub: Submission, identity: BatchIdentity) -> tuple[str, dict[str, bytes]]:
    """The arguments of :func:`grade_remote` for one submission: plain ``str`` and
    ``bytes`` only (symlinks travel as their target text, never followed)."""
    base = sub.path.parent if sub.is_single_file else sub.path
    entries: list[tuple[str, str | None]] = []
    files: dict[str, bytes] = {}
    for path in sub.files:
        rel = path.relative_to(base).as_posix()
        if path.is_symlink():
            entries.append((rel, str(path.readlink())))
        else:
            entries.append((rel, None))
            files[rel] = path.read_bytes()
    request = {
        "format": TASK_FORMAT,
        "batch": identity.to_json(),
        "student": sub.student,
        "name": sub.path.name,
        "single": sub.is_single_file,
        "entries": entries,
    }
    return json.dumps(request), files


def unpack_reply(reply: tuple[bytes, bytes]) -> RemoteOutcome:
    """The outcome of one task from its reply bytes; a mismatch stops the batch."""
    document = json.loads(reply[0])
    status = document.get("status")
    if status == "mismatch":
        raise ClusterMismatch(" ".join(str(document["error"]).split()))
    if status != "ok":
        return RemoteOutcome(None, None, str(document.get("error")))
    executed = None
    if document.get("execution") is not None:
        try:
            arrays: dict[str, np.ndarray[Any, Any]] = {}
            if reply[1]:
                with np.load(io.BytesIO(reply[1]), allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
            executed = decode_executed(document["execution"], arrays)
        except (ValueError, KeyError, TypeError, OSError):
            executed = None  # only costs a re-execution next time
    return RemoteOutcome(document["record"], executed, None)


class ClusterRun:
    """A connection to a Dask scheduler for one batch."""

    def __init__(self, address: str, identity: BatchIdentity, client: Client) -> None:
        self.address = address
        self.identity = identity
        self.client = client
        self._identity_json = json.dumps(identity.to_json(), sort_keys=True)

    @classmethod
    def open(
        cls,
        address: str,
        identity: BatchIdentity,
        *,
        connect_timeout_s: float | None = None,
        workers_timeout_s: float | None = None,
    ) -> ClusterRun:
        """Connect to the scheduler and wait for a worker; GraderError when either fails.
        The timeouts default to :data:`CONNECT_TIMEOUT_S` and :data:`WORKERS_TIMEOUT_S`."""
        connect_timeout_s = connect_timeout_s or CONNECT_TIMEOUT_S
        workers_timeout_s = workers_timeout_s or WORKERS_TIMEOUT_S
        try:
            client = Client(address, timeout=connect_timeout_s, set_as_default=False)  # type: ignore[no-untyped-call]
        except Exception as exc:
            raise GraderError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}: {exc}): "
                "start one there (`dask scheduler`) with `dask worker "
                f"{address}` on each grading machine, check the address, or grade without "
                "--cluster"
            ) from exc
        try:
            client.wait_for_workers(1, timeout=workers_timeout_s)
        except Exception as exc:
            client.close()  # type: ignore[no-untyped-call]
            raise GraderError(
                f"the Dask scheduler at {address} has no workers after {workers_timeout_s:g} s: "
                f"start `dask worker {address}` on each grading machine"
            ) from exc
        return cls(address, identity, client)

    def close(self) -> None:
        """Disconnect (the cluster itself keeps running)."""
        self.client.close()  # type: ignore[no-untyped-call]

    def workers(self) -> list[str]:
        """The addresses of the workers connected now."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def check_workers(self, preflight_kernel: bool = False) -> tuple[str, ...]:
        """Run :func:`check_worker` once on every worker; the sandbox warnings of all of
        them (union, in order). Raises GraderError on the first worker that differs."""
        futures = [
            self.client.submit(
                check_worker,
                self._identity_json,
                preflight_kernel,
                key=f"grader-check-{uuid.uuid4().hex}",
                workers=[worker],
                allow_other_workers=False,
                pure=False,
            )
            for worker in self.workers()
        ]
        warnings: dict[str, None] = {}
        for future in futures:
            answer = json.loads(future.result())
            if answer["error"] is not None:
                raise ClusterMismatch(answer["error"])
            warnings.update(dict.fromkeys(answer["warnings"]))
        return tuple(warnings)

    def submit(self, sub: Submission) -> Future[tuple[bytes, bytes]]:
        """Send one submission to the cluster (OSError when its files cannot be read)."""
        request, files = pack_submission(sub, self.identity)
        return self.client.submit(
            grade_remote,
            request,
            files,
            # unique per batch: a re-run must execute again, never reuse a finished key
            key=f"grade-{sub.student}-{uuid.uuid4().hex}",
            pure=False,
        )

    def results(
        self, futures: Mapping[Future[tuple[bytes, bytes]], int]
    ) -> Iterator[tuple[int, RemoteOutcome]]:
        """Each submission's outcome as soon as it is ready, with the index ``futures``
        maps it to. A lost worker (after Dask's retries) or a cancelled task is that
        student's error; a mismatch raises :class:`ClusterMismatch`."""
        # set_as_default=False: as_completed must be told which client's loop to use
        done = as_completed(list(futures), loop=self.client.loop)  # type: ignore[no-untyped-call]
        for future in done:
            index = futures[future]
            try:
                reply = future.result()
            except Exception as exc:  # KilledWorker, a lost connection, cancellation
                yield index, RemoteOutcome(None, None, f"{type(exc).__name__}: {exc}")
            else:
                yield index, unpack_reply(reply)
            future.release()

    def cancel(self, futures: Sequence[Future[tuple[bytes, bytes]]]) -> None:
        """Cancel what is still queued or running (an interrupted batch)."""
        self.client.cancel(list(futures))  # type: ignore[no-untyped-call]
