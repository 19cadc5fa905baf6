"""Run one submission's kernel (or any command) confined: bubblewrap + cgroup + unprivileged uid.

Typical use with the notebook runner (``launcher`` wraps the kernel's argv)::

    with SandboxSession(scratch, outbox, None, Limits(), mode="strict") as box:
        km = AsyncKernelManager(kernel_name="python3", transport=box.transport, ip=box.ip,
                                connection_file=str(box.connection_file))
        km.kernel_spec.argv = box.launcher(km.kernel_spec.argv)   # or the runner's hook
        km.kernel_spec.interrupt_mode = "message"
        await km.start_kernel(cwd=str(scratch), env=box.env())
        ...
        why = box.limit_hit()        # "the 2 GiB memory limit" / "the 256-process limit"
    # __exit__ -> teardown(): every process of the submission is dead, mounts gone

Layers, each reported by :class:`Protections` when it cannot be had:

* **bubblewrap**: new user/pid/net/ipc/uts/mount/cgroup namespaces, ``--cap-drop ALL``,
  ``--die-with-parent``, ``--new-session``, ``--disable-userns``, a read-only view of
  ``/usr`` and the Python environment only, tmpfs ``/tmp``, and read-write binds of only
  the scratch (cwd), the outbox and the runtime (connection file + IPC sockets) dirs.
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
import ctypes
import ctypes.util
import errno
import functools
import os
import secrets
import shutil
import signal
import site
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Literal

from grader.sandbox import cgroups
from grader.sandbox.cgroups import Cgroup, CgroupError, CgroupSupport, format_bytes

Mode = Literal["strict", "permissive", "off"]

#: The uid/gid the student's code runs as, inside and outside the user namespace.
NOBODY = 65534
#: ``sockaddr_un.sun_path`` is 108 bytes including the NUL; jupyter_client's IPC sockets
#: are ``<ip>-<port>`` with ``ip = <runtime_dir>/k``; keep room for the suffix.
MAX_RUNTIME_DIR_BYTES = 90
ENTER_PY = Path(__file__).with_name("enter.py")


class SandboxUnavailable(RuntimeError):
    """``mode="strict"`` was asked for but some protection is missing (listed in words)."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            "refusing to run student code without: "
            + "; ".join(missing)
            + " (use --sandbox=permissive to grade anyway, with these reported)"
        )


@dataclass(frozen=True)
class Limits:
    """Per-submission resource limits (defaults are sane for deep-learning homework)."""

    memory_bytes: int = 2 * 2**30
    pids: int = 256
    cpu_quota: float = 1.0  # cores
    file_size_bytes: int = 256 * 2**20
    open_files: int = 256
    scratch_bytes: int = 1 * 2**30  # tmpfs quota of the scratch directory
    outbox_bytes: int = 256 * 2**20  # tmpfs quota of the outbox directory
    tmp_bytes: int = 256 * 2**20  # size of the sandbox's private /tmp


@dataclass(frozen=True)
class Protections:
    """Which protections are in effect; :meth:`missing` says what is off, in words."""

    bubblewrap: bool
    cgroup: str | None  # "v1" | "v2" | None
    unprivileged_uid: bool
    network_isolated: bool
    disk_quota: bool
    reasons: dict[str, str] = field(default_factory=dict, compare=False)

    def missing(self) -> list[str]:
        """Each missing protection as a phrase for the console and every report."""

        def why(key: str) -> str:
            reason = self.reasons.get(key)
            return f" ({reason})" if reason else ""

        out: list[str] = []
        if not self.bubblewrap:
            out.append(
                "no file-system, process or IPC isolation: student code sees the whole "
                "machine" + why("bubblewrap")
            )
        if not self.network_isolated:
            out.append("no network isolation" + why("network"))
        if self.cgroup is None:
            out.append("no memory or process limits (no writable cgroup)" + why("cgroup"))
        if not self.unprivileged_uid:
            out.append(
                "student code runs as the grader's own user, not a separate unprivileged uid"
                + why("uid")
            )
        if not self.disk_quota:
            out.append("no disk quota on the scratch and outbox directories" + why("disk"))
        return out

    @property
    def complete(self) -> bool:
        """True when nothing is missing."""
        return not self.missing()


OFF = Protections(False, None, False, False, False, {"bubblewrap": "sandbox off"})


def _mode_bits_ok(path: Path, want_dir: bool) -> str | None:
    """Can an unrelated uid (only the 'other' bits) reach ``path``? None if yes, else why."""
    p = Path(os.path.realpath(path))
    for anc in reversed(p.parents):
        try:
            if not os.stat(anc).st_mode & stat.S_IXOTH:
                return f"{anc} is not searchable by other users"
        except OSError as exc:
            return f"{anc}: {exc}"
    try:
        mode = os.stat(p).st_mode
    except OSError as exc:
        return f"{p}: {exc}"
    need = stat.S_IROTH | (stat.S_IXOTH if want_dir else 0)
    if mode & need != need:
        return f"{p} is not readable by other users"
    return None


def python_paths() -> list[Path]:
    """Directories the interpreter and its packages live in (bound read-only).

    ``/usr`` (Debian's interpreter and the standard library) is always bound; this adds
    the virtualenv (``sys.prefix``) and any interpreter installed elsewhere.
    """
    cands = {
        Path(sys.prefix),
        Path(sys.exec_prefix),
        Path(sys.base_prefix),
        Path(sys.base_exec_prefix),
        Path(os.path.realpath(sys.executable)).parent.parent,
        *(Path(p) for p in site.getsitepackages()),
        Path(sysconfig.get_paths()["stdlib"]),
    }
    out: list[Path] = []
    for c in sorted(cands, key=lambda x: len(str(x))):
        if not c.exists() or c == Path("/"):
            continue
        if c == Path("/usr") or Path("/usr") in c.parents:
            continue
        if any(o == c or o in c.parents for o in out):
            continue
        out.append(c)
    return out


def check_readable_by_other() -> str | None:
    """None when an unrelated uid can read the interpreter and site-packages, else why.

    uid 65534 is neither owner nor in the group of the files, so only the 'other'
    permission bits count. A Python under a 0700 home directory fails here: use Debian's
    ``/usr/bin/python3.11`` for the venv, or ``chmod o+rX`` the tree.
    """
    checks: list[tuple[Path, bool]] = [(Path(os.path.realpath(sys.executable)), False)]
    checks += [(p, True) for p in python_paths()]
    for sp in site.getsitepackages():
        spp = Path(sp)
        if not spp.is_dir():
            continue
        checks.append((spp, True))
        with os.scandir(spp) as it:
            for entry in it:
                checks.append((Path(entry.path), entry.is_dir()))
    for path, is_dir in checks:
        problem = _mode_bits_ok(path, is_dir)
        if problem:
            return problem
    return None


def system_binds() -> list[str]:
    """bwrap arguments binding the read-only system directories a Python process needs."""
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    for f in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    return args


# The namespaces and privileges of every sandbox; the probe checks exactly these work.
ISOLATION_FLAGS = (
    "--unshare-all",
    "--unshare-user",
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--cap-drop",
    "ALL",
)


def _bwrap_probe(bwrap: str, uid: int | None, gid: int | None) -> str | None:
    """Start an empty sandbox with the real flags; None on success, else the error."""
    cmd = [
        bwrap,
        *ISOLATION_FLAGS,
        *system_binds(),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--",
        "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true",
    ]
    kw: dict[str, object] = {}
    if uid is not None:
        kw = {"user": uid, "group": gid, "extra_groups": []}
    try:
        res = subprocess.run(cmd, capture_output=True, timeout=20, check=False, **kw)  # type: ignore[call-overload]
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip()
        return err or f"exit status {res.returncode}"
    return None


@functools.cache
def detect_protections(uid: int = NOBODY, gid: int = NOBODY) -> Protections:
    """Probe this machine once: bubblewrap usable (as ``uid`` when root), cgroups, quota."""
    reasons: dict[str, str] = {}
    is_root = os.geteuid() == 0

    unprivileged = False
    if not is_root:
        reasons["uid"] = "only root can switch to a separate uid"
    else:
        problem = check_readable_by_other()
        if problem:
            reasons["uid"] = f"uid {uid} cannot read the Python environment: {problem}"
        else:
            unprivileged = True

    bwrap = shutil.which("bwrap")
    bubblewrap = False
    if bwrap is None:
        reasons["bubblewrap"] = (
            "bwrap not installed; run the set-up command (apt install bubblewrap)"
        )
    else:
        err = _bwrap_probe(bwrap, uid if unprivileged else None, gid if unprivileged else None)
        if err:
            reasons["bubblewrap"] = f"bwrap failed: {err.splitlines()[-1]}"
        else:
            bubblewrap = True
    if not bubblewrap:
        reasons["network"] = "needs bubblewrap"

    support = cgroups.detect_cgroup()
    if support.version is None:
        reasons["cgroup"] = support.reason
    if not is_root:
        reasons["disk"] = "mounting a size-limited tmpfs needs root"
    return Protections(
        bubblewrap=bubblewrap,
        cgroup=support.version,
        unprivileged_uid=unprivileged,
        network_isolated=bubblewrap,
        disk_quota=is_root and bubblewrap,
        reasons=reasons,
    )


# --- tmpfs quotas -------------------------------------------------------------------

_MS_NOSUID = 2
_MS_NODEV = 4
_MNT_DETACH = 2


@functools.cache
def libc() -> ctypes.CDLL:
    """libc with errno kept, for mount(2), umount2(2) and unshare(2)."""
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount_tmpfs(target: Path, size: int, uid: int, gid: int) -> None:
    """Mount a ``size``-byte tmpfs owned by ``uid``/``gid`` on ``target`` (the disk quota)."""
    opts = f"size={size},mode=0700,uid={uid},gid={gid}".encode()
    rc = libc().mount(b"tmpfs", str(target).encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, opts)
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"mount tmpfs on {target}: {os.strerror(e)}")


def umount(target: Path) -> None:
    """Lazily unmount ``target`` (MNT_DETACH), so a busy mount still goes."""
    if libc().umount2(str(target).encode(), _MNT_DETACH) != 0:
        e = ctypes.get_errno()
        if e not in (errno.EINVAL, errno.ENOENT):
            raise OSError(e, f"umount {target}: {os.strerror(e)}")


def _copy_plain(src: Path, dst: Path) -> None:
    """Copy directories and regular files only (symlinks, fifos, devices are dropped)."""
    dst.mkdir(parents=True, exist_ok=True)
    with os.scandir(src) as it:
        for entry in it:
            target = dst / entry.name
            if entry.is_dir(follow_symlinks=False):
                _copy_plain(Path(entry.path), target)
            elif entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target, follow_symlinks=False)


def _mount_quota(directory: Path, size: int, uid: int, gid: int) -> None:
    """Turn ``directory`` into a tmpfs of ``size`` bytes, keeping what it contained."""
    directory.mkdir(parents=True, exist_ok=True)
    stage: Path | None = None
    if any(directory.iterdir()):
        stage = directory.with_name(f".{directory.name}.stage-{secrets.token_hex(4)}")
        directory.rename(stage)
        directory.mkdir()
    mount_tmpfs(directory, size, uid, gid)
    if stage is not None:
        try:
            shutil.copytree(stage, directory, symlinks=True, dirs_exist_ok=True)
        except (OSError, shutil.Error) as exc:
            umount(directory)
            directory.rmdir()
            stage.rename(directory)
            raise OSError(
                errno.ENOSPC, f"{directory} does not fit in its {format_bytes(size)} quota"
            ) from exc
        shutil.rmtree(stage)


# --- the session ---------------------------------------------------------------------


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
    """

    def __init__(
        self,
        scratch: Path,
        outbox: Path,
        runtime_dir: Path | None = None,
        limits: Limits | None = None,
        mode: Mode = "strict",
        *,
        uid: int = NOBODY,
        gid: int = NOBODY,
        extra_ro_binds: tuple[Path, ...] = (),
        protections: Protections | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.extra_env = dict(extra_env or {})
        self.scratch = Path(os.path.abspath(scratch))
        self.outbox = Path(os.path.abspath(outbox))
        self.limits = limits or Limits()
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
                support = cgroups.detect_cgroup()
                self.cgroup = self._create_cgroup(support)
            except CgroupError as exc:
                self._degrade(replace(p, cgroup=None), "cgroup", str(exc))
        if self.protections.disk_quota:
            try:
                for d, size in (
                    (self.scratch, self.limits.scratch_bytes),
                    (self.outbox, self.limits.outbox_bytes),
                ):
                    _mount_quota(d, size, self.uid, self.gid)
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

    def _create_cgroup(self, support: CgroupSupport) -> Cgroup:
        lim = self.limits
        return cgroups.create_cgroup(
            support, f"grader-{self._token}", lim.memory_bytes, lim.pids, lim.cpu_quota
        )

    def _degrade(self, new: Protections, key: str, reason: str) -> None:
        reasons = dict(new.reasons)
        reasons[key] = reason
        self.protections = replace(new, reasons=reasons)
        if self.mode == "strict":
            raise SandboxUnavailable(self.protections.missing())

    # -- what the kernel runner needs -------------------------------------------------

    @property
    def transport(self) -> str:
        """``"ipc"`` when the network namespace is unshared (TCP cannot reach in)."""
        return "ipc" if self.protections.network_isolated else "tcp"

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
        venv_bin = str(Path(sys.prefix) / "bin")
        threads = str(max(1, int(self.limits.cpu_quota)))
        return {**self._base_env(venv_bin, threads), **self.extra_env}

    def _base_env(self, venv_bin: str, threads: str) -> dict[str, str]:
        return {
            "PATH": f"{venv_bin}:/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "USER": "student",
            "LANG": "C.UTF-8",
            "TMPDIR": "/tmp",
            "VIRTUAL_ENV": sys.prefix,
            "IPYTHONDIR": "/tmp/.ipython",
            "MPLCONFIGDIR": "/tmp/.matplotlib",
            "MPLBACKEND": "agg",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
        }

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
                stage.mkdir(parents=True, exist_ok=True)
                enter += ["--stage-src", str(src), "--stage-dst", str(stage)]
        lim = self.limits
        enter += ["--rlimit", f"fsize={lim.file_size_bytes}"]
        enter += ["--rlimit", f"nofile={lim.open_files}"]
        enter += ["--rlimit", "core=0"]
        enter.append("--")
        if not p.bubblewrap:
            return enter + list(argv)
        return enter + self._bwrap_args() + ["--"] + list(argv)

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
        if self._private is not None:
            args += ["--ro-bind", str(self._private / "passwd"), "/etc/passwd"]
            args += ["--ro-bind", str(self._private / "group"), "/etc/group"]
        for d in python_paths():
            args += ["--ro-bind", str(d), str(d)]
        for d in self.extra_ro_binds:
            args += ["--ro-bind", self._staged(d), str(d)]
        for d in (self.scratch, self.outbox, self._runtime()):
            args += ["--bind", self._staged(d), str(d)]
        args += ["--chdir", str(self.scratch), "--remount-ro", "/"]
        return args

    def _stage_pairs(self) -> list[tuple[Path, Path]]:
        """(source, stage) for every directory bound into the sandbox by name."""
        if self._private is None or not self.protections.unprivileged_uid:
            return []
        dirs = (self.scratch, self.outbox, self._runtime(), *self.extra_ro_binds)
        # Only directories behind an ancestor that uid 65534 cannot search need a stage
        # (staging costs a mount namespace and a few milliseconds per start).
        return [
            (d, self._private / "b" / str(i))
            for i, d in enumerate(dirs)
            if _mode_bits_ok(d.parent, want_dir=True) is not None
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
                    self._unmount_keep(d)
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

    @staticmethod
    def _unmount_keep(d: Path) -> None:
        stage = d.with_name(f".{d.name}.keep-{secrets.token_hex(4)}")
        _copy_plain(d, stage)
        umount(d)
        for item in stage.iterdir():
            item.rename(d / item.name)
        stage.rmdir()
