"""The one protocol of a submission's sandbox, which the cold and the warm session implement.

A session confines everything one submission runs (its kernel, or each of its module
workers): its own cgroup, quotas and namespaces, all set up by ``__enter__`` and undone
by ``__exit__``. The notebook and module runners only see this protocol; which class
backs it (cold :class:`grader.sandbox.isolation.SandboxSession`, warm
:class:`grader.sandbox.warm_session.WarmSession`) is decided once, in
:func:`grader.sandbox.warm_or_cold.open_session`. Both take their limits from
:mod:`grader.sandbox.confine`, so a limit is turned into its mechanism in one place.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self

Transport = Literal["tcp", "ipc"]
"""How the grader reaches a kernel: TCP on loopback, or Unix sockets (``ipc``) in the
runtime directory when the kernel's network namespace is its own."""


class Session(Protocol):
    """One submission's confinement, open between ``__enter__`` and ``__exit__``."""

    def __enter__(self) -> Self:
        """Create the cgroup, the quota mounts and the runtime directory."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Kill every process of the submission, remove its cgroup, unmount, clean up."""
        ...

    @property
    def runtime(self) -> Path:
        """The directory of the kernel's connection file and sockets; a module worker's
        inbox is made in it."""
        ...

    @property
    def transport(self) -> Transport:
        """How the kernel's sockets are reached."""
        ...

    def launcher(self, argv: list[str]) -> list[str]:
        """The argv that starts the kernel ``argv`` (``python -m ipykernel_launcher -f
        CONNECTION_FILE``) confined."""
        ...

    def worker_launcher(self, argv: list[str]) -> list[str]:
        """The argv that starts the module worker ``argv`` (``python ... -c SOURCE ARGS``)
        confined; every call gives a new process."""
        ...

    def worker_env(self) -> dict[str, str] | None:
        """The environment to start a module worker with (None: the runner's own)."""
        ...

    def limit_hit(self) -> str | None:
        """The limit that stopped the submission, in words (``"the 2 GiB memory limit"``)."""
        ...
