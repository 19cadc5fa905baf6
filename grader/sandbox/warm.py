"""Warm starts: fork each submission's kernel from a sandboxed template process.

A cold kernel start (new ``bwrap`` sandbox, new interpreter, ``import ipykernel``, and
the student's ``import torch``) costs about 2 s per submission. A :class:`WarmTemplate`
(one per grading worker thread, see :func:`thread_template`) is a process started once,
inside a sandbox like a kernel's (uid 65534, its own namespaces and cgroup, no
capabilities; without ``--disable-userns`` so its children can make user namespaces),
that imports ``ipykernel``, ``numpy`` and the frameworks the request names (``torch``),
and then forks one kernel per submission. Its source, :mod:`grader.sandbox.warm_template`, is
sent in as text; nothing of the grader's tree is bound in. The template holds nothing
secret (no reference values, no hidden inputs): a forked child inherits its memory.

Per submission (:class:`WarmSession`): a fresh cgroup with the submission's limits, a
run directory ``<runs>/<token>`` holding the scratch copy (``work``), the ``outbox``
and the runtime directory (connection file, IPC sockets), all on the template's
size-limited ``runs`` tmpfs (the disk quota; its pages are charged to the writer's
memory cgroup). The kernel manager launches :mod:`grader.sandbox.warm_client`, which
asks the template for a fork, moves the child into the cgroup before it does anything,
and then stands in for the kernel process. The child enters new user, mount, net, ipc,
uts, pid and cgroup namespaces, sees a fresh ``/tmp`` and ``/dev/shm`` and, of the
runs tmpfs, only its own run directory, and ends in a nested user namespace that can
create no further one, without capabilities, with ``no_new_privs`` (details in
:mod:`grader.sandbox.warm_template`). Teardown kills the cgroup and removes the run
directory; the template survives for the next student.

Module workers (HW1/HW2, :mod:`grader.sandbox.module`) are forked the same way
(:meth:`WarmSession.worker_launcher`, :func:`grader.sandbox.warm_or_cold.open_session`): the
child, confined exactly as a kernel, runs the worker bootstrap (the same
:mod:`grader.harness.worker` source as a cold worker, from the inbox) in ``python``
mode instead of ``IPKernelApp``; its stdout is the progress pipe the grader reads. Every
worker, a restart after a hung call included, is a new fork.

Warm starts are used only in strict mode with every protection available, when
``GRADER_WARM`` is not ``0``, the scratch lies under ``/tmp`` and the template starts;
otherwise the cold path runs (for kernels and module workers alike): the choice is made
in :func:`grader.sandbox.warm_or_cold.open_session`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path

from grader.sandbox import confine
from grader.sandbox.cgroups import Cgroup
from grader.sandbox.errors import CgroupError, WarmUnavailable
from grader.sandbox.isolation import ENTER_PY
from grader.sandbox.limits import ExecutionLimits
from grader.sandbox.mounts import libc, mount_tmpfs, umount
from grader.sandbox.protections import (
    ISOLATION_FLAGS,
    NOBODY,
    detect_protections,
    python_binds,
    system_binds,
)
from grader.sandbox.warm_session import WarmSession

TEMPLATE_SOURCE = Path(__file__).with_name("warm_template.py").read_text(encoding="utf-8")
#: How long a template may take to import its modules (torch under load: seconds).
TEMPLATE_START_TIMEOUT_S = 120.0
#: Size of a template's runs tmpfs beyond ``ExecutionLimits.tmp_bytes`` (run dirs, logs).
RUNTIME_BYTES = 16 * 2**20
_MS_SHARED = 1 << 20
#: Environment switch: ``GRADER_WARM=0`` forces the cold path everywhere.
ENV_SWITCH = "GRADER_WARM"
#: Warm starts (kernels and module workers alike) are on unless ``GRADER_WARM=0``.
DEFAULT_ON = True


#: What ``IPKernelApp.initialize`` would import (1 s of a kernel's start), and numpy. A
#: module that is not installed is skipped by the template.
KERNEL_MODULES = (
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.zmqshell",
    "ipykernel.debugger",
    "IPython.core.completer",
    "tornado.ioloop",
    "sqlite3",
    "psutil",
    "pdb",
    "pydoc",
    "xmlrpc.client",
    "http.server",
    "faulthandler",
    "numpy",
)


def warm_enabled() -> bool:
    """Whether warm starts are wanted here (``GRADER_WARM``; default :data:`DEFAULT_ON`)."""
    value = os.environ.get(ENV_SWITCH)
    if value is None:
        return DEFAULT_ON
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def preload(frameworks: Iterable[str]) -> tuple[str, ...]:
    """The modules a template imports: the kernel's (ipykernel, numpy), then ``frameworks``
    (import names such as ``torch``) in the order given, each once."""
    return tuple(dict.fromkeys((*KERNEL_MODULES, *frameworks)))


def _host_descendant(root: int, inner: int) -> int | None:
    """The host pid of the process under ``root`` whose innermost pid is ``inner``."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/status") as fh:
                nspid = next((ln.split()[1:] for ln in fh if ln.startswith("NSpid:")), [])
        except OSError:
            continue
        if pid != root and nspid and int(nspid[-1]) == inner and len(nspid) > 1:
            return pid
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as fh:
                    todo += [int(p) for p in fh.read().split()]
    return None


class WarmTemplate:
    """One sandboxed template process that forks kernels; see the module docstring."""

    def __init__(
        self,
        modules: tuple[str, ...],
        limits: ExecutionLimits,
        extra_env: dict[str, str],
        *,
        uid: int = NOBODY,
        gid: int = NOBODY,
    ) -> None:
        self.modules = modules
        self.limits = limits
        self.extra_env = dict(extra_env)
        self.uid, self.gid = uid, gid
        self.key = template_key(modules, limits, extra_env)
        self.token = secrets.token_hex(4)
        self.base = Path(tempfile.mkdtemp(prefix="gwt-", dir="/tmp"))
        self.runs = self.base / "r"
        self.ctl = self.base / "c"
        self.socket = self.ctl / "s"
        self.cgroup: Cgroup | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.host_pid: int | None = None
        self.sessions = 0
        self._closed = False
        # What close() needs, held apart from self so that the finalizer (run at close,
        # when the worker thread's storage is dropped, or at exit) keeps no reference.
        self._res: dict[str, object] = {"base": self.base, "runs": self.runs}
        self._finalizer = weakref.finalize(self, WarmTemplate._cleanup, self._res)

    # -- start -------------------------------------------------------------------

    def start(self) -> None:
        """Start the template and wait until it has imported its modules."""
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        res = self._res
        os.chmod(self.base, 0o711)
        # Who owns this directory: a grader killed with SIGKILL cannot clean up, and the
        # next one removes what it left (sweep_stale_templates).
        (self.base / OWNER_FILE).write_text(f"{os.getpid()} {process_start(os.getpid())}\n")
        self.runs.mkdir()
        # The runs tmpfs holds the run directories and the runtime files (the kernel's
        # log); each scratch and outbox is a tmpfs of its own, mounted per submission.
        # Shared, so those later mounts propagate into the template's (slave) view.
        mount_tmpfs(self.runs, self.limits.tmp_bytes + RUNTIME_BYTES, 0, 0)
        res["mounted"] = True
        if libc().mount(None, str(self.runs).encode(), None, _MS_SHARED, None) != 0:
            raise WarmUnavailable(f"cannot make {self.runs} a shared mount")
        os.chmod(self.runs, 0o711)
        self.ctl.mkdir()
        os.chown(self.ctl, self.uid, self.gid)
        os.chmod(self.ctl, 0o700)
        etc = self.base / "e"
        etc.mkdir()
        (etc / "passwd").write_text(
            f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"student:x:{self.uid}:{self.gid}:student:/tmp:/usr/sbin/nologin\n"
        )
        (etc / "group").write_text(f"root:x:0:\nstudent:x:{self.gid}:\n")
        for f in etc.iterdir():
            os.chmod(f, 0o644)
        os.chmod(etc, 0o755)
        self.cgroup = res["cgroup"] = confine.new_cgroup(self.limits, f"grader-warm-{self.token}")
        log = (self.base / "template.log").open("wb")
        try:
            self.proc = res["proc"] = subprocess.Popen(
                self._argv(etc),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()
        inner = self._wait_ready()
        self.host_pid = _host_descendant(self.proc.pid, inner)
        if self.host_pid is None:
            raise WarmUnavailable("cannot find the template's host pid")
        self._probe()

    def _probe(self) -> None:
        """Fork one confined child that stops before the kernel would start.

        Where the template starts but its children cannot enter their namespaces (nested
        user namespaces disallowed, say), every kernel would fail to start: the caller
        then uses the cold path instead.
        """
        root = self.base / "p"
        work, outbox = root / "work", root / "outbox"
        work.mkdir(parents=True)
        outbox.mkdir()
        session = WarmSession(self, work, outbox, self.limits)
        session.probe = True
        with session:
            connection = session.runtime_dir / "probe.json"
            connection.write_text("{}")
            argv = session.launcher([sys.executable, "-f", str(connection)])
            try:
                res = subprocess.run(argv, capture_output=True, timeout=60, check=False)
            except subprocess.TimeoutExpired as exc:
                raise WarmUnavailable("a forked kernel did not get confined in 60 s") from exc
        shutil.rmtree(root, ignore_errors=True)
        if res.returncode != 0:
            why = res.stderr.decode(errors="replace").strip().splitlines()
            raise WarmUnavailable(
                f"a forked kernel cannot be confined here: {why[-1] if why else res.returncode}"
            )

    def _argv(self, etc: Path) -> list[str]:
        assert self.cgroup is not None
        enter = [sys.executable, "-I", "-S", str(ENTER_PY)]
        for f in self.cgroup.procs_files():
            enter += ["--cgroup-procs", str(f)]
        enter += ["--uid", str(self.uid), "--gid", str(self.gid)]
        for name, value in confine.rlimits(self.limits).items():
            enter += ["--rlimit", f"{name}={value}"]
        enter.append("--")
        flags = [f for f in ISOLATION_FLAGS if f != "--disable-userns"]
        bwrap = shutil.which("bwrap") or "bwrap"
        args = [bwrap, *flags, "--uid", str(self.uid), "--gid", str(self.gid)]
        args += ["--hostname", f"sandbox-{self.token}", "--clearenv"]
        for k, v in self.env().items():
            args += ["--setenv", k, v]
        args += system_binds()
        args += ["--proc", "/proc", "--dev", "/dev"]
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/tmp"]
        args += ["--size", str(self.limits.tmp_bytes), "--tmpfs", "/dev/shm"]
        args += ["--ro-bind", str(etc / "passwd"), "/etc/passwd"]
        args += ["--ro-bind", str(etc / "group"), "/etc/group"]
        args += python_binds()
        args += ["--bind", str(self.runs), str(self.runs)]
        args += ["--bind", str(self.ctl), str(self.ctl)]
        args += ["--chdir", "/tmp", "--remount-ro", "/", "--"]
        return [
            *enter,
            *args,
            sys.executable,
            "-c",
            TEMPLATE_SOURCE,
            str(self.socket),
            ",".join(self.modules),
        ]

    def env(self) -> dict[str, str]:
        """The environment of the template and of every kernel (as a cold sandbox's)."""
        return confine.sandbox_env(self.limits, self.extra_env)

    def _wait_ready(self) -> int:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + TEMPLATE_START_TIMEOUT_S
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise WarmUnavailable("the warm template did not start in time")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 256)
                if not chunk:
                    raise WarmUnavailable(f"the warm template exited: {self._log_tail()}")
                line += chunk
        text = line.decode(errors="replace").split()
        if len(text) != 2 or text[0] != "READY":
            raise WarmUnavailable(f"unexpected template output {line!r}")
        return int(text[1])

    def _log_tail(self) -> str:
        try:
            return (self.base / "template.log").read_bytes()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    # -- use -----------------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the template process still runs."""
        return not self._closed and self.proc is not None and self.proc.poll() is None

    def session(
        self,
        work: Path,
        outbox: Path,
        limits: ExecutionLimits | None = None,
        *,
        provided: Sequence[tuple[Path, Path]] = (),
    ) -> WarmSession:
        """A per-submission session (context manager) for the scratch ``work``.

        ``limits``: the submission's memory, process and CPU limits (its own cgroup);
        the quotas and rlimits are the template's. ``provided``: read-only binds of the
        instructor's files over their placeholders in ``work``.
        """
        if not self.alive():
            raise WarmUnavailable("the warm template is not running")
        self.sessions += 1
        return WarmSession(self, work, outbox, limits or self.limits, provided=provided)

    def close(self) -> None:
        """Kill the template and its cgroup, unmount the runs tmpfs, remove its files."""
        self._closed = True
        self._finalizer()

    @staticmethod
    def _cleanup(res: dict[str, object]) -> None:
        # Every step runs whatever failed before it (this may run at interpreter exit).
        proc = res.get("proc")
        if isinstance(proc, subprocess.Popen):
            with contextlib.suppress(Exception):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(5)
            with contextlib.suppress(Exception):
                if proc.stdout is not None:
                    proc.stdout.close()
        cgroup = res.get("cgroup")
        if isinstance(cgroup, Cgroup):
            with contextlib.suppress(Exception):
                cgroup.remove()
        runs, base = res["runs"], res["base"]
        assert isinstance(runs, Path) and isinstance(base, Path)
        if res.get("mounted"):
            with contextlib.suppress(Exception):
                umount(runs)
        shutil.rmtree(base, ignore_errors=True)


# -- templates per grading worker thread ---------------------------------------------

_local = threading.local()
#: Templates a thread keeps running at once (least recently used closed first): a batch
#: mixing torch-only submissions and TensorFlow ones keeps one of each, instead of
#: restarting a template whenever the preload changes.
MAX_THREAD_TEMPLATES = 2
_failed: dict[tuple[object, ...], str] = {}


def template_key(
    modules: tuple[str, ...], limits: ExecutionLimits, extra_env: dict[str, str]
) -> tuple[object, ...]:
    """What a template is reused for: its modules, quotas, rlimits and environment
    (not the memory, process and CPU limits: each submission has its own cgroup)."""
    quotas = (
        limits.scratch_bytes,
        limits.outbox_bytes,
        limits.tmp_bytes,
        limits.file_size_bytes,
        limits.open_files,
        limits.cpu_cores,  # the kernel's thread-count variables follow it
    )
    return (modules, quotas, tuple(sorted(extra_env.items())))


_lock = threading.Lock()
_swept = False  # stale templates are swept once per process, before its first template
OWNER_FILE = "owner"


def process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), or None when there is
    no such process: with the pid, it names one process even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, after the command name


def sweep_stale_templates(top: Path = Path("/tmp")) -> list[Path]:
    """Unmount and remove the template directories (``gwt-*``) whose grader is gone.

    A grader killed with SIGKILL (or a lost machine) leaves its templates' tmpfs mounts
    and files behind; the owner file names the grader process. A directory without one
    (still starting, or not ours) is left alone. Returns the directories removed.
    """
    removed: list[Path] = []
    try:
        mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    except OSError:
        return removed
    for base in top.glob("gwt-*"):
        try:
            pid, start = (base / OWNER_FILE).read_text().split()
        except (OSError, ValueError):
            continue
        if process_start(int(pid)) == start:
            continue  # its grader is alive
        inside = [m for m in mounts if m == str(base) or m.startswith(f"{base}/")]
        for mount in sorted(inside, key=len, reverse=True):  # the deepest first
            with contextlib.suppress(OSError):
                umount(Path(mount))
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed


def thread_template(
    modules: tuple[str, ...], limits: ExecutionLimits, extra_env: dict[str, str]
) -> WarmTemplate | None:
    """This thread's running template for these settings (started when needed), or None.

    None when warm starts cannot be had here (a protection is missing, or a template
    failed to start before with the same settings: the cold path then runs).
    """
    if os.geteuid() != 0 or not detect_protections().complete:
        return None
    templates: dict[tuple[object, ...], WarmTemplate] = _thread_templates()
    key = template_key(modules, limits, extra_env)
    template = templates.pop(key, None)
    if template is not None and not template.alive():
        template.close()
        template = None
    if template is not None:
        templates[key] = template  # the most recently used last
        return template
    with _lock:
        if key in _failed:
            return None
        global _swept
        if not _swept:
            _swept = True
            sweep_stale_templates()
    template = WarmTemplate(modules, limits, extra_env)
    try:
        template.start()
    except (WarmUnavailable, OSError, CgroupError) as exc:
        with _lock:
            _failed[key] = str(exc)
        return None
    while len(templates) >= MAX_THREAD_TEMPLATES:
        oldest = next(iter(templates))
        templates.pop(oldest).close()
    templates[key] = template
    return template


def _thread_templates() -> dict[tuple[object, ...], WarmTemplate]:
    templates: dict[tuple[object, ...], WarmTemplate] | None = getattr(_local, "templates", None)
    if templates is None:
        templates = _local.templates = {}
    return templates


def close_thread_template() -> None:
    """Stop this thread's templates, if any (tests; worker threads end theirs on exit)."""
    templates = _thread_templates()
    while templates:
        templates.popitem()[1].close()
