"""Warm or cold: the one place that decides which session confines a submission.

Warm (a fork of this thread's template, :mod:`grader.sandbox.warm`) when the mode is
strict, every protection is available, ``GRADER_WARM`` is not ``0``, the scratch lies
under ``/tmp`` and the template starts; cold (a new bubblewrap sandbox,
:class:`grader.sandbox.isolation.SandboxSession`) otherwise. Kernels and module workers
choose alike; both sessions confine alike (:mod:`grader.sandbox.confine`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from grader.sandbox import confine
from grader.sandbox import warm as warm_starts
from grader.sandbox.isolation import SandboxSession
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.records import Mode
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
) -> Iterator[Session]:
    """One submission's session, open for the ``with`` block: warm when possible.

    ``work`` is the scratch copy (the cwd), ``outbox`` where answers are written. Every
    kernel or worker started through the session shares its cgroup, quotas and scratch.
    ``frameworks`` are what a warm template preloads. ``warm``: ``None`` follows
    ``GRADER_WARM``, ``False`` forces the cold path (the preflight kernel: a template
    belongs to a grading thread), ``True`` asks for warm even when ``GRADER_WARM=0``
    (still cold where warm starts cannot be had). ``provided``: (instructor's file,
    placeholder in ``work``) pairs, bound read-only over the placeholders.
    """
    env = confine.extra_env()
    if _wants_warm(mode, warm) and usable_paths(work, outbox):
        template = warm_starts.thread_template(warm_starts.preload(frameworks), limits, env)
        if template is not None:
            with template.session(work, outbox, limits, provided=provided) as box:
                yield box
            return
    with SandboxSession(
        work, outbox, None, limits, mode, extra_env=env, provided=tuple(provided)
    ) as cold:
        yield cold


def _wants_warm(mode: Mode, warm: bool | None) -> bool:
    if warm is False or mode != "strict":
        return False
    return warm is True or warm_starts.warm_enabled()
