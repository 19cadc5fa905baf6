"""The grader's one way of writing a file: atomically, and durably.

Every file the grader keeps (results, batch facts, cache entries, reference values,
reports, indexes, gradebooks) is written by :func:`write_atomic`: the bytes go to a
temporary file in the same folder, which is flushed and fsynced, renamed over the target
(``os.replace``, atomic within one file system), and then the folder itself is fsynced
so the rename survives a power loss. A batch killed at any instant, or a machine that
loses power, therefore leaves either the old file or the new one, complete, never a
half-written one. What a crash can leave is a hidden temporary file
(``.<name>.<random>.tmp``), which :func:`sweep` removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

TMP_SUFFIX = ".tmp"

#: What :func:`write_atomic` writes: the bytes, or a function writing them to a handle
#: (``np.savez``, WeasyPrint's ``write_pdf``) so large outputs are not held twice.
Payload = bytes | Callable[[BinaryIO], Any]


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty, hidden file next to the target, opened for writing.

    Created with mode 0666 so the umask applies as for any file the user writes
    (``tempfile.mkstemp`` would make every result and report readable by its owner
    only); ``O_EXCL`` with a random name never reuses another writer's file.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = folder / f".{name}.{secrets.token_hex(6)}{TMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # pragma: no cover - 48 random bits collided
            continue


def fsync_folder(folder: Path) -> None:
    """Make the entries of ``folder`` (a rename into it) durable."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: Payload) -> None:
    """Replace ``path`` with ``data`` atomically and durably (see the module docstring).

    ``data`` is the bytes, or a function that writes them to the binary handle it is
    given. Missing parent folders are created. On any error the temporary file is
    removed, ``path`` is left as it was, and the error propagates.
    """
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(folder, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_folder(folder)


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_atomic` of ``text`` encoded as UTF-8."""
    write_atomic(path, text.encode("utf-8"))


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (no ``NaN``/``Infinity`` tokens, which other readers reject), UTF-8
    characters kept as they are, with a final newline when indented."""
    text = json.dumps(
        data,
        indent=indent,
        ensure_ascii=False,
        allow_nan=False,
        separators=None if indent is not None else (",", ":"),
    )
    return text + "\n" if indent is not None else text


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` (JSON-ready) as strict JSON with :func:`write_atomic`."""
    write_text_atomic(path, json_text(data, indent=indent))


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is a temporary file of :func:`write_atomic`."""
    return path.name.startswith(".") and path.name.endswith(TMP_SUFFIX)


def sweep(folders: Iterable[Path], older_than_s: float = 600.0) -> None:
    """Remove temporary files a killed writer left in ``folders`` (never a finished
    file). Only files older than ``older_than_s`` go, so a writer still at work in
    another process keeps its own."""
    cutoff = time.time() - older_than_s
    for folder in folders:
        if not folder.is_dir():
            continue
        for tmp in folder.glob(f".*{TMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()
