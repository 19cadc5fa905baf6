"""Decoding, in the grader's process, of the answers the in-kernel harness wrote.

The outbox is writable from the student's kernel, so everything in it is untrusted: file
sizes are checked before reading, symlinks and special files are refused, ``.npy`` files
are loaded without pickles and only by plain file name from inside the outbox, and their
headers are checked against the file size before NumPy allocates anything. Damage of any
kind becomes an ``Answer`` with status ``"error"``; nothing here raises on bad input.
See :mod:`grader.harness.kernel` for the file format.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, cast, get_args

import numpy as np

from grader.models import Answer, AnswerRequest, AnswerStatus

_STATUSES: frozenset[str] = frozenset(get_args(AnswerStatus))
_NPY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\.npy")
_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MAX_DEPTH = 64  # the harness nests at most 20 levels; tags add a few more
_NPY_KINDS = frozenset("biuf")
# The harness writes short messages and type names; longer ones were forged in the
# outbox and are cut so that they cannot bloat the result file and the report.
_MAX_MESSAGE_CHARS = 4000
_MAX_TYPE_NAME_CHARS = 200


class DamagedOutput(Exception):
    """The outbox holds something the harness would never have written."""


_Damaged = DamagedOutput


def read_answers(
    outbox: Path, requests: Sequence[AnswerRequest], max_bytes: int
) -> dict[str, Answer]:
    """Read every requested answer from ``outbox``.

    Returns one :class:`Answer` per request, keyed by name. A name with no file was never
    harvested (status ``"missing"``); a file that is too large, malformed or refers to a
    bad array gives status ``"error"``. ``max_bytes`` caps one answer's JSON file plus all
    of its arrays.
    """
    return {req.name: read_answer(outbox, req.name, max_bytes) for req in requests}


def read_answer(outbox: Path, name: str, max_bytes: int) -> Answer:
    """Read the answer ``name`` from ``outbox`` (see :func:`read_answers`)."""
    if not name.isidentifier():
        return Answer(name=name, status="error", message=f"{name!r} is not a Python name")
    path = outbox / f"{name}.json"
    try:
        raw = _read_capped(path, max_bytes)
    except FileNotFoundError:
        return Answer(name=name, status="missing", message=f"{name} was never harvested")
    except _Damaged as exc:
        return _damaged(name, str(exc))
    try:
        record = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        return _damaged(name, f"{path.name} is not valid JSON ({type(exc).__name__})")
    try:
        return _decode_record(outbox, name, record, max_bytes - len(raw))
    except _Damaged as exc:
        return _damaged(name, str(exc))
    except (RecursionError, ValueError, TypeError, OSError) as exc:
        return _damaged(name, f"{type(exc).__name__}: {exc}")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... (cut)"


def _damaged(name: str, detail: str) -> Answer:
    return Answer(
        name=name,
        status="error",
        message=f"the grader could not read back {name}: {detail}",
    )


def _decode_record(outbox: Path, name: str, record: object, budget: int) -> Answer:
    if type(record) is not dict:
        raise _Damaged("the answer file does not hold a JSON object")
    status = record.get("status")
    if status not in _STATUSES:
        raise _Damaged(f"unknown status {status!r}")
    if record.get("name") != name:
        raise _Damaged("the answer file names another answer")
    cell = record.get("cell")
    if cell is not None and type(cell) is not int:
        raise _Damaged("bad cell number")
    type_name = record.get("type_name", "")
    message = record.get("message", "")
    if type(type_name) is not str or type(message) is not str:
        raise _Damaged("bad type_name or message")
    type_name = _cut(type_name, _MAX_TYPE_NAME_CHARS)
    message = _cut(message, _MAX_MESSAGE_CHARS)
    value: Any = None
    if status == "ok":
        value = _Decoder(outbox, budget).decode(record.get("value"), 0)
    return Answer(
        name=name,
        status=cast(AnswerStatus, status),
        value=value,
        type_name=type_name,
        cell=cell,
        message=message,
    )


class _Decoder:
    """Resolves tagged nodes; ``budget`` is the bytes left for this answer's arrays."""

    def __init__(self, outbox: Path, budget: int) -> None:
        self.outbox = outbox
        self.budget = budget

    def decode(self, node: object, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _Damaged("the value is nested too deeply")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            return [self.decode(v, depth + 1) for v in node]
        if type(node) is not dict:
            raise _Damaged(f"unexpected JSON node {type(node).__name__}")
        if len(node) == 1:
            ((key, inner),) = node.items()
            if key == "__ndarray__":
                return self._array(inner)
            if key == "__float__":
                if type(inner) is not str or inner not in _FLOATS:
                    raise _Damaged(f"bad __float__ node {inner!r}")
                return _FLOATS[inner]
            if key == "__dict__":
                if type(inner) is not dict:
                    raise _Damaged("bad __dict__ node")
                return {k: self.decode(v, depth + 1) for k, v in inner.items()}
        return {k: self.decode(v, depth + 1) for k, v in node.items()}

    def _array(self, fname: object) -> np.ndarray[Any, Any]:
        # Only a plain file name inside the outbox: no separators, no dot-files, no "..".
        if type(fname) is not str or not _NPY_NAME.fullmatch(fname) or ".." in fname:
            raise _Damaged(f"bad array file name {fname!r}")
        path = self.outbox / fname
        try:
            fd = _open_regular(path)
        except FileNotFoundError:
            raise _Damaged(f"{fname} is missing") from None
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size > self.budget:
                raise _Damaged(f"{fname} is larger than the grader reads")
            self.budget -= size
            return _load_npy(fh, size, fname)


def _load_npy(fh: BinaryIO, size: int, fname: str) -> np.ndarray[Any, Any]:
    """Load a .npy after checking its header promises exactly the bytes the file holds.

    ``np.load`` trusts the header's shape and would allocate whatever a forged header
    claims; checking first bounds memory by the (already capped) file size.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(fh)
        else:
            raise _Damaged(f"{fname} has an unsupported .npy version {version}")
    except ValueError as exc:
        raise _Damaged(f"{fname} is not a .npy file ({exc})") from None
    if dtype.kind not in _NPY_KINDS or dtype.fields is not None or dtype.hasobject:
        raise _Damaged(f"{fname} holds dtype {dtype}, not a numeric or bool array")
    expected = math.prod(shape) * dtype.itemsize
    if expected != size - fh.tell():
        raise _Damaged(f"{fname} is truncated or padded")
    fh.seek(0)
    try:
        arr = fmt.read_array(fh, allow_pickle=False)
    except ValueError as exc:
        raise _Damaged(f"{fname} could not be loaded ({exc})") from None
    del fortran  # read_array handles the memory order itself
    return cast(np.ndarray[Any, Any], arr)


def _open_regular(path: Path) -> int:
    """Open ``path`` for reading only if it is a regular file (no symlink, FIFO, device).

    Raises FileNotFoundError when it does not exist and _Damaged for anything else.
    O_NONBLOCK keeps a FIFO planted by the student from blocking the open.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise _Damaged(f"{path.name} cannot be opened ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Damaged(f"{path.name} is not a regular file")
    return fd


def _read_capped(path: Path, max_bytes: int) -> bytes:
    """Read a regular file of at most ``max_bytes``; FileNotFoundError if absent."""
    with os.fdopen(_open_regular(path), "rb") as fh:
        if os.fstat(fh.fileno()).st_size > max_bytes:
            raise _Damaged(f"{path.name} is larger than {max_bytes} bytes")
        data = fh.read(max_bytes + 1)  # the file may grow after fstat
    if len(data) > max_bytes:
        raise _Damaged(f"{path.name} is larger than {max_bytes} bytes")
    return data


def read_json_file(outbox: Path, fname: str, max_bytes: int) -> tuple[Any, int]:
    """A JSON file of the outbox and the bytes left of ``max_bytes`` for its arrays.

    Raises FileNotFoundError when it is absent and :class:`DamagedOutput` when it is too
    large, not a regular file or not JSON (the module worker's records use this).
    """
    raw = _read_capped(outbox / fname, max_bytes)
    try:
        return json.loads(raw.decode("utf-8")), max_bytes - len(raw)
    except (ValueError, RecursionError) as exc:
        raise DamagedOutput(f"{fname} is not valid JSON ({type(exc).__name__})") from None


def decode_value(outbox: Path, node: object, budget: int) -> tuple[Any, int]:
    """Resolve a JSON tree written by the encoder (arrays loaded without pickles).

    Returns the value and the bytes of ``budget`` left; raises :class:`DamagedOutput`.
    """
    decoder = _Decoder(outbox, budget)
    try:
        value = decoder.decode(node, 0)
    except (RecursionError, ValueError, TypeError, OSError) as exc:
        raise DamagedOutput(f"{type(exc).__name__}: {exc}") from None
    return value, decoder.budget
