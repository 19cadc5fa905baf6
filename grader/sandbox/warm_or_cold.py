"""Warm or cold: the one place that decides which session confines a submission.

Warm (a fork of this thread's template, :mod:`grader.sandbox.warm`) when the mode is
strict, every protection is available, ``GRADER_WARM`` is not ``0``, the scratch lies
under ``/tmp`` and the template starts; cold (a new bubblewrap sandbox,
:class:`grader.sandbox.isolation.SandboxSession`) otherwise. Kernels and module workers
choose alike; both sessions confine alike (:mod:`grader.sandbox.confine`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from grader.sandbox import confine
from grader.sandbox import warm as warm_starts
from grader.sandbox.gpus import GpuGrant
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.protections import detect_protections
from grader.sandbox.records import DATASETS_MOUNT, DatasetBind, Mode
from grader.sandbox.session import Session
from grader.sandbox.warm_session import usable_paths


@contextlib.contextmanager
def open_session(
    work: Path,
    outbox: Path,
    limits: ExecutionLimits,
    mode: Mode,
    frameworks: Sequence[str] = (),
    *,
    warm: bool | None = None,
    provided: Sequence[tuple[Path, Path]] = (),
    grant: GpuGrant | None = None,
    datasets: Sequence[DatasetBind] = (),
    absolute: Sequence[tuple[Path, str]] = (),
) -> Iterator[Session]:
    """One submission's session, open for the ``with`` block: warm when possible.

    ``work`` is the scratch copy (the cwd), ``outbox`` where answers are written. Every
    kernel or worker started through the session shares its cgroup, quotas and scratch.
    ``frameworks`` are what a warm template preloads. ``warm``: ``None`` follows
    ``GRADER_WARM``, ``False`` forces the cold path (the preflight kernel: a template
    belongs to a grading thread), ``True`` asks for warm even when ``GRADER_WARM=0``
    (still cold where warm starts cannot be had). ``provided``: (instructor's file,
    placeholder in ``work``) pairs, bound read-only over the placeholders. ``grant``
    (GPUs lent to the run) and ``datasets`` (data sets bound read-only) take the cold
    path: a warm template's namespace has neither the device nodes nor the data binds.
    ``absolute``: (instructor's file, absolute target such as ``/kaggle/input/x.csv``)
    pairs, bound read-only at exactly that path; they take the cold path too (the warm
    child's root is the template's, made before the submission was known).
    """
    env = confine.extra_env()
    # Without bubblewrap (permissive on a bare machine, or off) nothing can be bound:
    # the kernel is then told the cache folders themselves.
    bound = bool(datasets) and mode != "off" and detect_protections().bubblewrap
    data_binds, run_env = dataset_binds(datasets, bound=bound)
    if grant is not None:
        run_env.update(grant.env)
    data_binds = (*data_binds, *((Path(src), target) for src, target in absolute))
    special = grant is not None or bool(datasets) or bool(absolute)
    if not special and _wants_warm(mode, warm) and usable_paths(work, outbox):
        wanted = preloaded_for(frameworks, work)
        template = warm_starts.thread_template(warm_starts.preload(wanted), limits, env)
        if template is not None:
            with template.session(work, outbox, limits, provided=provided) as box:
                yield box
            return
    with SandboxSession(
        work,
        outbox,
        None,
        limits,
        mode,
        extra_env=env,
        provided=tuple(provided),
        device_binds=grant.binds if grant is not None else (),
        data_binds=data_binds,
        run_env=run_env,
    ) as cold:
        yield cold


def dataset_binds(
    datasets: Sequence[DatasetBind], *, bound: bool
) -> tuple[tuple[tuple[Path, str], ...], dict[str, str]]:
    """The read-only binds of ``datasets`` at ``/grader-data/NAME`` and the kernel's
    ``GRADER_DATASETS`` (JSON: name to folder) for the loader shims. ``bound=False``
    (the sandbox off): no binds, the variable names the cache folders themselves."""
    if not datasets:
        return (), {}
    binds = tuple((d.source, f"{DATASETS_MOUNT}/{d.name}") for d in datasets)
    where = {
        d.name: (target if bound else str(d.source))
        for d, (_, target) in zip(datasets, binds, strict=True)
    }
    return (binds if bound else ()), {"GRADER_DATASETS": json.dumps(where, sort_keys=True)}


#: Declared frameworks preloaded only for a submission whose code mentions them: a
#: template holding TensorFlow forks noticeably slower (a larger address space), so a
#: torch-only submission of a rubric that also accepts Keras keeps the torch template.
#: Keys are import names; values the words that reveal their use.
ON_MENTION = {
    "tensorflow": re.compile(rb"\b(?:tensorflow|keras)\b"),
    "jax": re.compile(rb"\bjax\b"),
}
_SCANNED_SUFFIXES = (".py", ".ipynb")
_SCAN_BYTES = 4 * 2**20  # per file: enough for any notebook's imports


def preloaded_for(frameworks: Sequence[str], work: Path) -> tuple[str, ...]:
    """``frameworks`` without those of :data:`ON_MENTION` that no ``.py``/``.ipynb`` file
    of the submission's scratch copy mentions (a choice of speed only: an unmentioned
    framework that is imported after all is imported in the kernel, as in a cold one)."""
    optional = [f for f in frameworks if f in ON_MENTION]
    if not optional:
        return tuple(frameworks)
    found: set[str] = set()
    for path in _scanned_files(work):
        head = _head(path)
        found.update(f for f in optional if ON_MENTION[f].search(head))
        if len(found) == len(optional):
            break
    return tuple(f for f in frameworks if f not in ON_MENTION or f in found)


def _scanned_files(work: Path) -> list[Path]:
    """The submission's ``.py``/``.ipynb`` files, symbolic links never followed."""
    out: list[Path] = []
    for root, dirs, files in os.walk(work, followlinks=False):
        dirs.sort()
        out.extend(Path(root, f) for f in sorted(files) if f.endswith(_SCANNED_SUFFIXES))
        if len(out) >= 200:
            break
    return out[:200]


def _head(path: Path) -> bytes:
    """The first bytes of a regular file (never a link, FIFO or device), else b""."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, _SCAN_BYTES)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _wants_warm(mode: Mode, warm: bool | None) -> bool:
    if warm is False or mode != "strict":
        return False
    return warm is True or warm_starts.warm_enabled()
