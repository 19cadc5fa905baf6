"""The warm template: runs INSIDE a sandbox, imports the heavy modules once, forks kernels.

This file is never imported by the grader: :mod:`grader.sandbox.warm` reads it as text
and starts it as ``python -c SOURCE CONTROL_SOCKET MODULES`` inside ``bwrap`` (user, pid,
net, ipc, uts, mount and cgroup namespaces, uid 65534, no capabilities, its own cgroup)
WITHOUT ``--disable-userns``, so that each forked child can enter namespaces of its own.
Only the standard library is used before ``MODULES`` (e.g. ``ipykernel.kernelapp,numpy,
torch,tensorflow``) are imported; ``keras`` is never imported (it fixes its backend when
imported), and the Keras that ``import tensorflow`` loads is forgotten again, so each
student's ``KERAS_BACKEND`` chooses the backend. The template holds nothing secret:
every child inherits its memory.

Per request (one ``SOCK_SEQPACKET`` connection on the control socket: a JSON request
plus the kernel log's stdout/stderr descriptors), the template forks:

* **R** (relay): reports its pid, waits for ``go`` (the grader has moved it into the
  submission's cgroup), unshares user (65534 mapped to itself), mount, net, ipc, uts,
  pid and cgroup namespaces, mounts a fresh ``/tmp`` and ``/dev/shm`` (hiding the
  control socket and every other submission's directory) and binds back only this
  submission's run directory; forks I; kills I when the grader's connection closes.
* **I** (pid 1 of the new PID namespace): mounts a fresh ``/proc`` (read-only
  ``/proc/sys`` and friends, as bwrap does), limits user namespaces below it to the one
  it creates next (as ``bwrap --disable-userns``), sets the host name, brings up
  loopback, becomes non-dumpable, forks K, reaps orphans, reports K's wait status.
* **K** (pid 2, the kernel): enters a nested user namespace (no further one can be
  made), drops every capability, sets ``no_new_privs`` and rlimits, closes inherited
  descriptors, takes the submission's environment, reseeds ``random``/``numpy``, and
  then, by the request's ``mode``: ``kernel`` starts ``IPKernelApp`` in-process with the
  connection file; ``python`` runs ``source`` as ``python -s -P -c SOURCE ARGV...``
  would (a fresh ``__main__``, no working directory on ``sys.path``): the module worker
  of :mod:`grader.sandbox.module`, whose stdout (its progress pipe) is K's fd 1.

R and I keep no copy of K's stdout and stderr once they have forked: the reader sees
end-of-file as soon as K and what it started are gone.

Replies on the connection: ``pid N``, then ``exit STATUS`` (K's wait status) or
``error MESSAGE``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import socket
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWCGROUP = 0x02000000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_SIOCSIFFLAGS = 0x8914
_IFF_UP_LOOPBACK_RUNNING = 0x1 | 0x8 | 0x40

_libc = ctypes.CDLL(None, use_errno=True)

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is not imported at run time
    from collections.abc import Callable
    from typing import Any, NoReturn

    Req = dict[str, Any]


class _Fail(Exception):
    pass


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise _Fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _map_self(uid: int, gid: int) -> None:
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    rc = _libc.mount(
        None if src is None else os.fsencode(src),
        os.fsencode(target),
        None if fstype is None else fstype.encode(),
        flags,
        None if data is None else data.encode(),
    )
    _check(rc, f"mount {fstype or src} on {target}")


def _send(conn: socket.socket, text: str) -> None:
    with contextlib.suppress(OSError):
        conn.send(text.encode()[:4000])


def _relay(conn: socket.socket, req: Req, log_fds: list[int], server: socket.socket) -> None:
    """R: handshake, namespaces, mounts; fork I; kill it when the grader goes away."""
    server.close()
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(log_fds[0], 1)
    os.dup2(log_fds[1], 2)
    for fd in log_fds:
        os.close(fd)
    os.setsid()
    _send(conn, f"pid {os.getpid()}")
    if conn.recv(16) != b"go":
        os._exit(125)
    uid, gid = os.getuid(), os.getgid()
    _check(
        _libc.unshare(
            _CLONE_NEWUSER
            | _CLONE_NEWNS
            | _CLONE_NEWNET
            | _CLONE_NEWIPC
            | _CLONE_NEWUTS
            | _CLONE_NEWPID
            | _CLONE_NEWCGROUP
        ),
        "unshare",
    )
    _map_self(uid, gid)
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE, None)
    keep = [(dst, os.open(src, os.O_PATH | os.O_DIRECTORY)) for src, dst in req["keep"]]
    flags = _MS_NOSUID | _MS_NODEV
    size = int(req["tmp_bytes"])
    _mount("tmpfs", "/tmp", "tmpfs", flags, f"size={size},mode=0755,uid={uid},gid={gid}")
    _mount("tmpfs", "/dev/shm", "tmpfs", flags, f"size={size},mode=1777")
    for path, fd in keep:
        os.makedirs(path, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", path, None, _MS_BIND | _MS_REC, None)
        os.close(fd)
    init = os.fork()
    if init == 0:
        _guard(conn, _init, conn, req, uid, gid)
    _drop_stdio()
    conn.setblocking(False)
    while True:
        done, _ = os.waitpid(init, os.WNOHANG)
        if done:
            os._exit(0)
        ready, _, _ = select.select([conn], [], [], 0.5)
        if ready:
            try:
                data = conn.recv(16)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the grader closed the connection: end the submission
                os.kill(init, signal.SIGKILL)
                os.waitpid(init, 0)
                os._exit(0)


def _drop_stdio() -> None:
    """Point fds 1 and 2 at /dev/null (R and I, after forking: only K holds the pipe)."""
    null = os.open("/dev/null", os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


def _init(conn: socket.socket, req: Req, uid: int, gid: int) -> None:
    """I: pid 1 of the submission's PID namespace."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A session of its own: the kernel's process group then holds only processes of
    # this PID namespace (killpg(0) from the kernel cannot reach the relay).
    os.setsid()
    _mount("proc", "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, None)
    # As bwrap --disable-userns: at most one user namespace below this one (K's).
    _write("/proc/sys/user/max_user_namespaces", "1")
    for sub in ("sys", "sysrq-trigger", "irq", "bus"):
        path = f"/proc/{sub}"
        if os.path.exists(path):
            _mount(path, path, None, _MS_BIND | _MS_REC, None)
            _mount(None, path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY, None)
    name = req["hostname"].encode()
    _check(_libc.sethostname(name, len(name)), "sethostname")
    import fcntl
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(
            s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", _IFF_UP_LOOPBACK_RUNNING)
        )
    kernel = os.fork()
    if kernel == 0:
        _guard(conn, _kernel, conn, req, uid, gid)
    _drop_stdio()
    # After the fork: the kernel must stay dumpable to write its own uid_map.
    _check(_libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:
            continue
        if pid == kernel:
            _send(conn, f"exit {status}")
            os._exit(0)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _drop_capabilities() -> None:
    cap = 0
    while _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
        cap += 1
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _check(_libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")


def _kernel(conn: socket.socket, req: Req, uid: int, gid: int) -> None:
    """K: the student's kernel."""
    import resource

    _check(_libc.unshare(_CLONE_NEWUSER), "unshare(user) for the kernel")
    _map_self(uid, gid)
    _drop_capabilities()
    for name, value in req["rlimits"].items():
        limit = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(limit, (int(value), int(value)))
    conn.close()
    os.closerange(3, 1 << 16)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(req["env"])
    os.chdir(req["work"])
    os.umask(0o022)
    if req.get("probe"):  # the template's start-up check: confined, now stop
        os._exit(0)
    import importlib
    import random

    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        torch.manual_seed(torch.initial_seed())
    # TensorFlow's global seed is set by the harness's setup (KERNEL_SEED), not here:
    # setting it would start TensorFlow's runtime before the kernel's limits are known.
    if req.get("mode", "kernel") == "python":
        _python(req)
    if req.get("mode", "kernel") != "kernel":
        raise _Fail(f"unknown mode {req.get('mode')!r}")
    # The history lives in memory, as in a cold sandbox, where IPython cannot open it
    # on disk: nothing of the student's code is written to its /tmp behind its back.
    argv = ["-f", req["connection_file"], "--HistoryManager.hist_file=:memory:"]
    sys.argv = [req["launcher"], *argv]
    from ipykernel import kernelapp

    code = 0
    try:
        app = kernelapp.IPKernelApp.instance()
        app.initialize(argv)  # type: ignore[no-untyped-call]
        app.start()  # type: ignore[no-untyped-call]
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _python(req: Req) -> NoReturn:
    """K in ``python`` mode: run ``source`` as ``python -s -P -c SOURCE *argv`` would."""
    import builtins

    # -P: the working directory (the student's scratch) is not on sys.path; -c: the
    # program runs in a fresh __main__, not in the template's.
    sys.path[:] = [p for p in sys.path if p not in ("", ".")]
    sys.argv = ["-c", *req["argv"]]
    main = type(sys)("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    code = 0
    try:
        exec(compile(req["source"], "<string>", "exec"), main.__dict__)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def _guard(conn: socket.socket, body: Callable[..., None], *args: object) -> NoReturn:
    """Run a child's body; never return into the template's loop."""
    try:
        body(*args)
    except BaseException as exc:  # report, then die: nothing may run half-confined
        _send(conn, f"error {type(exc).__name__}: {exc}")
        os._exit(125)
    os._exit(0)


def _serve(path: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(16)
    server.settimeout(1.0)
    sys.stdout.write(f"READY {os.getpid()}\n")
    sys.stdout.flush()
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        conn.settimeout(None)
        try:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 17, 2)
            req = json.loads(data)
            if len(fds) != 2:
                raise ValueError("expected the log's stdout and stderr")
        except (OSError, ValueError) as exc:
            _send(conn, f"error bad request: {exc}")
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            _guard(conn, _relay, conn, req, fds, server)
        conn.close()
        for fd in fds:
            os.close(fd)


# Importing Keras reads KERAS_BACKEND once and fixes the backend for the process: a
# template that imported it would choose the backend for every student.
_NEVER_PRELOADED = frozenset({"keras", "tf_keras"})


def _forget_keras() -> None:
    """Drop the Keras that ``import tensorflow`` loads eagerly (``keras.src.optimizers``,
    TensorFlow >= 2.16), so a student's ``os.environ["KERAS_BACKEND"] = ...`` before
    ``import keras`` is honoured: Keras is imported afresh, reading it, as in a cold
    kernel. ``tf.keras`` is a lazy loader and imports it again on first use."""
    for name in [n for n in sys.modules if n.split(".", 1)[0] in _NEVER_PRELOADED]:
        del sys.modules[name]


def _main() -> None:
    path, modules = sys.argv[1], [m for m in sys.argv[2].split(",") if m]
    import importlib

    for name in modules:
        if name in _NEVER_PRELOADED:
            sys.stderr.write(f"template: {name} is never preloaded (it fixes its backend)\n")
            continue
        try:
            importlib.import_module(name)
        except ImportError as exc:
            if name == modules[0]:
                raise
            sys.stderr.write(f"template: {name} not imported: {exc}\n")
    _forget_keras()
    if len(os.listdir("/proc/self/task")) != 1:
        sys.stderr.write("template: importing started threads; refusing to fork\n")
        sys.exit(3)
    _serve(path)


if __name__ == "__main__":
    _main()
