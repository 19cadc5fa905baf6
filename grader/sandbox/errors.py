"""The sandbox's errors: grader-side problems, all under :class:`grader.errors.SandboxError`.

A student's mistake is never one of these: it is reported in the :class:`Executed` record
(failed cells, an unreadable notebook, a module that does not import). These say that
the grader cannot run student code here, or that a request asks for something this
sandbox does not do yet.
"""

from __future__ import annotations

from collections.abc import Sequence

from grader.errors import SandboxError

__all__ = [
    "CgroupError",
    "KernelStartError",
    "SandboxError",
    "SandboxUnavailable",
    "UnsupportedRequest",
    "WarmUnavailable",
]

#: What :class:`SandboxUnavailable` tells the grader's user to do by default.
PERMISSIVE_HINT = "use --sandbox=permissive to grade anyway, with these reported"


class SandboxUnavailable(SandboxError):
    """``mode="strict"`` was asked for but some protection is missing (listed in words)."""

    def __init__(self, missing: Sequence[str], hint: str = PERMISSIVE_HINT) -> None:
        self.missing = list(missing)
        super().__init__(
            "refusing to run student code without: " + "; ".join(self.missing) + f" ({hint})"
        )


class CgroupError(SandboxError):
    """A cgroup could not be created, configured, joined or removed."""


class KernelStartError(SandboxError):
    """The kernel (or the harness inside it) did not start: a grader-side problem."""


class UnsupportedRequest(SandboxError):
    """An :class:`~grader.sandbox.ExecutionRequest` asks for what this sandbox cannot do yet
    (a GPU, provided files, calls of notebook functions)."""


class WarmUnavailable(SandboxError):
    """A warm template could not be started or used (the sandbox falls back to cold)."""
