"""The cold session: one submission's kernel (or any command) in a new bubblewrap sandbox.

Typical use with the notebook runner (``launcher`` wraps the kernel's argv)::

    with SandboxSession(scratch, outbox, None, ExecutionLimits(), mode="strict") as box:
        km = AsyncKernelManager(kernel_name="python3", transport=box.transport, ip=box.ip,
                                connection_file=str(box.connection_file))
        km.kernel_spec.argv = box.launcher(km.kernel_spec.argv)   # or the runner's hook
        km.kernel_spec.interrupt_mode = "message"
        await km.start_kernel(cwd=str(scratch), env=box.env())
        ...
        why = box.limit_hit()        # "the 2 GiB memory limit" / "the 256-process limit"
    # __exit__ -> teardown(): every process of the submission is dead, mounts gone

It implements :class:`grader.sandbox.session.Session`, as the warm session does; the
limits come from :mod:`grader.sandbox.confine`, shared by both. Layers, each reported by
:class:`~grader.sandbox.protections.Protections` when it cannot be had:

* **bubblewrap**: new user/pid/net/ipc/uts/mount/cgroup namespaces, ``--cap-drop ALL``,
  ``--die-with-parent``, ``--new-session``, ``--disable-userns``, a read-only view of
  ``/usr`` and the Python environment only (with the grader's own and the ``reference``
  packages masked there: :func:`~grader.sandbox.protections.python_binds`), tmpfs
  ``/tmp``, read-write binds of only the scratch (cwd), the outbox and the runtime
  (connection file + IPC sockets) dirs, and read-only binds of the provided files.
* **cgroup** (v1 or v2, see :mod:`grader.sandbox.cgroups`): memory, pids and CPU limits,
  counters for :meth:`SandboxSession.limit_hit`, and a kill of the whole tree at teardown.
* **unprivileged uid**: :mod:`grader.sandbox.enter` drops from root to uid/gid 65534
  before bubblewrap runs, so uid 65534 in the namespace is not real root outside.
* **disk quota**: the scratch and outbox directories become size-limited tmpfs mounts
  (root only); tmpfs pages are also charged to the session's memory cgroup.
* rlimits: file size, open files, no core dumps.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from grader.sandbox import cgroups, confine
from grader.sandbox.cgroups import Cgroup
from grader.sandbox.errors import CgroupError, SandboxUnavailable
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.mounts import mount_quota, umount, unmount_keep
from grader.sandbox.protections import (
    ISOLATION_FLAGS,
    NOBODY,
    OFF,
    Protections,
    detect_protections,
    mode_bits_ok,
    python_binds,
    system_binds,
)
from grader.sandbox.records import Mode
from grader.sandbox.session import Transport

#: ``sockaddr_un.sun_path`` is 108 bytes including the NUL; jupyter_client's IPC sockets
#: are ``<ip>-<port>`` with ``ip = <runtime_dir>/k``; keep room for the suffix.
MAX_RUNTIME_DIR_BYTES = 90
ENTER_PY = Path(__file__).with_name("enter.py")


class SandboxSession:
    """One submission's sandbox; use as a context manager (``__exit__`` tears down).

    ``scratch`` is the fresh writable copy of the student's files (the kernel's cwd),
    ``outbox`` where the harness writes harvested answers, ``runtime_dir`` where the
    connection file and IPC sockets live (``None``: a short private ``/tmp/gsb-XXXXXXXX``
    is created and removed again). ``mode``: ``"strict"`` raises
    :class:`SandboxUnavailable` unless every protection is available; ``"permissive"``
    runs with what exists (see ``self.protections.missing()``); ``"off"`` runs the
    command as a plain subprocess.

    With the disk quota in effect, ``scratch`` and ``outbox`` are tmpfs mounts while the
    session is open: teardown discards the scratch and copies the outbox's regular files
    (no symlinks) back to disk.

    ``provided``: (instructor's file or folder, its placeholder inside ``scratch``)
    pairs, each bound read-only over its placeholder inside the sandbox (without
    bubblewrap the caller copies them instead: :mod:`grader.sandbox.provided`).

    ``device_binds``: bubblewrap arguments exposing lent GPUs
    (:func:`grader.sandbox.gpus.bwrap_args`), placed after the sandbox's own ``/dev``.
    ``data_binds``: (data set folder, absolute path inside) pairs, bound read-only
    (:mod:`grader.datasets`); without bubblewrap nothing is bound and the environment's
    ``GRADER_DATASETS`` names the folders where they are. ``run_env``: variables the
    run needs in every mode (the lent GPUs, the data sets): sandboxed they join ``env()``;
    with the sandbox off the runners add them to their own plain environments.
    """

    def __init__(
        self,
        scratch: Path,
        outbox: Path,
        runtime_dir: Path | None = None,
        limits: ExecutionLimits | None = None,
        mode: Mode = "strict",
        *,
        uid: int = NOBODY,
        gid: int = NOBODY,
        extra_ro_binds: tuple[Path, ...] = (),
        protections: Protections | None = None,
        extra_env: Mapping[str, str] | None = None,
        provided: tuple[tuple[Path, Path], ...] = (),
        device_binds: tuple[str, ...] = (),
        data_binds: tuple[tuple[Path, str], ...] = (),
        run_env: Mapping[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(extra_env or {})
        self.run_env = dict(run_env or {})
        self.device_binds = tuple(device_binds)
        self.data_binds = tuple((Path(os.path.abspath(src)), dst) for src, dst in data_binds)
        self.provided = tuple(
            (Path(os.path.abspath(src)), Path(os.path.abspath(dst))) for src, dst in provided
        )
        self.scratch = Path(os.path.abspath(scratch))
        self.outbox = Path(os.path.abspath(outbox))
        self.limits = limits or ExecutionLimits()
        self.mode: Mode = mode
        self.uid = uid
        self.gid = gid
        self.extra_ro_binds = tuple(Path(os.path.abspath(p)) for p in extra_ro_binds)
        self._own_runtime = runtime_dir is None
        self.runtime_dir = Path(os.path.abspath(runtime_dir)) if runtime_dir else None
        if self.runtime_dir is not None and len(os.fsencode(self.runtime_dir)) > (
            MAX_RUNTIME_DIR_BYTES
        ):
            raise ValueError(
                f"runtime_dir {self.runtime_dir} is too long for Unix socket paths "
                f"(max {MAX_RUNTIME_DIR_BYTES} bytes); pass None for a short one"
            )
        if mode == "off":
            self.protections = OFF
        else:
            self.protections = protections or detect_protections(uid, gid)
            if mode == "strict" and self.protections.missing():
                raise SandboxUnavailable(self.protections.missing())
        self.cgroup: Cgroup | None = None
        self._mounted: list[Path] = []
        self._private: Path | None = None
        self._token = secrets.token_hex(4)
        self._started = False
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> SandboxSession:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.teardown()

    def start(self) -> None:
        """Create the runtime dir, the cgroup and the quota mounts (``__enter__`` does)."""
        if self._started:
            return
        self._started = True
        if self.runtime_dir is None:
            self.runtime_dir = Path(tempfile.mkdtemp(prefix="gsb-", dir="/tmp"))
        else:
            self.runtime_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.runtime_dir, 0o700)
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        if self.mode == "off":
            return
        try:
            self._start_confined()
        except BaseException:
            self.teardown()
            raise

    def _start_confined(self) -> None:
        p = self.protections
        if p.cgroup is not None:
            try:
                self.cgroup = confine.new_cgroup(self.limits, f"grader-{self._token}")
            except CgroupError as exc:
                self._degrade(replace(p, cgroup=None), "cgroup", str(exc))
        if self.protections.disk_quota:
            try:
                for d, size in confine.quotas(self.limits, self.scratch, self.outbox):
                    mount_quota(d, size, self.uid, self.gid)
                    self._mounted.append(d)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise
                self._degrade(replace(self.protections, disk_quota=False), "disk", str(exc))
        if self.protections.bubblewrap:
            self._private = Path(tempfile.mkdtemp(prefix="gsbe-", dir="/tmp"))
            os.chmod(self._private, 0o755)
            home = "/tmp"
            (self._private / "passwd").write_text(
                f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
                f"student:x:{self.uid}:{self.gid}:student:{home}:/usr/sbin/nologin\n"
            )
            (self._private / "group").write_text(f"root:x:0:\nstudent:x:{self.gid}:\n")
            for f in self._private.iterdir():
                os.chmod(f, 0o644)

    def _degrade(self, new: Protections, key: str, reason: str) -> None:
        reasons = dict(new.reasons)
        reasons[key] = reason
        self.protections = replace(new, reasons=reasons)
        if self.mode == "strict":
            raise SandboxUnavailable(self.protections.missing())

    # -- what the kernel runner needs -------------------------------------------------

    @property
    def transport(self) -> Transport:
        """``"ipc"`` when the network namespace is unshared (TCP cannot reach in)."""
        return "ipc" if self.protections.network_isolated else "tcp"

    @property
    def runtime(self) -> Path:
        """The directory of the connection file and IPC sockets (and a module worker's inbox)."""
        return self._runtime()

    @property
    def ip(self) -> str:
        """The kernel manager's ``ip``: a socket path prefix for IPC, loopback for TCP."""
        if self.transport == "ipc":
            return str(self._runtime() / "k")
        return "127.0.0.1"

    @property
    def connection_file(self) -> Path:
        """Where the connection file must be written (a bind-mounted directory)."""
        return self._runtime() / "kernel.json"

    def _runtime(self) -> Path:
        if self.runtime_dir is None:
            raise RuntimeError("SandboxSession not started; use it as a context manager")
        return self.runtime_dir

    def env(self) -> dict[str, str]:
        """The complete environment for the kernel (pass as ``env=`` to start_kernel).

        Sandboxed, the same variables are also imposed with ``bwrap --clearenv``, so
        whatever the manager adds (``JPY_PARENT_PID``, which makes ipykernel exit inside
        a PID namespace) or the grader's own environment holds never reaches the student.
        """
        if self.mode == "off":
            env = dict(os.environ)
            env.pop("JPY_PARENT_PID", None)
            return env
        return confine.sandbox_env(self.limits, {**self.extra_env, **self.run_env})

    def launcher(self, argv: list[str]) -> list[str]:
        """Wrap ``argv`` (e.g. the kernel spec's argv) so it runs confined.

        The result is ``python -I -S enter.py <cgroup/uid/rlimit options> -- bwrap
        <namespaces and binds> -- argv``; ``argv[0]`` must be an absolute path inside
        the bound directories (``sys.executable`` is) or found on ``env()['PATH']``.
        """
        if self.mode == "off":
            return list(argv)
        runtime = self._runtime()
        p = self.protections
        enter: list[str] = [sys.executable, "-I", "-S", str(ENTER_PY)]
        if self.cgroup is not None:
            for f in self.cgroup.procs_files():
                enter += ["--cgroup-procs", str(f)]
        if p.unprivileged_uid:
            enter += ["--uid", str(self.uid), "--gid", str(self.gid)]
            enter += ["--own", str(self.scratch), "--own", str(self.outbox)]
            enter += ["--share", str(runtime)]
            for src, stage in self._stage_pairs():
                if src.is_dir():
                    stage.mkdir(parents=True, exist_ok=True)
                else:  # a provided file is bound onto a file
                    stage.parent.mkdir(parents=True, exist_ok=True)
                    stage.touch()
                enter += ["--stage-src", str(src), "--stage-dst", str(stage)]
        for name, value in confine.rlimits(self.limits).items():
            enter += ["--rlimit", f"{name}={value}"]
        enter.append("--")
        if not p.bubblewrap:
            return enter + list(argv)
        return enter + self._bwrap_args() + ["--"] + list(argv)

    def worker_launcher(self, argv: list[str]) -> list[str]:
        """Wrap a module worker's argv: confined exactly as a kernel."""
        return self.launcher(argv)

    def worker_env(self) -> dict[str, str] | None:
        """The module worker's environment (None with the sandbox off: the runner's own)."""
        return self.env() if self.mode != "off" else None

    def _bwrap_args(self) -> list[str]:
        bwrap = shutil.which("bwrap") or "bwrap"
        args = [
            bwrap,
            *ISOLATION_FLAGS,
            "--uid",
            str(self.uid),
            "--gid",
            str(self.gid),
            "--hostname",
            self._hostname(),
            "--clearenv",
        ]
        for k, v in self.env().items():
            args += ["--setenv", k, v]
        args += system_binds()
        # bwrap mounts in argument order: the private /tmp must come before the binds, or
        # it would hide a venv or scratch that lives under /tmp (a clone in /tmp, pytest).
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/dev/shm"]
        args += self.device_binds  # only the lent GPUs' nodes, after the private /dev
        if self._private is not None:
            args += ["--ro-bind", str(self._private / "passwd"), "/etc/passwd"]
            args += ["--ro-bind", str(self._private / "group"), "/etc/group"]
        args += python_binds()
        for d in self.extra_ro_binds:
            args += ["--ro-bind", self._staged(d), str(d)]
        for d in (self.scratch, self.outbox, self._runtime()):
            args += ["--bind", self._staged(d), str(d)]
        # After the scratch's bind, so each lies over its placeholder in the scratch.
        for src, dst in self.provided:
            args += ["--ro-bind", self._staged(src), str(dst)]
        for src, target in self.data_binds:
            args += ["--ro-bind", self._staged(src), target]
        args += ["--chdir", str(self.scratch), "--remount-ro", "/"]
        return args

    def _stage_pairs(self) -> list[tuple[Path, Path]]:
        """(source, stage) for every directory bound into the sandbox by name."""
        if self._private is None or not self.protections.unprivileged_uid:
            return []
        dirs = (
            self.scratch,
            self.outbox,
            self._runtime(),
            *self.extra_ro_binds,
            *(src for src, _ in self.provided),
            *(src for src, _ in self.data_binds),
        )
        # Only directories behind an ancestor that uid 65534 cannot search need a stage
        # (staging costs a mount namespace and a few milliseconds per start).
        return [
            (d, self._private / "b" / str(i))
            for i, d in enumerate(dirs)
            if mode_bits_ok(d.parent, want_dir=True) is not None
        ]

    def _staged(self, d: Path) -> str:
        for src, stage in self._stage_pairs():
            if src == d:
                return str(stage)
        return str(d)

    # -- after the run -----------------------------------------------------------------

    def limit_hit(self) -> str | None:
        """The limit that stopped the submission, in words, from the cgroup's counters."""
        if self.cgroup is None:
            return None
        return self.cgroup.limit_hit()

    def pids(self) -> set[int]:
        """Processes of this submission still alive (in the cgroup, or by cmdline)."""
        found = set(cgroups.pids_with_marker(self._marker()))
        if self.cgroup is not None:
            found |= self.cgroup.pids()
        return found

    def _hostname(self) -> str:
        return f"sandbox-{self._token}"

    def _marker(self) -> str:
        # bwrap's own command line carries the session's unique host name.
        return f"\0--hostname\0{self._hostname()}\0"

    def teardown(self) -> None:
        """Kill every process of the submission, remove the cgroup, unmount, clean up.

        Idempotent. Processes are found through the cgroup (so ``setsid`` and daemonised
        children die too); without one, killing bubblewrap's outer process collapses
        its PID namespace, which takes every process inside with it.
        """
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        if self.mode != "off":
            for pid in cgroups.pids_with_marker(self._marker()):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if self.cgroup is not None:
            try:
                self.cgroup.remove()
            except CgroupError as exc:
                errors.append(str(exc))
        for d in reversed(self._mounted):
            try:
                if d == self.outbox:
                    unmount_keep(d)
                else:
                    umount(d)
            except OSError as exc:
                errors.append(str(exc))
        self._mounted.clear()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
        if self._own_runtime and self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
        if errors:
            raise CgroupError("; ".join(errors))
