"""Incremental regrades: what a submission's execution produced, kept on disk.

Grading is two stages. EXECUTION runs the student's notebook and/or module in the
sandbox and yields plain data (:class:`Executed`: a ``NotebookRun``, a ``ModuleRun``,
the execution report). SCORING runs the checks over that data. Executions are slow
(a kernel, ``import torch``); scoring is fast. So an execution is cached under a key
made of everything that can change what the student's code produces, and nothing that
only changes how it is scored:

* :func:`execution_fingerprint` - the execution-relevant part of the rubric (the names
  and probes harvested, the calls made on the module or the notebook, the notebook and module file
  names, the limits), the reference hash when the module is called (the calls' inputs
  come from the reference), the provided files' contents (``files:``), the sandbox
  mode, the grader, Python, NumPy and torch versions, and a hash of the grader's own
  execution code (sandbox, harness). Points, messages, tolerances, concepts, titles
  are NOT part of it.
* :func:`execution_key` - that fingerprint plus the submission's hash.
* :func:`result_key` - the execution key plus the whole rubric file's hash, the
  reference hash and the batch-wide warnings: a result is reused as is only when
  nothing at all changed.

Layout under the output folder::

    DIR/.cache/executions/<execution key>.json   (+ .npz with the arrays)
    DIR/.cache/results/<student>.json            {"key": result key,
                                                  "sha256": of results/<student>.json}

An entry holds what scoring reads (answers, Markdown, the execution report, call
results), not the student's code cell sources: the output folder holds no student code.

Everything is written with :func:`grader.atomic.write_atomic` (temporary file, fsync,
``os.replace``, fsync of the folder), so a batch killed at any instant, or a power loss,
leaves either a complete entry or none. Arrays are read back with
``np.load(allow_pickle=False)``; nothing is ever unpickled.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import platform
import zipfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from grader import __version__
from grader.atomic import sweep, write_atomic
from grader.datasets import manifests_sha256
from grader.models import (
    Answer,
    AnswerRequest,
    Call,
    CallResult,
    CellFailure,
    ExecutionReport,
    GradeRecord,
    ModuleRun,
    NotebookRun,
    ProbeSpec,
    Stored,
)
from grader.plain import Unencodable, decode, encode
from grader.results import SCHEMA_VERSION, record_from_dict
from grader.rubric import Rubric, provided_sha256
from grader.sandbox import Executed, gpus

#: Bump when the layout of cache entries changes: every entry is then a miss.
CACHE_FORMAT = 2  # 2: values in grader.plain's trees (str-keyed dicts as objects)
CACHE_DIRNAME = ".cache"


# --------------------------------------------------------------------------- keys


def _digest(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _value_digest(value: Any) -> str:
    """A stable hash of a plain value with arrays (a call's arguments)."""
    arrays: list[np.ndarray[Any, Any]] = []
    tree = encode(value, arrays=arrays, types=RECORDS)
    digest = hashlib.sha256(json.dumps(tree, sort_keys=True).encode())
    for array in arrays:
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


_PACKAGE = Path(__file__).resolve().parent
#: The grader's own code that decides what an execution produces: the sandbox, the code
#: run inside it, the decoding of its outbox. The records an execution is made of count
#: by their fields (:func:`records_digest`), not by the source of ``models.py``: a new
#: field on a scoring record (a result schema version) must not re-run every kernel.
EXECUTION_CODE = ("harness/*.py", "sandbox/*.py", "answers.py")


def records_digest() -> str:
    """SHA-256 over the name, fields, field types and defaults of every record a cache
    entry holds (:data:`RECORDS`): what decoding an entry depends on."""
    shape = []
    for name, cls in sorted(RECORDS.items()):
        fields = [
            [f.name, str(f.type), "" if f.default is dataclasses.MISSING else repr(f.default)]
            for f in dataclasses.fields(cls)
        ]
        shape.append([name, fields])
    return _digest(shape)


@functools.cache
def execution_code_hash() -> str:
    """SHA-256 over the source of :data:`EXECUTION_CODE` and :func:`records_digest`, so
    an edited harness, sandbox or execution record re-executes even before the version
    number is bumped."""
    digest = hashlib.sha256()
    for pattern in EXECUTION_CODE:
        for path in sorted(_PACKAGE.glob(pattern)):
            digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(records_digest().encode())
    return digest.hexdigest()


def _runtime_versions() -> dict[str, str]:
    def version(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return "absent"

    return {
        "grader": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": version("torch"),
        # Keras/TensorFlow submissions run on these (issue 15)
        "tensorflow": version("tensorflow-cpu"),
        "keras": version("keras"),
        "keras_tuner": version("keras-tuner"),
        "cache_format": str(CACHE_FORMAT),
        "code": execution_code_hash(),
    }


def execution_spec(
    rubric: Rubric, calls: Sequence[Call], reference_sha256: str, sandbox: str
) -> dict[str, Any]:
    """The part of a rubric (and of the world) that can change what a submission's
    code produces when it runs, as plain data.

    Included: the notebook and module file names; every limit; every harvested name with
    its kind and probe (input shape, range, seed, dtype); every call of the module's or the
    notebook's functions (id, function, arguments by content, store, seed; where each
    check's calls are made); the reference hash when there are calls; the contents of the
    provided files (``files:``); ``devices:``; the named data sets' manifests (their
    files' hashes, :mod:`grader.datasets`); the sandbox mode; the grader/Python/NumPy/torch versions
    and the hash of the grader's execution code (:func:`execution_code_hash`). Excluded
    on purpose: points, tolerances, messages, prompts, titles, concepts,
    ``show_expected`` - they only change scoring, which always re-runs over the cached
    data.
    """
    requests = sorted(
        (dataclasses.asdict(r) for r in rubric.requests()), key=lambda r: str(r["name"])
    )
    # Where each check's calls are made (the module's worker or the notebook's kernel):
    # the same calls made elsewhere run other code.
    sources = {c.id: c.call_source() for c in rubric.checks() if c.call_source() is not None}
    return {
        "notebook": rubric.notebook,
        "module": rubric.module,
        "limits": rubric.limits.model_dump(mode="json"),
        "requests": json.loads(json.dumps(requests, default=list)),
        "calls": [_value_digest(call) for call in calls],
        "call_sources": sources,
        "reference": reference_sha256 if calls else None,
        "provided": provided_sha256(rubric.provided),  # the `files:` contents
        "sandbox": sandbox,
        "versions": _runtime_versions(),
        # Only when set, so that fingerprints of rubrics without them stay as they were.
        **({"devices": rubric.devices} if rubric.devices != "cpu" else {}),
        # A `devices: gpu` rubric runs elsewhere with GPUs lent (`grade --gpus`) than without.
        **({"gpus_lent": gpus.pool().size > 0} if rubric.devices == "gpu" else {}),
        **({"datasets": manifests_sha256(rubric.datasets)} if rubric.datasets else {}),
    }


def execution_fingerprint(
    rubric: Rubric, calls: Sequence[Call], reference_sha256: str, sandbox: str
) -> str:
    """SHA-256 of :func:`execution_spec`: the same for every submission of a batch."""
    return _digest(execution_spec(rubric, calls, reference_sha256, sandbox))


def execution_key(submission_sha256: str, fingerprint: str) -> str:
    """The key of one submission's cached execution: a change to any byte of the
    submission, or to anything in :func:`execution_spec`, gives a new key (re-execution);
    anything else (points, tolerances, messages) keeps it (re-scoring only)."""
    return _digest({"submission": submission_sha256, "execution": fingerprint})


def result_key(
    exec_key: str, rubric_sha256: str, reference_sha256: str, warnings: Sequence[str] = ()
) -> str:
    """The key of a finished result: its execution key plus the whole rubric file's hash,
    the reference hash and the batch's sandbox warnings. Equal keys mean the result on
    disk is exactly what grading again would give (up to ``graded_at``)."""
    return _digest(
        {
            "execution": exec_key,
            "rubric": rubric_sha256,
            "reference": reference_sha256,
            "warnings": list(warnings),
            "grader": __version__,
        }
    )


# ----------------------------------------------------------------- plain-data codec

#: The records an execution is made of: the only dataclasses a cache entry may hold.
RECORDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (
        Executed,
        NotebookRun,
        ModuleRun,
        ExecutionReport,
        CellFailure,
        Answer,
        CallResult,
        AnswerRequest,
        ProbeSpec,
        Call,
        Stored,
    )
}


def encode_executed(executed: Executed) -> tuple[Any, list[np.ndarray[Any, Any]]]:
    """The JSON tree and the arrays of an execution (:mod:`grader.plain`, arrays out of
    line for the ``.npz``; raises :class:`grader.plain.Unencodable`)."""
    arrays: list[np.ndarray[Any, Any]] = []
    return encode(executed, arrays=arrays, types=RECORDS), arrays


def decode_executed(tree: Any, arrays: Mapping[str, np.ndarray[Any, Any]]) -> Executed:
    """The inverse of :func:`encode_executed`."""
    executed = decode(tree, arrays=arrays, types=RECORDS)
    if not isinstance(executed, Executed):
        raise ValueError("not an execution")
    return executed


# ---------------------------------------------------------------------- storage


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


class GradeCache:
    """Cached executions and the result index of one output folder."""

    def __init__(self, out_dir: Path) -> None:
        self.root = out_dir / CACHE_DIRNAME
        self.executions = self.root / "executions"
        self.results = self.root / "results"

    def sweep(self, older_than_s: float = 600.0) -> None:
        """Remove temporary files a killed batch left behind (never a finished entry)."""
        sweep((self.executions, self.results), older_than_s)

    def execution_path(self, key: str) -> Path:
        """The JSON file of a cached execution (its arrays sit next to it as ``.npz``)."""
        return self.executions / f"{key}.json"

    def load_execution(self, key: str) -> Executed | None:
        """The cached execution under ``key``, or None (absent or damaged: re-execute)."""
        path = self.execution_path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
                return None
            arrays: dict[str, np.ndarray[Any, Any]] = {}
            if entry["arrays"]:
                npz_path = path.with_suffix(".npz")
                if file_sha256(npz_path) != entry["arrays_sha256"]:
                    return None
                with np.load(npz_path, allow_pickle=False) as npz:
                    arrays = {name: npz[name] for name in npz.files}
            return decode_executed(entry["tree"], arrays)
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile):
            return None

    def store_execution(self, key: str, executed: Executed) -> bool:
        """Keep an execution; False when it holds something the format cannot keep."""
        try:
            tree, arrays = encode_executed(executed)
        except Unencodable:
            return False
        path = self.execution_path(key)
        digest = None
        if arrays:
            npz = path.with_suffix(".npz")
            write_atomic(
                npz,
                lambda h: np.savez(
                    h, allow_pickle=False, **{f"a{i}": a for i, a in enumerate(arrays)}
                ),
            )
            digest = file_sha256(npz)
        entry = {
            "format": CACHE_FORMAT,
            "key": key,
            "arrays": len(arrays),
            "arrays_sha256": digest,
            "tree": tree,
        }
        text = json.dumps(entry, allow_nan=False, separators=(",", ":")).encode()
        write_atomic(path, text)
        return True

    def finished_result(self, student: str, key: str, results_dir: Path) -> GradeRecord | None:
        """The result on disk for ``student`` if it was made under ``key``, is intact and
        is of the current result schema version, else None (grade it again: a result of
        an older version is re-scored from its cached execution and written anew)."""
        try:
            index = json.loads((self.results / f"{student}.json").read_text(encoding="utf-8"))
            if index.get("key") != key:
                return None
            raw = (results_dir / f"{student}.json").read_bytes()
            if hashlib.sha256(raw).hexdigest() != index.get("sha256"):
                return None
            data = json.loads(raw)
            if data.get("schema_version") != SCHEMA_VERSION:
                return None
            return record_from_dict(data)
        except (OSError, ValueError, AttributeError):
            return None

    def mark_result(self, student: str, key: str, result_path: Path) -> None:
        """Record that ``result_path`` (already written) is the result under ``key``."""
        entry = {"key": key, "sha256": file_sha256(result_path)}
        text = json.dumps(entry).encode()
        write_atomic(self.results / f"{student}.json", text)
