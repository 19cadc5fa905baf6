"""The first process of a sandboxed command: join the cgroup, set rlimits, drop root, exec.

Run as ``python -I -S /path/to/enter.py [options] -- command ...`` (or
``python -m grader.sandbox.enter``). Only the standard library is imported so that the
start costs a few milliseconds. Steps, in order, while still privileged:

1. write its own pid into every ``--cgroup-procs`` file, so the whole tree that follows
   (bubblewrap, the kernel, anything it forks or daemonises) is in the session cgroup;
2. ``--own DIR``: give the sandbox uid the scratch and outbox trees (``lchown``; symlinks
   are never followed, hard-linked files are skipped);
3. ``--share DIR``: the runtime directory becomes owned by the sandbox uid and every file
   already in it (the kernel's connection file, written 0600 by jupyter_client) becomes
   ``root:<gid>`` mode 0640 — readable, not writable, by the kernel;
4. set rlimits (``--rlimit fsize=N``, ``nofile=N``, ``core=0`` ...);
5. ``--stage-src S --stage-dst D`` (pairs): enter a private mount namespace and bind S
   onto D, so that bubblewrap (already running as uid 65534) can bind D by name even
   when S sits under a 0700 directory (``mkdtemp``, pytest's ``tmp_path``) that uid
   65534 cannot traverse. The namespace, and so these mounts, die with the sandbox;
6. drop supplementary groups, gid and uid to ``--uid``/``--gid`` (only when root), so
   that uid 65534 inside bubblewrap's user namespace is *not* real root outside;
7. ``exec`` the command (normally ``bwrap ...``).

Any failure exits with status 125 and a message on stderr; nothing runs half-confined.
"""

from __future__ import annotations

import os
import resource
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at every sandbox start
    from typing import NoReturn

EXIT_SETUP_FAILED = 125

_RLIMITS = {
    "fsize": resource.RLIMIT_FSIZE,
    "nofile": resource.RLIMIT_NOFILE,
    "core": resource.RLIMIT_CORE,
    "nproc": resource.RLIMIT_NPROC,
    "as": resource.RLIMIT_AS,
    "cpu": resource.RLIMIT_CPU,
}


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"grader sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_SETUP_FAILED)


def _chown_tree(top: str, uid: int, gid: int) -> None:
    """lchown ``top`` and everything below it, never following symlinks."""
    os.chown(top, uid, gid, follow_symlinks=False)
    for root, dirs, files in os.walk(top, followlinks=False):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if not os.path.isdir(path) and st.st_nlink > 1 and not os.path.islink(path):
                continue  # a hard link may be shared with a file outside the scratch
            os.chown(path, uid, gid, follow_symlinks=False)


def _share_dir(top: str, uid: int, gid: int) -> None:
    os.chown(top, uid, gid, follow_symlinks=False)
    os.chmod(top, 0o700)
    with os.scandir(top) as it:
        for entry in it:
            if entry.is_file(follow_symlinks=False):
                os.chown(entry.path, 0, gid, follow_symlinks=False)
                os.chmod(entry.path, 0o640)


_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MS_BIND = 4096


def _stage(pairs: list[tuple[str, str]]) -> None:
    """Private mount namespace with each source directory bind-mounted on its stage."""
    import ctypes  # only here: keeps the common start fast

    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int, what: str) -> None:
        if rc != 0:
            _fail(f"{what}: {os.strerror(ctypes.get_errno())}")

    check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    for src, dst in pairs:
        check(
            libc.mount(os.fsencode(src), os.fsencode(dst), None, _MS_BIND | _MS_REC, None),
            f"bind {src} on {dst}",
        )


def parse(argv: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Split ``--key value`` options from the command after ``--``."""
    if "--" not in argv:
        _fail("usage: enter.py [--cgroup-procs F] [--uid N --gid N] [--rlimit k=v] -- cmd")
    cut = argv.index("--")
    opts: dict[str, list[str]] = {}
    head = argv[:cut]
    if len(head) % 2:
        _fail(f"options must come in pairs: {head}")
    for key, value in zip(head[::2], head[1::2], strict=True):
        opts.setdefault(key.lstrip("-"), []).append(value)
    cmd = argv[cut + 1 :]
    if not cmd:
        _fail("no command given")
    return opts, cmd


def main(argv: list[str] | None = None) -> None:
    """Do the privileged set-up described in the module docstring, then exec."""
    opts, cmd = parse(sys.argv[1:] if argv is None else argv)
    pid = str(os.getpid())
    for procs in opts.get("cgroup-procs", []):
        try:
            fd = os.open(procs, os.O_WRONLY)
            try:
                os.write(fd, pid.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            _fail(f"cannot join cgroup via {procs}: {exc}")

    uid = int(opts["uid"][0]) if "uid" in opts else None
    gid = int(opts["gid"][0]) if "gid" in opts else uid
    is_root = os.geteuid() == 0
    if uid is not None and gid is not None and is_root:
        try:
            for d in opts.get("own", []):
                _chown_tree(d, uid, gid)
            for d in opts.get("share", []):
                _share_dir(d, uid, gid)
        except OSError as exc:
            _fail(f"cannot hand directories to uid {uid}: {exc}")

    for spec in opts.get("rlimit", []):
        name, _, value = spec.partition("=")
        if name not in _RLIMITS or not value.isdigit():
            _fail(f"bad rlimit {spec!r}")
        n = int(value)
        try:
            resource.setrlimit(_RLIMITS[name], (n, n))
        except (ValueError, OSError) as exc:
            _fail(f"cannot set rlimit {spec}: {exc}")

    srcs, dsts = opts.get("stage-src", []), opts.get("stage-dst", [])
    if srcs or dsts:
        if len(srcs) != len(dsts):
            _fail("--stage-src and --stage-dst must pair up")
        _stage(list(zip(srcs, dsts, strict=True)))

    if uid is not None and gid is not None and is_root:
        try:
            os.setgroups([])
            os.setresgid(gid, gid, gid)
            os.setresuid(uid, uid, uid)
        except OSError as exc:
            _fail(f"cannot drop to uid {uid}: {exc}")
        if os.getuid() == 0 or os.geteuid() == 0:
            _fail("still root after dropping privileges")

    os.environ.pop("JPY_PARENT_PID", None)
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        _fail(f"cannot exec {cmd[0]}: {exc}")


if __name__ == "__main__":
    main()
