"""One submission on a warm template (:mod:`grader.sandbox.warm`): quotas, cgroup, kernel.

:class:`WarmSession` implements :class:`grader.sandbox.session.Session`, as the cold
:class:`grader.sandbox.isolation.SandboxSession` does: the same quota mounts and cgroup
(both from :mod:`grader.sandbox.confine`), but the kernel (:meth:`WarmSession.launcher`)
or the module worker (:meth:`WarmSession.worker_launcher`) is forked from the template
by :mod:`grader.sandbox.warm_client` instead of started in a new sandbox.
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from grader.sandbox import confine
from grader.sandbox.cgroups import Cgroup
from grader.sandbox.enter import _chown_tree
from grader.sandbox.errors import CgroupError
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.mounts import libc, mount_quota, umount, unmount_keep
from grader.sandbox.protections import python_paths
from grader.sandbox.session import Transport

if TYPE_CHECKING:
    from grader.sandbox.warm import WarmTemplate

CLIENT_PY = Path(__file__).with_name("warm_client.py")
_MS_BIND = 4096
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_REC = 0x4000


class WarmSession:
    """One submission on a warm template: its cgroup, its quotas, its kernel.

    As in a cold sandbox, ``work`` and ``outbox`` become size-limited tmpfs mounts at
    their own paths (teardown discards the scratch and copies the outbox's regular files
    back). Each is also bound into ``<runs>/<token>``, whence the mounts propagate into
    the template's view; the forked child binds them back at their own paths over a
    fresh ``/tmp``, with the runtime directory ``<runs>/<token>/rt``. The kernel sees
    the same paths as the grader, so ``work``, ``outbox`` and the runtime directory must
    lie under ``/tmp`` (:func:`usable_paths`).
    """

    def __init__(
        self,
        template: WarmTemplate,
        work: Path,
        outbox: Path,
        limits: ExecutionLimits,
        *,
        provided: Sequence[tuple[Path, Path]] = (),
    ) -> None:
        self.template = template
        self.provided = tuple((Path(src), Path(dst)) for src, dst in provided)
        self.limits = limits
        self.work = Path(os.path.abspath(work))
        self.outbox = Path(os.path.abspath(outbox))
        self.token = secrets.token_hex(4)
        self.run_dir = template.runs / self.token
        self.runtime_dir = self.run_dir / "rt"
        self.cgroup: Cgroup | None = None
        self._mounted: list[Path] = []
        self._bound: list[Path] = []
        self._provided_mounts: list[Path] = []
        self._closed = False
        self.probe = False  # the child stops once confined (WarmTemplate's check)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def start(self) -> None:
        """Quota mounts, their binds into the run directory, the runtime dir, the cgroup."""
        t = self.template
        self.run_dir.mkdir(mode=0o700)
        # The quotas are the template's (part of its key); the cgroup is the submission's.
        for d, size in confine.quotas(t.limits, self.work, self.outbox):
            mount_quota(d, size, t.uid, t.gid)
            self._mounted.append(d)
            _chown_tree(str(d), t.uid, t.gid)
            if d == self.work:
                self._bind_provided()
            target = self.run_dir / d.name
            target.mkdir()
            # Recursive: the provided files' read-only mounts inside the scratch come along.
            flags = _MS_BIND | _MS_REC
            if libc().mount(str(d).encode(), str(target).encode(), None, flags, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"bind {d} on {target}: {os.strerror(err)}")
            self._bound.append(target)
        self.runtime_dir.mkdir(mode=0o700)
        os.chown(self.run_dir, t.uid, t.gid)
        self.cgroup = confine.new_cgroup(self.limits, f"grader-{self.token}")

    def _bind_provided(self) -> None:
        """Bind each provided file read-only over its placeholder in the scratch tmpfs (as
        root, on the host; the scratch's recursive bind carries them to the child, and a
        copied mount keeps its read-only flag)."""
        for src, dst in self.provided:
            if libc().mount(str(src).encode(), str(dst).encode(), None, _MS_BIND, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"bind {src} on {dst}: {os.strerror(err)}")
            self._provided_mounts.append(dst)
            ro = _MS_BIND | _MS_REMOUNT | _MS_RDONLY
            if libc().mount(None, str(dst).encode(), None, ro, None) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"make {dst} read-only: {os.strerror(err)}")

    @property
    def runtime(self) -> Path:
        """The runtime directory (connection file, IPC sockets, a worker's inbox)."""
        return self.runtime_dir

    @property
    def transport(self) -> Transport:
        """Always IPC sockets: the forked kernel has a network namespace of its own."""
        return "ipc"

    def worker_env(self) -> dict[str, str] | None:
        """The warm client's environment; the worker's own comes with the fork request."""
        return confine.launcher_env()

    def launcher(self, argv: list[str]) -> list[str]:
        """Replace the kernel's argv by the client that asks the template for a fork."""
        conn = argv[argv.index("-f") + 1]
        return self._client({"mode": "kernel", "connection_file": conn}, share=True)

    def worker_launcher(self, argv: list[str]) -> list[str]:
        """Replace a ``python ... -c SOURCE ARGS...`` argv (the module worker's) by the
        client that asks the template for a fork running ``SOURCE`` with ``ARGS``.

        Each call is a new fork (a worker restarted after a hung call is a fresh child).
        The runtime directory (the worker's inbox) stays the grader's, read-only to the
        child: unlike a kernel's, it holds no file the child must own.
        """
        at = argv.index("-c")
        os.chmod(self.runtime_dir, 0o755)
        return self._client({"mode": "python", "source": argv[at + 1], "argv": argv[at + 2 :]})

    def _client(self, what: dict[str, object], *, share: bool = False) -> list[str]:
        t = self.template
        assert self.cgroup is not None and t.host_pid is not None
        keep = [
            [str(self.runtime_dir), str(self.runtime_dir)],
            [str(self.run_dir / self.work.name), str(self.work)],
            [str(self.run_dir / self.outbox.name), str(self.outbox)],
        ]
        keep += [[str(d), str(d)] for d in python_paths() if Path("/tmp") in d.parents]
        child = {
            "keep": keep,
            "work": str(self.work),
            "env": t.env(),
            "hostname": f"sandbox-{self.token}",
            "tmp_bytes": t.limits.tmp_bytes,
            "rlimits": confine.rlimits(t.limits),
            "launcher": "ipykernel_launcher",
            "probe": self.probe,
            **what,
        }
        request = {
            "socket": str(t.socket),
            "template_pid": t.host_pid,
            "cgroup_procs": [str(f) for f in self.cgroup.procs_files()],
            "runtime_dir": str(self.runtime_dir),
            "share_runtime_dir": share,
            "uid": t.uid,
            "gid": t.gid,
            "child": child,
        }
        return [sys.executable, "-I", "-S", str(CLIENT_PY), json.dumps(request)]

    def limit_hit(self) -> str | None:
        """The limit that stopped the submission, in words, from the cgroup's counters."""
        return self.cgroup.limit_hit() if self.cgroup is not None else None

    def teardown(self) -> None:
        """Kill every process of the submission, remove its cgroup, unmount, clean up."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        if self.cgroup is not None:
            try:
                self.cgroup.remove()
            except CgroupError as exc:
                errors.append(str(exc))
        for d in [
            *reversed(self._bound),
            *reversed(self._provided_mounts),
            *reversed(self._mounted),
        ]:
            try:
                if d == self.outbox:
                    unmount_keep(d)
                else:
                    umount(d)
            except OSError as exc:
                errors.append(str(exc))
        self._bound.clear()
        self._provided_mounts.clear()
        self._mounted.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if errors:
            raise CgroupError("; ".join(errors))


def usable_paths(*paths: Path) -> bool:
    """Whether a warm kernel can see ``paths`` at their own names (all under /tmp)."""
    tmp = Path("/tmp")
    return all(tmp in Path(os.path.realpath(p)).parents for p in paths)
